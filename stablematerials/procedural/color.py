"""Colour helpers for procedural materials: named sRGB swatches, mixing, ramps and per-cell colour jitter.

All colours are sRGB in [0, 1] (the basecolor map's space); arrays are float32.
"""

from __future__ import annotations

import numpy as np


def srgb(hex_code: str) -> np.ndarray:
    """'#rrggbb' -> (3,) float32 in [0, 1]."""
    h = hex_code.lstrip("#")
    if len(h) != 6:
        raise ValueError(f"colour must look like #rrggbb, got {hex_code!r}")
    return np.array([int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)], dtype=np.float32)


def fill(color: np.ndarray, size: int) -> np.ndarray:
    """A (size, size, 3) field of one colour."""
    return np.broadcast_to(np.asarray(color, np.float32), (size, size, 3)).copy()


def shade(color: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Scale a colour (3,) or field (H, W, 3) by a (H, W) brightness factor."""
    return (np.asarray(color, np.float32) * factor[..., None]).astype(np.float32)


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear blend of two colours or colour fields by a (H, W) weight (0 -> a, 1 -> b)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return (a + (b - a) * np.asarray(t, np.float32)[..., None]).astype(np.float32)


def ramp(t: np.ndarray, stops: list[tuple[float, str]]) -> np.ndarray:
    """Map a (H, W) field in [0, 1] through a piecewise-linear colour ramp of (position, '#rrggbb') stops."""
    pos = np.array([p for p, _ in stops], np.float32)
    cols = np.stack([srgb(c) for _, c in stops])
    t = np.clip(t, 0.0, 1.0)
    return np.stack([np.interp(t, pos, cols[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def jitter_colors(rng: np.random.Generator, n: int, base: np.ndarray, value: float, hue: float) -> np.ndarray:
    """`n` variations of a base colour: brightness scaled by 1 + value * N(0, 1), channels by 1 + hue * N(0, 1)."""
    bright = 1.0 + value * rng.standard_normal((n, 1))
    tint = 1.0 + hue * rng.standard_normal((n, 3))
    return np.clip(np.asarray(base, np.float32) * bright * tint, 0.0, 1.0).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an sRGB colour field (H, W, 3) -> (H, W)."""
    return (rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.float32)
