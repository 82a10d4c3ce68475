"""Wood floor planks: growth rings of a log sliced along its length, fibres, knots, gaps and a finish.

Each plank is a flat-sawn board: its rings are the iso-distances from the log's axis, which lies at a random
offset beside and below the board, so rings appear as stripes and cathedral arches. Planks in a row have equal
lengths and each row a random offset, so the layout wraps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    JOINT_SHIFT,
    Streams,
    fbm,
    grid,
    rounded_inside,
    smoothstep,
    value_noise,
    wrap_delta,
)
from .params import Params, choice, number

# (early wood, late wood) colours, sRGB.
WOOD_SPECIES = {
    "oak": ("#b88d5c", "#7b5230"),
    "walnut": ("#6e4b33", "#3a2517"),
    "pine": ("#dcb77e", "#a8733c"),
    "maple": ("#dfc7a2", "#bb986b"),
    "cherry": ("#a9623d", "#6c3420"),
    "teak": ("#a9753f", "#6e4521"),
    "ash": ("#d6c4a3", "#9a8160"),
    "ebony": ("#3b2d25", "#15100c"),
}
FINISH_ROUGHNESS = {"raw": 0.75, "matte": 0.58, "satin": 0.36, "glossy": 0.14}


@dataclass(frozen=True)
class WoodPlankParams(Params):
    """Parameters of wooden floor planks (planks run horizontally)."""

    species: str = choice("oak", tuple(WOOD_SPECIES))
    planks: int = number(6, 1, 24, sample=(3, 10), doc="rows of planks across the tile")
    lengths: int = number(1, 1, 6, sample=(1, 2), doc="planks per row")
    gap_width: float = number(0.04, 0.0, 0.2, sample=(0.01, 0.08), doc="fraction of a plank's width")
    ring_density: float = number(0.5, 0.0, 1.0, doc="growth rings per plank width")
    grain_contrast: float = number(0.5, 0.0, 1.0)
    knots: float = number(0.3, 0.0, 1.0, doc="share of planks with a knot")
    finish: str = choice("satin", tuple(FINISH_ROUGHNESS))
    wear: float = number(0.2, 0.0, 1.0, doc="scuffed, dull, eroded patches")
    tone_variation: float = number(0.4, 0.0, 1.0, doc="plank-to-plank colour spread")


def build_wood_planks(p: WoodPlankParams, rs: Streams, size: int) -> Surface:
    """Rows of flat-sawn planks with rings, fibres and knots; gaps are low and rough."""
    y, x = grid(size)
    v = y * p.planks + JOINT_SHIFT
    row = np.floor(v).astype(np.int64)
    fy = v - row
    row = row % p.planks
    shift = rs("row shifts").random(p.planks).astype(np.float32)
    u = x * p.lengths - shift[row]
    column = np.floor(u).astype(np.int64)
    fx = u - column
    plank = row * p.lengths + column % p.lengths
    n = p.planks * p.lengths
    aspect = p.planks / p.lengths  # plank length in plank widths
    inside = rounded_inside(np.abs(fx - 0.5) * aspect, np.abs(fy - 0.5), aspect / 2 - p.gap_width / 2, 0.5 - p.gap_width / 2, 0.02)

    # Growth rings: distance from the log axis, which sits `centre` widths beside and `depth` below the board.
    rng = rs("planks")
    centre = rng.uniform(-1.5, 1.5, n).astype(np.float32)
    depth = rng.uniform(0.3, 2.5, n).astype(np.float32)
    rings_per_width = 2.0 + 10.0 * p.ring_density
    along = value_noise(rs("log wobble"), size, 2 * p.lengths, 4 * p.planks)  # slow change along the board
    warp = fbm(rs("ring warp"), size, 4, octaves=4, period_y=8 * p.planks)
    across = fy - 0.5 + centre[plank]
    z = depth[plank] + 0.5 * along
    r = np.sqrt(across * across + z * z) * rings_per_width + 0.25 * warp

    # Knots: an elongated eye in some planks; rings swirl around it (radius bump) and its core is dark.
    knot_on = rng.random(n) < 0.9 * p.knots
    knot_x = rng.random(n).astype(np.float32)
    knot_y = rng.uniform(0.25, 0.75, n).astype(np.float32)
    knot_r = rng.uniform(0.12, 0.28, n).astype(np.float32)
    kdx = wrap_delta(x - knot_x[plank]) * p.planks / 2.2
    kdy = fy - knot_y[plank]
    kd2 = (kdx * kdx + kdy * kdy) / (knot_r[plank] ** 2)
    knot = np.where(knot_on[plank], np.exp(-kd2), 0.0).astype(np.float32)
    r = r + 2.5 * knot
    ring = r - np.floor(r)
    late = smoothstep(0.55, 0.9, ring) * (1.0 - smoothstep(0.94, 1.0, ring))
    core = np.where(knot_on[plank], smoothstep(1.0, 0.3, kd2), 0.0)

    fibres = fbm(rs("fibres"), size, 2 * p.lengths, octaves=3, period_y=48 * p.planks)
    early_c, late_c = (col.srgb(c) for c in WOOD_SPECIES[p.species])
    tone = col.jitter_colors(rs("plank tones"), n, np.ones(3, np.float32) * 0.8, 0.12 * p.tone_variation, 0.03 * p.tone_variation)[plank] / 0.8
    grain = np.clip((0.35 + 0.65 * p.grain_contrast) * late + 0.08 * fibres + 0.9 * core, 0.0, 1.0)
    rgb = col.mix(early_c, late_c, grain) * tone

    wear = p.wear * smoothstep(0.0, 1.2, fbm(rs("wear"), size, 3, octaves=5))
    rgb = col.shade(rgb, 1.0 + 0.12 * wear)  # worn finish looks paler
    aa = p.planks / size
    cup = rng.normal(0.0, 1.0, n).astype(np.float32)
    face = 0.8 + 0.02 * cup[plank] - 0.03 * (2 * fy - 1) ** 2 - 0.04 * p.wear * (1.0 - late) + 0.01 * fibres
    profile = smoothstep(-aa, 0.06, inside)
    height = 0.15 + (face - 0.15) * np.sqrt(profile)
    gap = 1.0 - smoothstep(-aa, aa, inside)
    rgb = col.mix(rgb, col.shade(late_c, 0.35 * np.ones_like(gap)), gap)
    base_rough = FINISH_ROUGHNESS[p.finish]
    rough = base_rough + 0.35 * wear * (1.0 - base_rough) + 0.04 * fibres + 0.06 * late * (base_rough > 0.5)
    rough = rough + (0.9 - rough) * gap
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, height, np.clip(rough, 0, 1), zeros, 3.0)
