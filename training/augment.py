"""Augmentations that respect what the maps mean, on materials in model space (9, H, W) in [-1, 1].

Materials are tileable, so crops may wrap around the edges (a roll followed by a crop). Mirroring and rotating the
texture also turns its surface, so the tangent-space normal's X and Y must turn with it: a horizontal mirror
negates X, a vertical mirror negates Y, and a 90 degree turn of the image maps (X, Y) to (-Y, X). The tests check
each of the eight symmetries against `normal_from_height` of the transformed height map.
"""

from __future__ import annotations

import numpy as np
import torch

NORMAL_X, NORMAL_Y = 3, 4  # channel indices of the normal's X and Y in model space (stablematerials.material)


def rotate90(x: torch.Tensor, k: int) -> torch.Tensor:
    """Turn a material (…, 9, H, W) by k quarter turns as `torch.rot90(dims=(-2, -1))`, turning its normals too."""
    k %= 4
    if k == 0:
        return x
    out = torch.rot90(x, k, dims=(-2, -1)).clone()
    nx, ny = out[..., NORMAL_X, :, :].clone(), out[..., NORMAL_Y, :, :].clone()
    # One quarter turn of the image (rows point down, OpenGL +Y up) maps the normal's (X, Y) to (-Y, X).
    for _ in range(k):
        nx, ny = -ny, nx
    out[..., NORMAL_X, :, :], out[..., NORMAL_Y, :, :] = nx, ny
    return out


def flip_horizontal(x: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (…, 9, H, W); the normal's X changes sign."""
    out = torch.flip(x, dims=(-1,)).clone()
    out[..., NORMAL_X, :, :] = -out[..., NORMAL_X, :, :]
    return out


def flip_vertical(x: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom (…, 9, H, W); the normal's Y changes sign."""
    out = torch.flip(x, dims=(-2,)).clone()
    out[..., NORMAL_Y, :, :] = -out[..., NORMAL_Y, :, :]
    return out


def dihedral(x: torch.Tensor, k: int, mirror: bool, normals: bool = True) -> torch.Tensor:
    """One of the 8 symmetries of the square: an optional left-right mirror, then k quarter turns.

    With `normals=False` (RGB images) only the pixels move.
    """
    if not normals:
        x = torch.flip(x, dims=(-1,)) if mirror else x
        return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x
    x = flip_horizontal(x) if mirror else x
    return rotate90(x, k)


def wrapped_crop(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """A size x size crop starting at (top, left) that wraps around the edges (for tileable maps)."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop size {size} is larger than the {w}x{h} map")
    rows = (torch.arange(size) + top) % h
    cols = (torch.arange(size) + left) % w
    return x[..., rows, :][..., cols]


def random_crop(
    x: torch.Tensor, size: int, rng: np.random.Generator, wrap: bool, flips: bool, rotations: bool, normals: bool = True
) -> torch.Tensor:
    """A random (wrapping, for tileable maps) crop, then a random mirror and quarter turn when enabled."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop size {size} is larger than the {w}x{h} map")
    if wrap:
        top, left = int(rng.integers(h)), int(rng.integers(w))
        x = wrapped_crop(x, top, left, size)
    else:
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        x = x[..., top : top + size, left : left + size]
    mirror = bool(rng.integers(2)) if flips else False
    k = int(rng.integers(4)) if rotations else 0
    return dihedral(x, k, mirror, normals).contiguous()
