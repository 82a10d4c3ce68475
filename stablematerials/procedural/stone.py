"""Stone: cobblestones and flagstones (periodic Voronoi cells) and polished marble (veined turbulence)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import JOINT_SHIFT, Streams, fbm, grid, smoothstep, turbulence, voronoi
from .params import Params, choice, number

STONE_COLORS = {
    "grey": ("#7c7a77",),
    "granite": ("#8b8581", "#6f6a68", "#9a8f88"),
    "sandstone": ("#b39b73", "#a08462", "#c2ab84"),
    "basalt": ("#3f3f41", "#4a4846"),
    "red": ("#8b5a48", "#74493b"),
    "mixed": ("#7c7a77", "#a08462", "#5e5b58", "#8b5a48", "#9b9690"),
}
JOINT_COLORS = {"sand": "#a89470", "soil": "#4a3a2a", "moss": "#4f5f2b", "mortar": "#8e8a82"}
FLAG_COLORS = {
    "slate": ("#4d535a", "#5d5a55", "#3f4449"),
    "sandstone": ("#b9a27a", "#a68a63", "#c7b08a"),
    "limestone": ("#cfc7b5", "#bfb6a1", "#d9d2c2"),
    "bluestone": ("#5a6670", "#4e5962", "#66717a"),
    "quartzite": ("#c9bfb2", "#b3a89c", "#d6cdc0"),
}
FLAG_JOINTS = {"mortar": "#8e8a82", "grass": "#4c6a2a", "gravel": "#7d7770", "soil": "#4a3a2a"}
# (ground, vein) colours of marble varieties.
MARBLE_COLORS = {
    "carrara": ("#e6e5e1", "#8a8e95"),
    "calacatta": ("#efede7", "#a08659"),
    "nero": ("#1c1c1e", "#d8d6d0"),
    "verde": ("#1f3a2d", "#cddfce"),
    "rosa": ("#d6b6aa", "#8a584e"),
    "crema": ("#e1d1b3", "#a48860"),
}


def _cell_palette(rs: Streams, n: int, swatches: tuple[str, ...], value: float) -> np.ndarray:
    """(n, 3) colours: each cell picks one swatch, then jitters its brightness and tint."""
    rng = rs("cell colours")
    base = np.stack([col.srgb(s) for s in swatches])[rng.integers(0, len(swatches), n)]
    bright = 1.0 + value * rng.standard_normal((n, 1))
    tint = 1.0 + 0.012 * rng.standard_normal((n, 3))
    return np.clip(base * bright * tint, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Cobblestone
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CobblestoneParams(Params):
    """Parameters of a cobblestone pavement."""

    stones: int = number(8, 3, 32, sample=(5, 14), doc="stones across the tile")
    regularity: float = number(0.3, 0.0, 1.0, doc="1: stones on a grid (setts)")
    gap_width: float = number(0.12, 0.0, 0.4, sample=(0.04, 0.25), doc="in stone widths")
    roundness: float = number(0.6, 0.0, 1.0, doc="domed (1) or flat-topped (0)")
    color: str = choice("grey", tuple(STONE_COLORS))
    joint: str = choice("sand", tuple(JOINT_COLORS))
    wetness: float = number(0.0, 0.0, 1.0, doc="dark, glossy wet stone")


def build_cobblestone(p: CobblestoneParams, rs: Streams, size: int) -> Surface:
    """Domed stones (distance to the Voronoi border) in low, rough joints; worn tops are smoother."""
    cells = voronoi(rs("stones"), size, p.stones, jitter=1.0 - 0.85 * p.regularity)
    warp = fbm(rs("outline"), size, 4 * p.stones, octaves=3)
    inside = cells.edge - p.gap_width / 2 + 0.03 * warp
    aa = p.stones / size
    rise = 0.1 + 0.35 * p.roundness
    profile = smoothstep(-aa, rise, inside)
    lift = rs("stone heights").uniform(0.75, 1.0, cells.n_cells).astype(np.float32)
    grit = fbm(rs("grit"), size, 8 * p.stones, octaves=5)
    face = 0.35 + 0.6 * lift[cells.cell] * np.sqrt(profile) + 0.025 * fbm(rs("rock"), size, 2 * p.stones, octaves=4)
    joint_h = 0.12 + 0.04 * grit
    stone = smoothstep(-aa, aa, inside)
    height = joint_h + (face - joint_h) * np.sqrt(profile)

    colors = _cell_palette(rs, cells.n_cells, STONE_COLORS[p.color], 0.1)
    speckle = fbm(rs("speckle"), size, 16 * p.stones, octaves=3)
    stone_rgb = colors[cells.cell] * (1.0 + 0.05 * speckle + 0.04 * warp)[..., None]
    joint_rgb = col.shade(col.srgb(JOINT_COLORS[p.joint]), 1.0 + 0.12 * grit)
    rgb = col.mix(joint_rgb, stone_rgb, stone)
    rgb = col.shade(rgb, (1.0 - 0.35 * p.wetness) * (0.65 + 0.35 * np.sqrt(profile)))
    polish = profile * (1.0 - 0.5 * p.roundness)
    stone_rough = 0.75 - 0.2 * polish + 0.04 * speckle
    rough = 0.95 + (stone_rough - 0.95) * stone
    rough = rough * (1.0 - 0.55 * p.wetness)
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, height, np.clip(rough, 0, 1), zeros, 5.0)


# ----------------------------------------------------------------------------------------------
# Flagstone
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagstoneParams(Params):
    """Parameters of a flagstone pavement: large, flat, irregular slabs."""

    slabs: int = number(5, 2, 16, sample=(3, 8), doc="slabs across the tile")
    joint_width: float = number(0.06, 0.0, 0.3, sample=(0.02, 0.12), doc="in slab widths")
    irregularity: float = number(0.5, 0.0, 1.0, doc="ragged slab outlines")
    color: str = choice("slate", tuple(FLAG_COLORS))
    joint: str = choice("mortar", tuple(FLAG_JOINTS))
    cleft: float = number(0.5, 0.0, 1.0, doc="layered, riven surface relief")


def build_flagstone(p: FlagstoneParams, rs: Streams, size: int) -> Surface:
    """Flat slabs, each slightly tilted, with ragged edges and a terraced (riven) surface, in narrow joints."""
    cells = voronoi(rs("slabs"), size, p.slabs, jitter=0.95)
    ragged = fbm(rs("outline"), size, 3 * p.slabs, octaves=4)
    inside = cells.edge - p.joint_width / 2 + 0.04 * p.irregularity * ragged
    aa = p.slabs / size
    rng = rs("slab tilt")
    tilt = rng.normal(0.0, 0.15, (cells.n_cells, 2)).astype(np.float32)
    level = rng.uniform(0.65, 0.85, cells.n_cells).astype(np.float32)
    riven = fbm(rs("riven"), size, 2 * p.slabs, octaves=5)
    steps = np.floor(riven * 2.5) / 2.5 + 0.3 * (riven * 2.5 - np.floor(riven * 2.5)) / 2.5
    face = level[cells.cell] - tilt[cells.cell, 0] * cells.dx * 0.3 - tilt[cells.cell, 1] * cells.dy * 0.3
    face = face + 0.06 * p.cleft * steps + 0.01 * fbm(rs("grain"), size, 16 * p.slabs, octaves=2)
    profile = smoothstep(-aa, 0.04, inside)
    joint_h = 0.15 + 0.03 * fbm(rs("joint"), size, 12 * p.slabs, octaves=3)
    height = joint_h + (face - joint_h) * np.sqrt(profile)
    slab = smoothstep(-aa, aa, inside)

    colors = _cell_palette(rs, cells.n_cells, FLAG_COLORS[p.color], 0.08)
    bands = fbm(rs("bands"), size, 3, octaves=4)
    slab_rgb = colors[cells.cell] * (1.0 + 0.07 * bands + 0.05 * p.cleft * steps)[..., None]
    joint_rgb = col.shade(col.srgb(FLAG_JOINTS[p.joint]), 1.0 + 0.15 * fbm(rs("joint tint"), size, 24, octaves=3))
    rgb = col.mix(joint_rgb, slab_rgb, slab)
    rough = 0.95 + (0.7 + 0.05 * bands - 0.95) * slab
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 4.0)


# ----------------------------------------------------------------------------------------------
# Marble
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarbleParams(Params):
    """Parameters of polished marble."""

    kind: str = choice("carrara", tuple(MARBLE_COLORS))
    veins: float = number(0.5, 0.0, 1.0, doc="how many veins")
    turbulence: float = number(0.5, 0.0, 1.0, doc="how much the veins meander")
    vein_width: float = number(0.4, 0.0, 1.0)
    polish: float = number(0.8, 0.0, 1.0)
    slabs: int = number(1, 1, 6, sample=(1, 3), doc="slabs across the tile (1: one seamless slab)")


def _vein_field(rs: Streams, name: str, size: int, waves: int, warp: float, width: float) -> np.ndarray:
    """Veins in [0, 1]: lines where sin of a turbulence-warped plane wave crosses zero (Perlin 1985 marble).

    The wave vector is integer, so the stripes wrap; |sin(phase / 2)| keeps the period 2 pi in the phase.
    """
    rng = rs(name)
    kx = int(rng.integers(1, waves + 1))
    ky = int(rng.integers(-waves, waves + 1))
    y, x = grid(size)
    phase = 2 * np.pi * (kx * x + ky * y) + warp * 2 * np.pi * turbulence(rs(name + " turbulence"), size, 2, octaves=5)
    line = np.abs(np.sin(phase / 2))
    sharp = 4.0 + 40.0 * (1.0 - width) ** 2
    return (np.exp(-sharp * line) + 0.25 * np.exp(-0.25 * sharp * line)).astype(np.float32) / 1.25


def build_marble(p: MarbleParams, rs: Streams, size: int) -> Surface:
    """Cloudy ground with main and hairline veins; polished, nearly flat, veins slightly etched."""
    waves = 1 + int(round(3 * p.veins))
    main = _vein_field(rs, "main veins", size, waves, 0.3 + 1.2 * p.turbulence, p.vein_width)
    fine = _vein_field(rs, "hairlines", size, 2 * waves, 0.6 + 1.5 * p.turbulence, 0.0)
    cloud = fbm(rs("cloud"), size, 3, octaves=6)
    ground_c, vein_c = (col.srgb(c) for c in MARBLE_COLORS[p.kind])
    vein = np.clip(main + 0.5 * fine, 0.0, 1.0)
    rgb = col.mix(col.shade(ground_c, 1.0 + 0.05 * cloud), vein_c, 0.85 * vein)
    rgb = col.mix(rgb, (ground_c + vein_c) / 2, 0.15 * smoothstep(0.5, 2.0, cloud))
    height = 0.7 - 0.03 * vein + 0.005 * cloud
    rough = 0.04 + 0.4 * (1.0 - p.polish) + 0.06 * vein
    if p.slabs > 1:
        y, x = grid(size)
        u, v = x * p.slabs + JOINT_SHIFT, y * p.slabs + JOINT_SHIFT
        edge = np.minimum(np.minimum(u - np.floor(u), np.ceil(u) - u), np.minimum(v - np.floor(v), np.ceil(v) - v))
        joint = smoothstep(0.012 + p.slabs / size, 0.0, edge)
        height = height - 0.4 * joint
        rgb = col.mix(rgb, col.shade(ground_c, 0.6 * np.ones_like(joint)), joint)
        rough = rough + (0.85 - rough) * joint
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 2.0)
