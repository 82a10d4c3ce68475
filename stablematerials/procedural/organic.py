"""Organic surfaces: pebble-grain leather and tree bark (furrowed, plated or birch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    Streams,
    blur,
    fbm,
    grid,
    ridged,
    smoothstep,
    splat_segments,
    value_noise,
    voronoi,
)
from .params import Params, choice, flag, number

LEATHER_COLORS = {
    "black": "#1d1b1a",
    "brown": "#5b3722",
    "tan": "#a56d3e",
    "oxblood": "#4f1b1b",
    "cream": "#d8c6a6",
    "navy": "#23293b",
    "olive": "#4c4a2d",
}
LEATHER_FINISH = {"matte": 0.72, "satin": 0.5, "glossy": 0.28}
THREAD_COLORS = {"black": "#1d1b1a", "brown": "#5b3722", "tan": "#b98a55", "oxblood": "#4f1b1b",
                 "cream": "#e9dfc8", "navy": "#e9dfc8", "olive": "#d9cfa8"}
BARK_COLORS = {"brown": "#5e4634", "grey": "#6f6a63", "reddish": "#6d3f2c", "dark": "#3a302a"}


# ----------------------------------------------------------------------------------------------
# Leather
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeatherParams(Params):
    """Parameters of grained leather."""

    color: str = choice("brown", tuple(LEATHER_COLORS))
    pebbles: int = number(32, 8, 128, sample=(16, 56), doc="grain cells across the tile")
    grain_depth: float = number(0.5, 0.0, 1.0)
    wrinkles: float = number(0.4, 0.0, 1.0, doc="creases")
    finish: str = choice("satin", tuple(LEATHER_FINISH))
    wear: float = number(0.3, 0.0, 1.0, doc="burnished high points")
    stitching: bool = flag(False, doc="a row of saddle stitches across the tile")


def build_leather(p: LeatherParams, rs: Streams, size: int) -> Surface:
    """Pebbled grain (rounded Voronoi cells), creases from ridged noise, burnished peaks, optional stitches."""
    cells = voronoi(rs("grain"), size, p.pebbles, jitter=0.95)
    dome = rs("pebble heights").uniform(0.7, 1.0, cells.n_cells).astype(np.float32)
    pebble = np.sqrt(smoothstep(0.0, 0.3, cells.edge)) * dome[cells.cell]
    crease = blur(ridged(rs("creases"), size, 3, octaves=3) ** 8, 0.003)
    pores = fbm(rs("pores"), size, 4 * p.pebbles, octaves=1)
    height = 0.55 + 0.45 * p.grain_depth * (pebble - 0.5) - 0.2 * p.wrinkles * crease + 0.01 * pores
    mottle = fbm(rs("mottle"), size, 6, octaves=5)
    peak = smoothstep(0.3, 1.0, pebble) * (1.0 - crease)
    burnish = p.wear * smoothstep(-0.3, 1.0, fbm(rs("burnish"), size, 3, octaves=4)) * peak
    base = col.srgb(LEATHER_COLORS[p.color])
    tone = 1.0 + 0.06 * mottle - 0.3 * (1.0 - pebble) * p.grain_depth - 0.1 * p.wrinkles * crease
    rgb = col.shade(base, tone)
    rgb = col.mix(rgb, np.minimum(base * 1.5 + 0.05, 1.0), 0.35 * burnish)
    rough = LEATHER_FINISH[p.finish] + 0.12 * (1.0 - pebble) + 0.1 * p.wrinkles * crease - 0.25 * burnish
    if p.stitching:
        height, rgb, rough = _stitches(height, rgb, rough, size, p.color)
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 3.0)


def _stitches(height: np.ndarray, rgb: np.ndarray, rough: np.ndarray, size: int, color: str) -> tuple:
    """Add a horizontal row of slanted saddle stitches in a groove at mid-height of the tile (16 stitches)."""
    y, x = grid(size)
    groove = smoothstep(0.012, 0.0, np.abs(y - 0.5))
    u = x * 16 + (y - 0.5) * 3.0  # slanted dashes
    dash = np.abs((u - np.floor(u)) - 0.5)
    stitch = smoothstep(0.32, 0.22, dash) * smoothstep(0.02, 0.01, np.abs(y - 0.5))
    thread = np.sqrt(np.clip(stitch, 0, 1))
    height = height - 0.08 * groove + 0.12 * thread
    rgb = col.mix(col.shade(rgb, 1.0 - 0.25 * groove), col.srgb(THREAD_COLORS[color]), stitch)
    rough = rough + (0.8 - rough) * stitch
    return height, rgb, rough


# ----------------------------------------------------------------------------------------------
# Bark
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarkParams(Params):
    """Parameters of tree bark (the trunk runs vertically)."""

    kind: str = choice("furrowed", ("furrowed", "plated", "birch"), doc="oak-like ridges, pine plates, birch")
    ridges: int = number(8, 2, 32, sample=(4, 14), doc="ridges or plates across the tile")
    depth: float = number(0.6, 0.0, 1.0, doc="how deep the fissures are")
    color: str = choice("brown", tuple(BARK_COLORS), doc="birch is always pale")
    moss: float = number(0.2, 0.0, 1.0, doc="green moss in the fissures")
    lichen: float = number(0.1, 0.0, 1.0, doc="pale lichen patches on the ridges")


def _furrowed(p: BarkParams, rs: Streams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(height, fissure mask) of oak-like bark: a network of long ridges (cells stretched 5:1) split by furrows."""
    cells = voronoi(rs("furrows"), size, p.ridges, max(1, p.ridges // 5), jitter=1.0)
    warp = fbm(rs("furrow warp"), size, 3 * p.ridges, octaves=3, period_y=p.ridges // 2 + 1)
    ridge = smoothstep(0.0, 0.3, cells.edge + 0.06 * warp)
    cross = smoothstep(0.9, 0.97, ridged(rs("cross"), size, max(1, p.ridges // 2), octaves=3, period_y=3 * p.ridges))
    ridge = ridge * (1.0 - 0.7 * cross)
    fibre = fbm(rs("fibre"), size, 6 * p.ridges, octaves=2, period_y=p.ridges)
    height = 0.15 + 0.7 * np.sqrt(ridge) + 0.04 * fibre
    return height, 1.0 - ridge


def _plated(p: BarkParams, rs: Streams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(height, fissure mask) of pine-like bark: tall plates with flaking terraces between deep fissures."""
    cells = voronoi(rs("plates"), size, p.ridges, max(1, p.ridges // 2), jitter=0.9)
    warp = fbm(rs("edge warp"), size, 4 * p.ridges, octaves=3)
    plate = smoothstep(0.02, 0.18, cells.edge + 0.03 * warp)
    level = rs("plate levels").uniform(0.6, 1.0, cells.n_cells).astype(np.float32)
    flakes = np.floor((fbm(rs("flakes"), size, 2 * p.ridges, octaves=3) + 2.0) * 1.5) / 6.0
    height = 0.2 + plate * (0.5 * level[cells.cell] + 0.12 * flakes)
    return height, 1.0 - plate


def _birch(p: BarkParams, rs: Streams, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height, dark mask, lenticels) of birch bark: smooth, with horizontal lenticels and dark cracked patches."""
    rng = rs("lenticels")
    count = 10 * p.ridges
    starts = rng.random((count, 2)).astype(np.float32)
    lengths = rng.uniform(0.02, 0.12, count).astype(np.float32)
    ends = starts + np.stack([lengths, rng.normal(0.0, 0.003, count)], axis=1).astype(np.float32)
    marks = np.minimum(blur(splat_segments(size, starts, ends), 0.0015) * 3.0, 1.0)
    patches = smoothstep(0.9, 1.5, fbm(rs("patches"), size, 3, octaves=6, period_y=2))
    crack = ridged(rs("cracks"), size, 6, octaves=4, period_y=3) ** 4
    dark = np.clip(np.maximum(patches * (0.6 + 0.4 * crack), marks), 0.0, 1.0)
    height = 0.6 + 0.02 * value_noise(rs("smooth"), size, 8) - 0.25 * p.depth * patches * crack - 0.05 * marks
    return height, dark, marks


def build_bark(p: BarkParams, rs: Streams, size: int) -> Surface:
    """Bark of one of three kinds, with moss in the fissures and lichen on the ridges."""
    mottle = fbm(rs("mottle"), size, 6, octaves=5)
    if p.kind == "birch":
        height, dark, _ = _birch(p, rs, size)
        base = col.shade(col.srgb("#e8e3d8"), 1.0 + 0.04 * mottle)
        rgb = col.mix(base, col.srgb("#2a2623"), dark)
        rough = 0.6 + 0.3 * dark
        low = dark
    else:
        height, low = (_furrowed if p.kind == "furrowed" else _plated)(p, rs, size)
        height = 0.5 + (height - 0.5) * (0.4 + 0.6 * p.depth)
        base = col.srgb(BARK_COLORS[p.color])
        fibres = fbm(rs("colour fibres"), size, 8 * p.ridges, octaves=2, period_y=p.ridges)
        rgb = col.shade(base, (1.0 + 0.1 * mottle + 0.08 * fibres) * (1.2 - 0.75 * low))
        rough = 0.85 + 0.1 * low
    tufts = fbm(rs("moss tufts"), size, 48, octaves=2)
    moss = p.moss * smoothstep(0.3, 0.9, low + 0.4 * fbm(rs("moss"), size, 5, octaves=5) - 0.2 + 0.15 * tufts)
    rgb = col.mix(rgb, col.shade(col.srgb("#4f6b2a"), 1.0 + 0.1 * mottle + 0.2 * tufts), moss)
    lichen = p.lichen * smoothstep(0.7, 1.2, fbm(rs("lichen"), size, 10, octaves=4)) * (1.0 - low)
    rgb = col.mix(rgb, col.srgb("#a9b59a"), 0.8 * lichen)
    height = height + 0.04 * lichen + moss * (0.03 + 0.02 * tufts)
    rough = np.clip(rough + 0.1 * moss, 0.0, 1.0)
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), rough, zeros, 5.0)
