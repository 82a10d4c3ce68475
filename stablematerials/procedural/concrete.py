"""Cast and troweled mineral surfaces: concrete (with formwork marks, pores, aggregate) and plaster."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    JOINT_SHIFT,
    Streams,
    domes,
    fbm,
    grid,
    ridged,
    smoothstep,
    value_noise,
    voronoi,
)
from .params import Params, choice, number

CONCRETE_COLORS = {"grey": "#8e8c88", "light": "#b8b5af", "dark": "#5e5c59", "warm": "#a49b8d"}
PLASTER_COLORS = {
    "white": "#e8e5de",
    "cream": "#e3d7bc",
    "ochre": "#c89b57",
    "terracotta": "#b8714e",
    "pink": "#d8aaa0",
    "grey": "#a8a6a1",
    "blue": "#8fa5b7",
}


def _cracks(rs: Streams, size: int, amount: float, period: int) -> np.ndarray:
    """Thin branching cracks in [0, 1]: the crest lines of ridged noise, only where a mask of `amount` allows."""
    if amount <= 0:
        return np.zeros((size, size), np.float32)
    lines = smoothstep(0.9, 0.97, ridged(rs("cracks"), size, period, octaves=4))
    where = smoothstep(1.2 - 2.2 * amount, 1.5 - 2.2 * amount, fbm(rs("crack mask"), size, 2, octaves=3))
    return (lines * where).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Concrete
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConcreteParams(Params):
    """Parameters of cast concrete."""

    color: str = choice("grey", tuple(CONCRETE_COLORS))
    formwork: str = choice("none", ("none", "panels", "boards"), doc="marks left by the mould")
    divisions: int = number(2, 1, 16, sample=(1, 8), doc="panels or boards across the tile")
    aggregate: float = number(0.2, 0.0, 1.0, doc="exposed pebbles")
    pores: float = number(0.3, 0.0, 1.0, doc="air holes")
    stains: float = number(0.3, 0.0, 1.0, doc="water stains and streaks")
    cracks: float = number(0.1, 0.0, 1.0)


def _formwork(p: ConcreteParams, rs: Streams, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height offset, seam mask, tone offset) left by panel or board formwork."""
    zeros = np.zeros((size, size), np.float32)
    if p.formwork == "none":
        return zeros, zeros, zeros
    y, x = grid(size)
    d = p.divisions
    v = y * d + JOINT_SHIFT
    fy = v - np.floor(v)
    tone_rng = rs("form tones")
    if p.formwork == "boards":
        board = np.floor(v).astype(np.int64) % d
        grain = fbm(rs("board grain"), size, 3, octaves=4, period_y=24 * d)
        seam = smoothstep(0.03 + d / size, 0.0, np.minimum(fy, 1 - fy))
        tone = tone_rng.normal(0.0, 0.04, d).astype(np.float32)[board]
        return 0.03 * grain + 0.03 * seam, seam, tone + 0.03 * grain
    u = x * d + JOINT_SHIFT
    fx = u - np.floor(u)
    edge = np.minimum(np.minimum(fx, 1 - fx), np.minimum(fy, 1 - fy))
    seam = smoothstep(0.006 + d / size, 0.0, edge)
    # Tie holes: a 2 x 2 grid of cone holes in each panel.
    hx, hy = (fx * 2) % 1.0 - 0.5, (fy * 2) % 1.0 - 0.5
    hole = smoothstep(0.05, 0.03, np.sqrt(hx * hx + hy * hy) / 2)
    panel = (np.floor(v).astype(np.int64) % d) * d + np.floor(u).astype(np.int64) % d
    tone = tone_rng.normal(0.0, 0.04, d * d).astype(np.float32)[panel]
    return -0.3 * hole + 0.02 * seam, np.maximum(seam, hole), tone


def build_concrete(p: ConcreteParams, rs: Streams, size: int) -> Surface:
    """Cement paste with exposed aggregate, air pores, formwork marks, stains and cracks."""
    cloud = fbm(rs("cloud"), size, 4, octaves=6)
    fine = fbm(rs("fine"), size, 64, octaves=2)
    stones = voronoi(rs("aggregate"), size, 24, jitter=1.0)
    shown = rs("aggregate shown").random(stones.n_cells) < p.aggregate
    pebble = smoothstep(0.0, 0.3, domes(stones, np.where(shown, rs("aggregate sizes").uniform(0.15, 0.45, stones.n_cells), 0.0)))
    pore_cells = voronoi(rs("pores"), size, 40, jitter=1.0)
    radius = rs("pore sizes").uniform(0.05, 0.25, pore_cells.n_cells) * (rs("pore on").random(pore_cells.n_cells) < p.pores)
    pore = smoothstep(0.0, -0.05, pore_cells.f1 - radius[pore_cells.cell].astype(np.float32))
    form_h, seam, form_tone = _formwork(p, rs, size)
    crack = _cracks(rs, size, p.cracks, 6)
    streaks = p.stains * smoothstep(0.3, 1.5, fbm(rs("streaks"), size, 12, octaves=4, period_y=2))
    patches = p.stains * smoothstep(0.5, 1.5, cloud)

    height = 0.6 + 0.02 * cloud + 0.01 * fine + 0.06 * pebble - 0.35 * pore - 0.25 * crack + form_h
    base = col.srgb(CONCRETE_COLORS[p.color])
    rgb = col.shade(base, 1.0 + 0.06 * cloud + 0.04 * fine + form_tone - 0.2 * streaks - 0.12 * patches)
    pebble_rgb = _aggregate_colors(rs, stones.n_cells)[stones.cell]
    rgb = col.mix(rgb, pebble_rgb, pebble)
    rgb = col.shade(rgb, 1.0 - 0.5 * pore - 0.5 * crack - 0.3 * seam)
    rough = 0.88 + 0.04 * fine - 0.12 * pebble + 0.05 * pore - 0.08 * patches
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 2.5)


def _aggregate_colors(rs: Streams, n: int) -> np.ndarray:
    """(n, 3) pebble colours for exposed aggregate: greys, browns and off-whites."""
    swatches = np.stack([col.srgb(c) for c in ("#6d6a66", "#8f8373", "#b9b2a6", "#4f4d4b", "#9a7e66")])
    rng = rs("aggregate colours")
    return (swatches[rng.integers(0, len(swatches), n)] * (1 + 0.08 * rng.standard_normal((n, 1)))).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Plaster
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlasterParams(Params):
    """Parameters of a plastered (stucco) wall."""

    color: str = choice("white", tuple(PLASTER_COLORS))
    finish: str = choice("troweled", ("smooth", "troweled", "stucco", "sand"))
    relief: float = number(0.5, 0.0, 1.0, doc="strength of the finish's texture")
    cracks: float = number(0.2, 0.0, 1.0)
    peeling: float = number(0.1, 0.0, 1.0, doc="paint flaking off to the grey base coat")
    dirt: float = number(0.2, 0.0, 1.0)


def _plaster_relief(p: PlasterParams, rs: Streams, size: int) -> np.ndarray:
    """Height texture of the finish, about [-1, 1]: trowel terraces, knock-down blobs, sand grain, or gentle waves."""
    if p.finish == "troweled":
        out = np.zeros((size, size), np.float32)
        for k in range(4):  # overlapping trowel passes: flat plateaus with soft edges
            patch = smoothstep(0.0, 0.15, fbm(rs(f"trowel {k}"), size, 5, octaves=4, period_y=4))
            out = np.maximum(out, patch * (0.25 * (k + 1)))
        return 2.0 * out - 1.0 + 0.1 * fbm(rs("trowel grain"), size, 64, octaves=2)
    if p.finish == "stucco":
        blobs = smoothstep(0.1, 0.4, fbm(rs("knockdown"), size, 14, octaves=3))
        return 2.0 * blobs - 1.0 + 0.15 * fbm(rs("stucco grain"), size, 64, octaves=2)
    if p.finish == "sand":
        return 0.8 * fbm(rs("sand"), size, 96, octaves=2) + 0.2 * value_noise(rs("sand waves"), size, 6)
    return 0.5 * fbm(rs("waves"), size, 3, octaves=3)


def build_plaster(p: PlasterParams, rs: Streams, size: int) -> Surface:
    """A plastered wall: finish relief, hairline cracks, paint peeling to the base coat, dirt."""
    relief = _plaster_relief(p, rs, size)
    crack = _cracks(rs, size, p.cracks, 5)
    peel = smoothstep(1.6 - 2.6 * p.peeling, 1.65 - 2.6 * p.peeling, fbm(rs("peel"), size, 4, octaves=6)) if p.peeling > 0 else 0.0 * relief
    dirt = p.dirt * smoothstep(-0.5, 1.5, fbm(rs("dirt"), size, 3, octaves=5) + 0.5 * fbm(rs("drips"), size, 16, octaves=3, period_y=2))
    height = 0.6 + 0.12 * (0.3 + 0.7 * p.relief) * relief - 0.3 * crack - 0.08 * peel
    paint = col.shade(col.srgb(PLASTER_COLORS[p.color]), 1.0 + 0.03 * relief - 0.3 * dirt)
    basecoat = col.shade(col.srgb("#9d9890"), 1.0 + 0.08 * fbm(rs("basecoat"), size, 32, octaves=2))
    rgb = col.mix(paint, basecoat, peel)
    rgb = col.shade(rgb, 1.0 - 0.45 * crack)
    rough = 0.82 + 0.06 * relief * (p.finish != "smooth") + 0.08 * peel + 0.05 * dirt
    if p.finish == "smooth":
        rough = rough - 0.25
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, np.clip(height, 0, 1), np.clip(rough, 0, 1), zeros, 2.5)
