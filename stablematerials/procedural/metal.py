"""Metals: polished (optionally hammered), brushed, and painted or rusty plates.

Bare metal is metallic 1 with its specular colour (F0) as basecolor; paint and rust are dielectrics, metallic 0.
F0 colours are the usual measured reflectances at normal incidence (e.g. Hoffman, "Physics and Math of Shading",
SIGGRAPH 2015 course), converted to sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    JOINT_SHIFT,
    Streams,
    blur,
    fbm,
    grid,
    smoothstep,
    splat_segments,
    value_noise,
    voronoi,
)
from .params import Params, choice, flag, number

METAL_F0 = {
    "steel": "#c4c5c7",
    "aluminium": "#f4f5f5",
    "chrome": "#c6c9cc",
    "silver": "#faf7f1",
    "gold": "#ffda91",
    "copper": "#f9d0c1",
    "brass": "#f4e4ac",
    "bronze": "#e6ba88",
    "titanium": "#c1bab1",
}
PAINT_COLORS = {
    "red": "#9c2a22",
    "blue": "#2c4f86",
    "green": "#3c6a3e",
    "yellow": "#d9ab2a",
    "white": "#dedbd3",
    "grey": "#6f7377",
    "black": "#222324",
    "orange": "#c8561f",
    "teal": "#2b7174",
}
RUST_RAMP = [(0.0, "#2b170e"), (0.35, "#6b3318"), (0.65, "#9a4f22"), (1.0, "#c27a3c")]


def _scratches(rs: Streams, size: int, amount: float, direction: float | None) -> np.ndarray:
    """Thin wrapped scratch lines in [0, 1]; random angles, or near `direction` (radians) if given."""
    rng = rs("scratches")
    count = int(round(60 * amount))
    if count == 0:
        return np.zeros((size, size), np.float32)
    angle = rng.uniform(0, np.pi, count) if direction is None else direction + rng.normal(0, 0.08, count)
    length = rng.uniform(0.05, 0.4, count)
    starts = rng.random((count, 2))
    ends = starts + np.stack([np.cos(angle), np.sin(angle)], axis=1) * length[:, None]
    weights = rng.uniform(0.3, 1.0, count)
    return np.minimum(blur(splat_segments(size, starts, ends, weights), 0.0008) * 2.5, 1.0)


# ----------------------------------------------------------------------------------------------
# Polished and brushed metal
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolishedMetalParams(Params):
    """Parameters of polished (optionally hammered) bare metal."""

    metal: str = choice("steel", tuple(METAL_F0))
    polish: float = number(0.8, 0.0, 1.0, doc="mirror-like at 1")
    scratches: float = number(0.3, 0.0, 1.0)
    smudges: float = number(0.3, 0.0, 1.0, doc="fingerprints and haze")
    hammered: float = number(0.0, 0.0, 1.0, sample=(0.0, 1.0), doc="depth of hammer dimples")
    dimples: int = number(16, 4, 48, sample=(8, 24), doc="hammer dimples across the tile")


def build_polished_metal(p: PolishedMetalParams, rs: Streams, size: int) -> Surface:
    """Nearly flat metal: low roughness, fine scratches, hazy smudges, optional hammered dimples."""
    scratch = _scratches(rs, size, p.scratches, None)
    haze = p.smudges * smoothstep(0.2, 1.5, fbm(rs("smudges"), size, 5, octaves=6))
    height = 0.6 - 0.05 * scratch
    if p.hammered > 0:
        cells = voronoi(rs("dimples"), size, p.dimples, jitter=0.8)
        height = height - 0.35 * p.hammered * (1.0 - (cells.f1 / 0.75) ** 2).clip(0.0, 1.0)
    base_rough = 0.02 + 0.3 * (1.0 - p.polish)
    rough = base_rough + 0.25 * haze + 0.25 * scratch
    f0 = col.srgb(METAL_F0[p.metal])
    rgb = col.shade(f0, 1.0 - 0.06 * haze - 0.03 * scratch)
    ones = np.ones((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), ones, 2.0 + 6.0 * p.hammered)


@dataclass(frozen=True)
class BrushedMetalParams(Params):
    """Parameters of brushed metal."""

    metal: str = choice("steel", tuple(METAL_F0))
    direction: str = choice("horizontal", ("horizontal", "vertical"))
    roughness: float = number(0.35, 0.1, 0.8)
    fineness: float = number(0.6, 0.0, 1.0, doc="how fine the brush lines are")
    contrast: float = number(0.5, 0.0, 1.0, doc="visibility of the brush lines")
    scratches: float = number(0.2, 0.0, 1.0)


def build_brushed_metal(p: BrushedMetalParams, rs: Streams, size: int) -> Surface:
    """Streaks from highly anisotropic noise (long along the brush, fine across it), plus stray scratches."""
    across = int(64 * 2 ** (2 * p.fineness))  # 64 .. 256 lattice cells across the brush
    streak = fbm(rs("brush"), size, 2, octaves=3, period_y=across)
    band = value_noise(rs("bands"), size, 1, 8)
    scratch = _scratches(rs, size, p.scratches, 0.0)
    if p.direction == "vertical":
        streak, band, scratch = streak.T, band.T, scratch.T
    c = 0.3 + 0.7 * p.contrast
    height = 0.5 + 0.08 * c * streak - 0.05 * scratch
    rough = p.roughness + 0.06 * c * streak + 0.03 * band + 0.2 * scratch
    rgb = col.shade(col.srgb(METAL_F0[p.metal]), 1.0 + 0.04 * c * streak + 0.02 * band)
    ones = np.ones((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), ones, 1.0)


# ----------------------------------------------------------------------------------------------
# Plates: paint over steel, peeling to bare metal and rust
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlateLayers:
    """How a plate's layers are distributed (derived from a family's parameters)."""

    paint: str | None  # paint colour name, or None for no paint
    exposed: float  # 0..1: how much of the paint has come off
    rust: float  # 0..1: how much of the exposed metal has rusted
    pitting: float
    gloss: float
    panels: int
    rivets: bool


def _plate_layout(size: int, panels: int, rivets: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seam groove, rivet heads, distance-to-seam in panel units) of a grid of `panels` x `panels` plates."""
    y, x = grid(size)
    u, v = x * panels + JOINT_SHIFT, y * panels + JOINT_SHIFT
    fx, fy = u - np.floor(u), v - np.floor(v)
    ex, ey = np.minimum(fx, 1 - fx), np.minimum(fy, 1 - fy)
    edge = np.minimum(ex, ey)
    aa = panels / size
    seam = smoothstep(0.008 + aa, 0.0, edge)
    heads = np.zeros((size, size), np.float32)
    if rivets:
        per_side = 8
        rx = (fx * per_side + 0.5) % 1.0 - 0.5  # offset to the nearest rivet centre along the edge, in rivet pitches
        ry = (fy * per_side + 0.5) % 1.0 - 0.5
        inset = 0.045
        d_top = np.sqrt((rx / per_side) ** 2 + (np.minimum(np.abs(fy - inset), np.abs(1 - inset - fy))) ** 2)
        d_side = np.sqrt((ry / per_side) ** 2 + (np.minimum(np.abs(fx - inset), np.abs(1 - inset - fx))) ** 2)
        d = np.minimum(d_top, d_side)
        radius = 0.018
        heads = np.sqrt(np.clip(1.0 - (d / radius) ** 2, 0.0, 1.0))
    return seam.astype(np.float32), heads.astype(np.float32), edge.astype(np.float32)


def build_plate(layers: PlateLayers, rs: Streams, size: int) -> Surface:
    """Steel plates with seams and rivets, paint peeling off (more along edges) to a bare-metal rim and rust."""
    seam, heads, edge = _plate_layout(size, layers.panels, layers.rivets)
    edge_wear = smoothstep(0.15, 0.0, edge) + heads
    peel_noise = fbm(rs("peel"), size, 4, octaves=6) + 0.8 * edge_wear
    if layers.paint is None:
        exposed_amount = np.ones((size, size), np.float32)
        rim = np.zeros((size, size), np.float32)
    else:
        threshold = 1.8 - 3.6 * layers.exposed  # exposed where noise > threshold
        exposed_amount = smoothstep(threshold, threshold + 0.05, peel_noise)
        rim = smoothstep(threshold, threshold + 0.05, peel_noise) - smoothstep(threshold + 0.25, threshold + 0.4, peel_noise)
    rust_noise = fbm(rs("rust"), size, 6, octaves=6)
    rust_level = 1.6 - 3.2 * layers.rust
    rust = smoothstep(rust_level, rust_level + 0.4, rust_noise + 0.4 * edge_wear) * exposed_amount * (1.0 - rim)
    metal = exposed_amount * (1.0 - rust)
    paint = 1.0 - exposed_amount

    pits = layers.pitting * smoothstep(0.8, 1.6, fbm(rs("pits"), size, 48, octaves=2)) * rust
    blister = fbm(rs("blister"), size, 24, octaves=5)
    grain = fbm(rs("paint grain"), size, 96, octaves=4)  # orange peel of sprayed paint
    height = 0.45 + (0.1 + 0.008 * grain) * paint + 0.05 * rust * blister - 0.15 * pits - 0.2 * seam + 0.25 * heads
    steel = col.shade(col.srgb(METAL_F0["steel"]), 0.9 + 0.05 * fbm(rs("steel"), size, 16, octaves=3))
    rust_rgb = col.ramp(0.5 + 0.3 * rust_noise + 0.2 * blister - 0.5 * pits, RUST_RAMP)
    rgb = col.mix(steel, rust_rgb, rust)
    paint_rough = 0.15 + 0.55 * (1.0 - layers.gloss)
    rough = 0.35 * metal + 0.9 * rust + paint_rough * paint
    if layers.paint is not None:
        dirt = smoothstep(0.0, 1.5, fbm(rs("dirt"), size, 3, octaves=5))
        paint_rgb = col.shade(col.srgb(PAINT_COLORS[layers.paint]), 1.0 - 0.15 * dirt + 0.03 * blister + 0.02 * grain)
        rgb = col.mix(rgb, paint_rgb, paint)
        rough = rough + 0.1 * dirt * paint
    rgb = col.shade(rgb, 1.0 - 0.4 * seam)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), metal.astype(np.float32), 4.0)


@dataclass(frozen=True)
class PaintedMetalParams(Params):
    """Parameters of painted steel plates."""

    paint_color: str = choice("green", tuple(PAINT_COLORS))
    gloss: float = number(0.5, 0.0, 1.0)
    wear: float = number(0.3, 0.0, 1.0, sample=(0.1, 0.7), doc="how much paint has peeled off")
    rust: float = number(0.3, 0.0, 1.0, doc="share of the exposed steel that has rusted")
    panels: int = number(2, 1, 6, sample=(1, 4))
    rivets: bool = flag(True)


def build_painted_metal(p: PaintedMetalParams, rs: Streams, size: int) -> Surface:
    """Painted plates: mostly paint, chipped along seams and rivets."""
    layers = PlateLayers(p.paint_color, 0.1 + 0.5 * p.wear, p.rust, 0.2, p.gloss, p.panels, p.rivets)
    return build_plate(layers, rs, size)


@dataclass(frozen=True)
class RustyMetalParams(Params):
    """Parameters of rusted steel plates."""

    corrosion: float = number(0.7, 0.0, 1.0, sample=(0.3, 1.0), doc="how much of the steel is rust")
    pitting: float = number(0.5, 0.0, 1.0)
    paint_remnants: str = choice("none", ("none", *PAINT_COLORS), doc="colour of leftover paint, if any")
    panels: int = number(1, 1, 6, sample=(1, 3))
    rivets: bool = flag(False)


def build_rusty_metal(p: RustyMetalParams, rs: Streams, size: int) -> Surface:
    """Rusty plates: rust dominates, with bare steel patches and maybe flakes of old paint."""
    paint = None if p.paint_remnants == "none" else p.paint_remnants
    layers = PlateLayers(paint, 0.75 + 0.25 * p.corrosion, 0.45 + 0.5 * p.corrosion, p.pitting, 0.3, p.panels, p.rivets)
    return build_plate(layers, rs, size)
