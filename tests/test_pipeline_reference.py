"""The pipeline makes what it made before: outputs of the tiny seeded pipelines for several option combinations
(text and image prompts, guidance and negatives, tileable, patched, student, prompt embeddings, a step callback,
every output type) against tests/data/pipeline_reference.json (see tests/pipeline_reference.py to rewrite it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_reference import REFERENCE, cases, pinned, pipelines

# Another CPU or BLAS may round the last bits differently; a change in behaviour moves values by far more.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pipes():
    """Pipelines of its own, not the shared fixtures: a test that changed their weights would change the outputs."""
    return pipelines()


@pytest.mark.parametrize("name", list(cases()))
def test_output_matches_reference(pipes, name):
    which, kwargs = cases()[name]
    got = np.asarray(pinned(pipes[which](**kwargs).images))
    want = np.asarray(json.loads(REFERENCE.read_text())[name])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOLERANCE, f"{name}: the output changed"


def test_reference_sees_a_small_change(pipes):
    """The pinned pixels are sensitive: guidance 7.5 -> 7.0 moves them far beyond the tolerance."""
    which, kwargs = cases()["tileable_patched_pt"]
    got = np.asarray(pinned(pipes[which](**(kwargs | {"guidance_scale": 7.0})).images))
    want = np.asarray(json.loads(REFERENCE.read_text())["tileable_patched_pt"])
    assert np.abs(got - want).max() > 100 * TOLERANCE
