"""Procedural sets for the family classifier, and the augmentations that make it judge structure, not colour.

Seeds follow the dataset writer (stablematerials.procedural.dataset): seed s is family FAMILIES[s % 19] and lies in
the split `split_of(s)`, so the classifier trains on train-split seeds only and is verified on test-split seeds,
the same held-out materials the default model's dataset keeps out of its training.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stablematerials.filters import gaussian_blur
from stablematerials.io import atomic_write_bytes
from stablematerials.procedural import FAMILIES
from stablematerials.procedural.dataset import dataset_material, split_of

from .classifier import INPUT_SIZE, SOURCE_SIZE, source_array

logger = logging.getLogger(__name__)

FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def split_seeds(family: str, split: str, count: int) -> list[int]:
    """The first `count` seeds of `family` in `split` (seed s is family FAMILY_NAMES[s % 19], as the dataset has it)."""
    k, n = FAMILY_NAMES.index(family), len(FAMILY_NAMES)
    seeds, s = [], k
    while len(seeds) < count:
        if split_of(s) == split:
            seeds.append(s)
        s += n
    return seeds


def procedural_set(split: str, per_family: int, sizes: tuple[int, ...], cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Sources (N, 8, 256, 256) uint8 and labels (N,) of `per_family` materials per family of `split`.

    Material i of a family is generated at sizes[i % len(sizes)] (a 512 px material is then reduced to the 256 px
    source, as a generated one is). Cached as one .npy pair under `cache` (None: no cache).
    """
    name = f"{split}_{per_family}_{'-'.join(map(str, sizes))}"
    if cache is not None and (cache / f"{name}.npy").is_file():
        return np.load(cache / f"{name}.npy"), np.load(cache / f"{name}_labels.npy")
    sources = np.empty((per_family * len(FAMILY_NAMES), 8, SOURCE_SIZE, SOURCE_SIZE), np.uint8)
    labels = np.empty(len(sources), np.int64)
    i = 0
    for k, family in enumerate(FAMILY_NAMES):
        for j, seed in enumerate(split_seeds(family, split, per_family)):
            sources[i] = source_array(dataset_material(family, seed, sizes[j % len(sizes)]))
            labels[i] = k
            i += 1
        logger.info("%s: %s done (%d materials)", name, family, i)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for suffix, arr in (("", sources), ("_labels", labels)):
            atomic_write_bytes(cache / f"{name}{suffix}.npy", _npy_bytes(arr))
    return sources, labels


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Augmentation: geometry per sample, then colour, relief, blur and noise per batch
# ----------------------------------------------------------------------------------------------

CROP_RANGE = (112, 320)  # source pixels per view side, log-uniform: zoom 2.3x in to 0.8x out (wrapping)
HUE_ROTATION = (0.0, 2 * math.pi)
SATURATION = (0.0, 1.6)
BRIGHTNESS = (0.6, 1.4)
CONTRAST = (0.7, 1.3)
GAMMA = (0.7, 1.4)
NORMAL_STRENGTH = (0.5, 2.0)
ROUGHNESS_SCALE, ROUGHNESS_SHIFT = (0.8, 1.2), (-0.1, 0.1)
BLUR_SIGMA = (0.3, 1.5)  # input pixels, applied to half the views
NOISE_STD = (0.0, 0.04)  # applied to half the views


def rotate_normals(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate a source view (8, h, w) by k quarter turns counter-clockwise, turning its normal vectors with it.

    OpenGL normals (+X right, +Y up the image): a quarter turn maps (nx, ny) to (-ny, nx).
    """
    x = torch.rot90(x, k, dims=(-2, -1))
    n = x[3:5] * 2 - 1
    for _ in range(k % 4):
        n = torch.stack([-n[1], n[0]])
    return torch.cat([x[:3], n * 0.5 + 0.5, x[5:]])


def flip_horizontal(x: torch.Tensor) -> torch.Tensor:
    """Mirror a source view (8, h, w) left-right; the normal's X component changes sign."""
    x = torch.flip(x, dims=(-1,))
    return torch.cat([x[:3], 1.0 - x[3:4], x[4:]])


def geometric_view(source: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random view (8, 128, 128) of a source (8, 256, 256) in [0, 1]: roll, rotate, mirror, crop, resize."""
    u = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=g))  # noqa: E731
    dy, dx = (int(v) for v in torch.randint(0, SOURCE_SIZE, (2,), generator=g))
    x = torch.roll(source, (dy, dx), dims=(-2, -1))
    x = rotate_normals(x, int(torch.randint(0, 4, (), generator=g)))
    if u(0, 1) < 0.5:
        x = flip_horizontal(x)
    side = int(round(math.exp(u(math.log(CROP_RANGE[0]), math.log(CROP_RANGE[1])))))
    if side > SOURCE_SIZE:
        x = x.repeat(1, 2, 2)  # the material tiles, so a zoomed-out view wraps
    x = x[:, :side, :side][None]
    if side != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=side > INPUT_SIZE, align_corners=False)
    return x[0]


def _uniform(g: torch.Generator, bounds: tuple[float, float], n: int) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=g)


def hue_rotation(rgb: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate colours (B, 3, h, w) about the grey axis by `angle` (B,) radians (Rodrigues' rotation formula)."""
    axis = torch.full((3,), 1 / math.sqrt(3.0))
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    outer = torch.outer(axis, axis)
    c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    rot = c * torch.eye(3) + s * cross + (1 - c) * outer  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", rot, rgb)


def colour_shift(rgb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random hue rotation, saturation, brightness, contrast and gamma of (B, 3, h, w) colours in [0, 1]."""
    b = rgb.shape[0]
    grey = rgb.mean(dim=1, keepdim=True)
    x = hue_rotation(rgb - grey, _uniform(g, HUE_ROTATION, b)) + grey
    luma = x.mean(dim=1, keepdim=True)
    x = luma + (x - luma) * _uniform(g, SATURATION, b).view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * _uniform(g, CONTRAST, b).view(-1, 1, 1, 1)
    x = x * _uniform(g, BRIGHTNESS, b).view(-1, 1, 1, 1)
    gamma = torch.exp(_uniform(g, (math.log(GAMMA[0]), math.log(GAMMA[1])), b)).view(-1, 1, 1, 1)
    return x.clamp(0.0, 1.0) ** gamma


def scale_normals(xy: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Steeper or flatter relief: normals (B, 2, h, w) in [-1, 1] with X, Y scaled by `strength` (B,), renormalised."""
    s = strength.view(-1, 1, 1, 1)
    r2 = (xy * xy).sum(dim=1, keepdim=True).clamp(0.0, 1.0)
    return s * xy / torch.sqrt(s * s * r2 + (1.0 - r2)).clamp_min(1e-6)


def augment(sources: np.ndarray, g: torch.Generator) -> torch.Tensor:
    """A batch of random training views (B, 8, 128, 128) in [0, 1] from sources (B, 8, 256, 256) uint8."""
    views = torch.stack([geometric_view(torch.from_numpy(s).float() / 255.0, g) for s in sources])
    b = len(views)
    rgb = colour_shift(views[:, 0:3], g)
    normal = scale_normals(views[:, 3:5] * 2 - 1, torch.exp(_uniform(g, tuple(map(math.log, NORMAL_STRENGTH)), b)))
    rough = views[:, 6:7] * _uniform(g, ROUGHNESS_SCALE, b).view(-1, 1, 1, 1) + _uniform(g, ROUGHNESS_SHIFT, b).view(-1, 1, 1, 1)
    x = torch.cat([rgb, normal * 0.5 + 0.5, views[:, 5:6], rough.clamp(0.0, 1.0), views[:, 7:8]], dim=1)
    out = []
    for i in range(b):
        xi = x[i : i + 1]
        if float(torch.rand((), generator=g)) < 0.5:
            xi = gaussian_blur(xi, float(_uniform(g, BLUR_SIGMA, 1)), (-2, -1))
        if float(torch.rand((), generator=g)) < 0.5:
            xi = xi + float(_uniform(g, NOISE_STD, 1)) * torch.randn(xi.shape, generator=g)
        out.append(xi)
    return torch.cat(out).clamp(0.0, 1.0)
