"""One way to generate: the same request makes the same material through the CLI, the batch job and the web UI's
engine, because all of them call `stablematerials.generation.generate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stablematerials.cli import main as cli_main
from stablematerials.generation import GenerationRequest, Limits, complete, generate, local_limits, variation_seeds
from stablematerials.io import load_material, save_material
from stablematerials.studio import Studio
from stablematerials.values import parse_bool, parse_float, parse_int, parse_size, slug
from studio_helpers import save_tiny_student_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny model with a teacher and a 4-step student (trained size 16 px), like the default model."""
    return save_tiny_student_model(tmp_path_factory.mktemp("one-path") / "tiny")


def test_cli_batch_and_studio_make_the_same_material(model_dir, tmp_path):
    """32 px is above the model's 16 px training size, so windowed attention must be on in all three (the batch job
    used to leave it off); the student is chosen in all three by default."""
    cli_out = tmp_path / "cli"
    assert cli_main(["generate", "red bricks", "--out", str(cli_out), "--model", str(model_dir), "--seed", "5",
                     "--steps", "2", "--size", "32", "--guidance", "6"]) == 0  # fmt: skip

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "red bricks", "name": "bricks", "seed": 5, "steps": 2, "size": 32,
                                   "guidance": 6}) + "\n")  # fmt: skip
    batch_out = tmp_path / "batch"
    assert cli_main(["batch", str(prompts), "--out", str(batch_out), "--model", str(model_dir), "--no-progress",
                     "--preview-size", "0"]) == 0  # fmt: skip

    studio = Studio(model_dir, limits=Limits(max_resolution=64))
    result = studio.generate(GenerationRequest(prompt="red bricks", seed=5, steps=2, width=32, height=32, guidance=6.0))
    assert result.request.patched is True and result.request.variant == "auto"
    studio_out = save_material(result.materials[0], tmp_path / "studio")

    cli_m, batch_m, studio_m = (load_material(p) for p in (cli_out, batch_out / "bricks", studio_out))
    for name in ("basecolor", "normal", "height", "roughness", "metallic"):
        assert np.array_equal(getattr(cli_m, name), getattr(batch_m, name)), name  # pixel-identical files
        assert np.array_equal(getattr(cli_m, name), getattr(studio_m, name)), name
    metas = [json.loads((p / "metadata.json").read_text()) for p in (cli_out, batch_out / "bricks", studio_out)]
    for key in ("prompt", "seed", "num_inference_steps", "guidance_scale", "patched", "student", "height"):
        assert metas[0][key] == metas[1][key] == metas[2][key], key
    assert metas[0]["patched"] is True and metas[0]["student"] is True
    # Without windowed attention (what the batch job used to do) the material differs: the check above can fail.
    plain = studio.generate(GenerationRequest(prompt="red bricks", seed=5, steps=2, width=32, height=32, guidance=6.0,
                                              patched=False))  # fmt: skip
    assert not np.allclose(plain.materials[0].basecolor, result.materials[0].basecolor, atol=2 / 255)


def test_generate_fills_the_models_defaults(tiny_student):
    small = Limits(max_resolution=32)
    result = generate(tiny_student, GenerationRequest(prompt="moss", seed=3, variations=2), limits=small)
    request = result.request
    # The student's 4 steps; the training size (16 px) is below 256 px, so 256 px capped by the limit (32 px), above
    # the training size: windowed attention.
    assert (request.steps, request.width, request.height, request.patched) == (4, 32, 32, True)
    assert result.seeds == (3, 4) and [m.metadata["seed"] for m in result.materials] == [3, 4]
    assert result.materials[0].metadata["name"] == "moss_3" and result.materials[0].metadata["prompt"] == "moss"
    assert len(result.seam) == 2 and set(result.seam[0]) == {"basecolor", "normal", "height", "roughness", "metallic"}
    # A variation's seed alone makes the same material as in the batched call.
    alone = generate(tiny_student, GenerationRequest(prompt="moss", seed=4), limits=small)
    np.testing.assert_allclose(alone.materials[0].basecolor, result.materials[1].basecolor, atol=1e-5)


def test_complete_and_seeds():
    done = complete(GenerationRequest(prompt="a"), native=64, default_steps=50, max_size=128)
    assert (done.steps, done.width, done.height, done.patched) == (50, 128, 128, True)
    assert isinstance(done.seed, int)
    kept = complete(GenerationRequest(prompt="a", width=64, height=32, patched=False, seed=9), 64, 4)
    assert (kept.width, kept.height, kept.patched, kept.seed) == (64, 32, False, 9)
    assert variation_seeds(2**63 - 1, 2) == [2**63 - 1, 0]  # wraps within 63 bits


def test_one_value_parser_and_one_slug():
    assert parse_int("steps", "4") == parse_int("steps", 4.0) == 4
    with pytest.raises(ValueError, match="steps must be a whole number from 1 to 9, got 4.0"):
        parse_int("steps", 4.0, 1, 9, strict=True)
    assert parse_float("guidance", "7.5", 0, 30) == 7.5
    with pytest.raises(ValueError, match="guidance must be a number from 0 to 30, got 'nan'"):
        parse_float("guidance", "nan", 0, 30)
    assert parse_bool("tileable", "Yes") is True and parse_bool("tileable", 0) is False
    assert parse_size("size", "768x512") == (512, 768) and parse_size("size", 64) == (64, 64)
    with pytest.raises(ValueError, match="size: height must be a positive multiple of 8 pixels, got 30"):
        parse_size("size", "64x30")
    assert slug("Mossy  Cobblestone, path!") == "mossy_cobblestone_path"
    assert slug("Bricks076", lower=False) == "Bricks076" and slug("../..") == "material" and slug(".hidden") == "hidden"


def test_local_limits_name_how_to_raise_them(monkeypatch):
    monkeypatch.delenv("STABLEMATERIALS_MAX_SIZE", raising=False)
    with pytest.raises(ValueError, match="width 4096 px is over the limit of 2048 px per side; set STABLEMATERIALS_MAX_SIZE"):
        GenerationRequest(prompt="a", width=4096, height=64).validate(local_limits())
    monkeypatch.setenv("STABLEMATERIALS_MAX_SIZE", "4096")
    GenerationRequest(prompt="a", width=4096, height=64).validate(local_limits())
    monkeypatch.setenv("STABLEMATERIALS_MAX_SIZE", "lots")
    with pytest.raises(ValueError, match="STABLEMATERIALS_MAX_SIZE must be a positive multiple of 8"):
        local_limits()
