"""Shared fixtures: offline environment, small seeded materials and tiny pipelines built in code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from stablematerials.material import Material, normal_from_height  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _published_layout() -> Path:
    """The published checkpoint's configs (no weights): $STABLEMATERIALS_PUBLISHED_LAYOUT, else
    shared/reference/stablematerials-published-layout beside the checkout or beside one of its parents (a git
    worktree lives deeper than the main checkout). Tests that need it skip when it is absent."""
    env = os.environ.get("STABLEMATERIALS_PUBLISHED_LAYOUT")
    if env:
        return Path(env)
    relative = Path("shared") / "reference" / "stablematerials-published-layout"
    for parent in REPO.parents:
        if (parent / relative).is_dir():
            return parent / relative
    return REPO.parent / relative


PUBLISHED_LAYOUT = _published_layout()


def make_material(size: int = 32, seed: int = 0, metal_fraction: float = 0.5) -> Material:
    """A small seeded tileable material: periodic bumps, a colour gradient that wraps, half metal."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * np.pi, 3)
    height = 0.5 + 0.25 * np.sin(2 * np.pi * 2 * x + phase[0]) * np.cos(2 * np.pi * 3 * y + phase[1])
    base = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * x + phase[2]), 0.3 + 0.2 * np.cos(2 * np.pi * y), 0.4 + 0 * x], -1)
    rough = 0.3 + 0.5 * height
    metal = (x < metal_fraction).astype(np.float32)
    normal = normal_from_height(torch.from_numpy(height.astype(np.float32))[None, None], 2.0)[0].permute(1, 2, 0).numpy()
    return Material(base, normal, height, rough, metal, {"prompt": "test bumps", "seed": seed})


@pytest.fixture
def material() -> Material:
    return make_material()


@pytest.fixture(scope="session")
def tiny_pipe():
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_student():
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0, student=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_pipe) -> Path:
    """The tiny pipeline saved with save_pretrained (safetensors)."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_with_capture(tmp_path_factory, tiny_pipe) -> Path:
    """A tiny model folder that ships a capture model in `capture/`, as the embedded default model does."""
    from stablematerials.tiny import tiny_capture_pipeline

    path = tmp_path_factory.mktemp("tiny-model-capture")
    tiny_pipe.save_pretrained(path)
    tiny_capture_pipeline(0).save_pretrained(path / "capture")
    return path


def write_texture_pairs(root: Path) -> np.ndarray:
    """Texture pairs as game sets ship them (training/texture_pairs.py), under root/walls: a procedural material's
    render with its normal map (alpha = height) stored OpenGL (gl) and DirectX (dx), and a colour image without a
    normal map (alone). Returns the true (OpenGL) normal."""
    from PIL import Image

    from stablematerials.procedural.dataset import dataset_material
    from stablematerials.render import render_plane

    (root / "walls").mkdir(parents=True)
    material = dataset_material("bricks", 3, 96)
    render = render_plane(material.to_tensors(), torch.tensor([[[0.5, 0.5, 2.0]]]))[0].permute(1, 2, 0).numpy()
    colour = Image.fromarray((np.clip(render, 0, 1) * 255).round().astype(np.uint8))
    for name, y in (("gl", 1.0), ("dx", -1.0)):
        rgba = np.concatenate([material.normal * np.float32([1, y, 1]) * 0.5 + 0.5, material.height[..., None]], -1)
        colour.save(root / "walls" / f"{name}.png")
        Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(root / "walls" / f"{name}_norm.png")
    colour.save(root / "walls" / "alone.png")
    return material.normal
