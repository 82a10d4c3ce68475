"""Woven fabric: warp (vertical) and weft (horizontal) threads crossing over and under in a weave pattern.

Each thread is an elliptical cross-section whose height undulates smoothly between "over" (raised) and "under"
(sunk) at every crossing; the visible thread at a pixel is the higher of the two. Thread counts are a multiple of
every weave's repeat (4), so the cloth wraps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import Streams, blur, fbm, grid, smoothstep
from .params import Params, choice, number

FIBRE_ROUGHNESS = {"cotton": 0.85, "linen": 0.9, "wool": 0.95, "silk": 0.4, "denim": 0.82, "canvas": 0.9}
FABRIC_COLORS = {
    "white": "#ebe8e1",
    "beige": "#cdb995",
    "red": "#9e2b2b",
    "navy": "#1f2c4d",
    "green": "#355e3b",
    "black": "#1d1d1f",
    "grey": "#7d7d80",
    "mustard": "#c39a2e",
    "indigo": "#2b3a6b",
    "pink": "#d69aa6",
}
UNDYED = "#dcd8cc"


@dataclass(frozen=True)
class FabricParams(Params):
    """Parameters of woven cloth."""

    fibre: str = choice("cotton", tuple(FIBRE_ROUGHNESS), doc="denim: dyed warp over an undyed weft")
    weave: str = choice("plain", ("plain", "twill", "basket"))
    threads: int = number(32, 8, 96, sample=(16, 48), step=4, doc="threads across the tile")
    color: str = choice("navy", tuple(FABRIC_COLORS))
    pattern: str = choice("solid", ("solid", "stripes", "plaid"))
    accent_color: str = choice("white", tuple(FABRIC_COLORS), doc="colour of stripes and checks")
    thread_width: float = number(0.85, 0.4, 1.0, doc="share of the pitch a thread fills")
    fuzz: float = number(0.3, 0.0, 1.0, doc="hairy, soft-focus fibres")

    @classmethod
    def adjust_sample(cls, values: dict, rng: np.random.Generator) -> dict:
        """Stripes and checks in a colour other than the cloth's."""
        if values["accent_color"] == values["color"]:
            others = [c for c in FABRIC_COLORS if c != values["color"]]
            return values | {"accent_color": others[int(rng.integers(len(others)))]}
        return values


def _over(weave: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """+1 where the warp thread of column i passes over the weft of row j, -1 where under."""
    if weave == "plain":
        up = (i + j) % 2 == 0
    elif weave == "twill":
        up = (i + j) % 4 < 2  # 2/2 twill: diagonal ribs
    else:
        up = (i // 2 + j // 2) % 2 == 0  # 2x2 basket
    return np.where(up, 1.0, -1.0).astype(np.float32)


def _undulation(weave: str, t: np.ndarray, other: np.ndarray, warp: bool) -> np.ndarray:
    """Smooth over/under level along a thread: crossing value at cell centres, eased in between."""
    k = np.floor(t - 0.5).astype(np.int64)
    a = smoothstep(0.0, 1.0, t - 0.5 - k)
    if warp:
        s0, s1 = _over(weave, other, k), _over(weave, other, k + 1)
    else:
        s0, s1 = -_over(weave, k, other), -_over(weave, k + 1, other)
    return s0 + (s1 - s0) * a


def build_fabric(p: FabricParams, rs: Streams, size: int) -> Surface:
    """Warp and weft threads with fibre streaks, thickness variation, stripes or plaid, and fuzz."""
    y, x = grid(size)
    n = p.threads
    u, v = np.broadcast_to(x * n, (size, size)), np.broadcast_to(y * n, (size, size))
    col_i, row_j = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fx, fy = u - col_i, v - row_j
    rng = rs("threads")
    slub = 0.25 if p.fibre in ("linen", "canvas") else 0.1
    warp_w = p.thread_width * (1.0 + slub * rng.standard_normal(n).astype(np.float32))[col_i % n]
    weft_w = p.thread_width * (1.0 + slub * rng.standard_normal(n).astype(np.float32))[row_j % n]
    thick = fbm(rs("slubs"), size, 4, octaves=3, period_y=n // 2)
    warp_w = np.clip(warp_w * (1.0 + slub * 0.5 * thick), 0.2, 1.0)
    weft_w = np.clip(weft_w * (1.0 + slub * 0.5 * thick.T), 0.2, 1.0)
    prof_warp = np.sqrt(np.clip(1.0 - ((fx - 0.5) / (warp_w / 2)) ** 2, 0.0, 1.0))
    prof_weft = np.sqrt(np.clip(1.0 - ((fy - 0.5) / (weft_w / 2)) ** 2, 0.0, 1.0))
    h_warp = (0.5 + 0.3 * _undulation(p.weave, v, col_i, warp=True)) * prof_warp
    h_weft = (0.5 + 0.3 * _undulation(p.weave, u, row_j, warp=False)) * prof_weft
    warp_top = h_warp >= h_weft
    height = np.maximum(h_warp, h_weft)

    base = col.srgb(FABRIC_COLORS[p.color])
    accent = col.srgb(FABRIC_COLORS[p.accent_color])
    stripe_period = max(1, n // 4)
    stripe = (np.arange(n) % stripe_period) < max(1, stripe_period // 3)
    warp_colors = np.where(stripe[:, None] & (p.pattern != "solid"), accent, base)
    weft_base = col.srgb(UNDYED) if p.fibre == "denim" else base
    weft_colors = np.where(stripe[:, None] & (p.pattern == "plaid"), accent, weft_base)
    fib_warp = fbm(rs("warp fibres"), size, 4 * n, octaves=2, period_y=max(1, n // 2))
    fib_weft = fbm(rs("weft fibres"), size, max(1, n // 2), octaves=2, period_y=4 * n)
    rgb = np.where(
        warp_top[..., None],
        warp_colors[col_i % n] * (1.0 + 0.08 * fib_warp)[..., None],
        weft_colors[row_j % n] * (1.0 + 0.08 * fib_weft)[..., None],
    ).astype(np.float32)
    rgb = col.shade(rgb, 0.6 + 0.4 * smoothstep(0.0, 0.6, height))
    if p.fuzz > 0:
        sigma = 0.15 * p.fuzz / n
        rgb = np.stack([blur(rgb[..., c], sigma) for c in range(3)], axis=-1)
        height = blur(height, 0.5 * sigma)
    fuzz_noise = fbm(rs("fuzz"), size, min(8 * n, 512), octaves=1)
    rough = FIBRE_ROUGHNESS[p.fibre] + 0.05 * p.fuzz * fuzz_noise + 0.08 * (1.0 - smoothstep(0.0, 0.4, height))
    zeros = np.zeros((size, size), np.float32)
    return Surface(np.clip(rgb, 0, 1), np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, float(np.clip(96.0 / n, 1.0, 6.0)))
