"""Ground: soil (clods, pebbles, dry cracks, litter), gravel (packed stones of two sizes) and rippled sand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    Cells,
    Streams,
    blur,
    domes,
    fbm,
    grid,
    smoothstep,
    splat_segments,
    voronoi,
)
from .params import Params, choice, number

SOIL_COLORS = {"brown": "#5c4331", "dark": "#33271e", "red": "#7b4530", "sandy": "#8f7656", "grey": "#5e5a54"}
GRAVEL_COLORS = {
    "grey": ("#7e7c79", "#6a6865", "#908d89", "#5b5a58"),
    "river": ("#8a7d6c", "#6e6a64", "#a39a8a", "#5d5448", "#8d7766"),
    "white": ("#dcd9d2", "#c9c5bc", "#e6e3dc"),
    "red": ("#8c4a35", "#7a4030", "#9b5a42"),
    "dark": ("#3e3d3c", "#4a4846", "#333231"),
}
SAND_COLORS = {"beach": "#d6c09a", "desert": "#c99a62", "white": "#ebe5d5", "volcanic": "#3a3634", "red": "#b0653d"}


def _pebbles(cells: Cells, rs: Streams, name: str, active: float, size_range: tuple[float, float]) -> np.ndarray:
    """Dome heights in [0, 1] of round pebbles centred on a random share `active` of the Voronoi sites."""
    rng = rs(name)
    on = rng.random(cells.n_cells) < active
    return domes(cells, np.where(on, rng.uniform(*size_range, cells.n_cells), 0.0))


# ----------------------------------------------------------------------------------------------
# Soil
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoilParams(Params):
    """Parameters of bare soil."""

    color: str = choice("brown", tuple(SOIL_COLORS))
    moisture: float = number(0.3, 0.0, 1.0, doc="damp soil is darker and smoother")
    clumps: float = number(0.5, 0.0, 1.0, doc="size of the clods' relief")
    pebbles: float = number(0.3, 0.0, 1.0)
    cracks: float = number(0.0, 0.0, 1.0, doc="dried-mud polygons")
    litter: float = number(0.2, 0.0, 1.0, doc="twigs and dead leaves")

    @classmethod
    def adjust_sample(cls, values: dict, rng: np.random.Generator) -> dict:
        """Mud cracks only in dry soil, and only in some samples."""
        if values["moisture"] > 0.4 or rng.random() < 0.6:
            return values | {"cracks": 0.0}
        return values


def build_soil(p: SoilParams, rs: Streams, size: int) -> Surface:
    """Lumpy clods, scattered pebbles, optional dried-mud cracks and twigs."""
    clods = voronoi(rs("clods"), size, 24, jitter=1.0)
    lump = rs("clod heights").uniform(0.3, 1.0, clods.n_cells).astype(np.float32)
    clod = np.sqrt(smoothstep(0.0, 0.4, clods.edge)) * lump[clods.cell]
    crumbs = fbm(rs("crumbs"), size, 48, octaves=3)
    rough_ground = fbm(rs("ground"), size, 4, octaves=6)
    height = 0.45 + 0.1 * rough_ground + 0.18 * p.clumps * clod + 0.03 * crumbs
    if p.cracks > 0:
        plates = voronoi(rs("mud"), size, 5, jitter=1.0)
        warp = fbm(rs("crack warp"), size, 16, octaves=3)
        crack = smoothstep(0.02 + 0.06 * p.cracks, 0.0, plates.edge + 0.02 * warp)
        height = height * (1.0 - 0.5 * p.cracks) + 0.3 * p.cracks - 0.4 * crack
    else:
        crack = np.zeros((size, size), np.float32)
    sites = voronoi(rs("pebble sites"), size, 10, jitter=1.0)
    stones = _pebbles(sites, rs, "pebbles", 0.6 * p.pebbles, (0.12, 0.4))
    height = np.where(stones > 0, np.maximum(height, 0.5 + 0.35 * stones), height)

    dry = 1.0 - p.moisture
    soil = col.shade(col.srgb(SOIL_COLORS[p.color]), (0.6 + 0.4 * dry) * (1.0 + 0.1 * rough_ground + 0.08 * crumbs + 0.15 * p.clumps * (clod - 0.5)))
    soil = col.shade(soil, 1.0 - 0.5 * crack)
    pebble_tones = col.jitter_colors(rs("pebble colours"), sites.n_cells, col.srgb("#7d766c"), 0.15, 0.02)
    stone_rgb = col.shade(pebble_tones[sites.cell], (0.8 + 0.2 * dry) * (0.75 + 0.25 * stones))
    pebble = smoothstep(0.0, 0.05, stones)
    rgb = col.mix(soil, stone_rgb, pebble)
    rough = (0.95 - 0.35 * p.moisture) * (1.0 - pebble) + (0.7 - 0.3 * p.moisture) * pebble
    if p.litter > 0:
        rgb, height, rough = _litter(p.litter, rs, size, rgb, height, rough)
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 4.0)


def _litter(amount: float, rs: Streams, size: int, rgb: np.ndarray, height: np.ndarray, rough: np.ndarray) -> tuple:
    """Twigs (blurred wrapped segments) and leaf flecks lying on top of the ground."""
    rng = rs("twigs")
    count = int(round(40 * amount))
    starts = rng.random((count, 2))
    angle = rng.uniform(0, np.pi, count)
    length = rng.uniform(0.03, 0.15, count)
    ends = starts + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
    twig = np.minimum(blur(splat_segments(size, starts, ends), 0.0012) * 3.0, 1.0)
    leaves = amount * smoothstep(1.2, 1.5, fbm(rs("leaves"), size, 24, octaves=3))
    rgb = col.mix(col.mix(rgb, col.srgb("#3f2c1c"), twig), col.srgb("#7a5a2e"), leaves)
    height = np.maximum(height, height * (1 - twig) + (height + 0.08) * twig) + 0.04 * leaves
    rough = rough + (0.85 - rough) * np.maximum(twig, leaves)
    return rgb, height, rough


# ----------------------------------------------------------------------------------------------
# Gravel
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GravelParams(Params):
    """Parameters of loose gravel."""

    stones: int = number(24, 6, 96, sample=(12, 40), doc="large stones across the tile")
    color: str = choice("grey", tuple(GRAVEL_COLORS))
    roundness: float = number(0.5, 0.0, 1.0, doc="river pebbles (1) or crushed stone (0)")
    packing: float = number(0.6, 0.0, 1.0, doc="how tightly the stones fill the ground")
    wetness: float = number(0.0, 0.0, 1.0)


def build_gravel(p: GravelParams, rs: Streams, size: int) -> Surface:
    """Two layers of stones (large and small), rounded or faceted, over a dark fine-grained bed."""
    big = voronoi(rs("large"), size, p.stones, jitter=1.0)
    small = voronoi(rs("small"), size, 2 * p.stones, jitter=1.0)
    gap = 0.25 * (1.0 - p.packing) + 0.03
    heights = []
    for cells, name, scale in ((big, "large", 1.0), (small, "small", 0.6)):
        lift = rs(name + " heights").uniform(0.6, 1.0, cells.n_cells).astype(np.float32)[cells.cell]
        inside = np.clip((cells.edge - gap / 2) / 0.35, 0.0, 1.0)
        facet = fbm(rs(name + " facets"), size, 3 * p.stones, octaves=2)
        shape = p.roundness * np.sqrt(inside) + (1 - p.roundness) * np.clip(inside * 1.8 + 0.15 * facet, 0, 1)
        heights.append(np.where(inside > 0, 0.25 + 0.7 * scale * lift * shape, 0.0))
    top_small = heights[1] > heights[0]
    height = np.maximum(np.maximum(heights[0], heights[1]), 0.1 + 0.04 * fbm(rs("bed"), size, 64, octaves=2))
    on_stone = smoothstep(0.2, 0.3, height)

    swatches = np.stack([col.srgb(c) for c in GRAVEL_COLORS[p.color]])
    rng = rs("stone colours")
    palette_big = (swatches[rng.integers(0, len(swatches), big.n_cells)] * (1 + 0.1 * rng.standard_normal((big.n_cells, 1))))
    palette_small = (swatches[rng.integers(0, len(swatches), small.n_cells)] * (1 + 0.1 * rng.standard_normal((small.n_cells, 1))))
    stone_rgb = np.where(top_small[..., None], palette_small[small.cell], palette_big[big.cell]).astype(np.float32)
    speckle = fbm(rs("speckle"), size, 8 * p.stones, octaves=1)
    stone_rgb = stone_rgb * (1.0 + 0.06 * speckle)[..., None]
    bed = col.shade(col.srgb("#3d3833"), 1.0 + 0.2 * fbm(rs("bed tint"), size, 32, octaves=2))
    rgb = col.mix(bed, stone_rgb, on_stone)
    rgb = col.shade(rgb, (1.0 - 0.35 * p.wetness) * (0.75 + 0.25 * height))
    rough = (0.75 - 0.15 * p.roundness + 0.03 * speckle) * on_stone + 0.95 * (1 - on_stone)
    rough = rough * (1.0 - 0.55 * p.wetness)
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 6.0)


# ----------------------------------------------------------------------------------------------
# Sand
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandParams(Params):
    """Parameters of sand."""

    color: str = choice("beach", tuple(SAND_COLORS))
    ripples: float = number(0.5, 0.0, 1.0, doc="height of wind ripples")
    ripple_count: int = number(10, 2, 48, sample=(5, 20), doc="ripples across the tile")
    grain: float = number(0.5, 0.0, 1.0, doc="coarseness of the grains")
    wetness: float = number(0.0, 0.0, 1.0)
    debris: float = number(0.1, 0.0, 1.0, doc="shell fragments and small pebbles")


def build_sand(p: SandParams, rs: Streams, size: int) -> Surface:
    """Asymmetric wind ripples along an integer wave vector (so they wrap), fine grain, a little debris."""
    rng = rs("ripple direction")
    ky = int(rng.integers(-2, 3))
    y, x = grid(size)
    warp = fbm(rs("ripple warp"), size, 3, octaves=4)
    phase = 2 * np.pi * (p.ripple_count * x + ky * y) + 1.2 * warp
    wave = np.sin(phase + 0.7 * np.sin(phase))  # gentle stoss side, steep lee side
    grain = fbm(rs("grain"), size, int(64 + 128 * p.grain), octaves=2)
    height = 0.5 + 0.3 * p.ripples * wave + (0.01 + 0.03 * p.grain) * grain
    shells = _pebbles(voronoi(rs("debris sites"), size, 24, jitter=1.0), rs, "debris", 0.4 * p.debris, (0.05, 0.2))
    height = height + 0.1 * shells
    dry = 1.0 - p.wetness
    sand = col.shade(col.srgb(SAND_COLORS[p.color]), (0.65 + 0.35 * dry) * (1.0 + 0.05 * grain - 0.06 * p.ripples * (wave < -0.5)))
    shell_c = col.srgb("#efe8da") if p.color != "volcanic" else col.srgb("#6d6862")
    rgb = col.mix(sand, shell_c, smoothstep(0.0, 0.1, shells))
    rough = 0.95 - 0.45 * p.wetness + 0.02 * grain
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 4.0)
