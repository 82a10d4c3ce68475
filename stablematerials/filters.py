"""Image filters shared by the library: a separable Gaussian blur that wraps around chosen edges (tileable
materials wrap both ways; the seamless cut of `stablematerials.seamless` wraps one)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: float, circular_dims: tuple[int, ...] = ()) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W); edges wrap along `circular_dims` (-1, -2), else replicate."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    for dim in (-1, -2):
        size = x.shape[dim]
        r = min(radius, size - 1) if dim not in circular_dims else radius
        kk = k[radius - r : radius + r + 1] if r < radius else k
        kk = kk / kk.sum()
        pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
        mode = "circular" if dim in circular_dims and r <= size else "replicate"
        padded = F.pad(x, pad, mode=mode)
        weight = kk.view(1, 1, 1, -1) if dim == -1 else kk.view(1, 1, -1, 1)
        x = F.conv2d(padded, weight.expand(c, 1, *weight.shape[-2:]), groups=c)
    return x
