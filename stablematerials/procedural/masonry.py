"""Masonry on a lattice: bricks (running, stack, English bond), square tiles and hexagonal tiles.

Every unit is a raised block with a bevelled, possibly chipped border; joints (mortar or grout) are lower, rougher
and a separate colour. Layouts repeat a whole number of times across the tile, so they wrap exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import color as col
from .family import Surface
from .noise import (
    JOINT_SHIFT,
    Streams,
    fbm,
    grid,
    hex_sites,
    rounded_inside,
    smoothstep,
    voronoi_sites,
)
from .params import Params, choice, number

BRICK_COLORS = {
    "red": "#8c3a28",
    "brown": "#6a4431",
    "orange": "#b2653d",
    "yellow": "#c8a66c",
    "grey": "#85807a",
    "white": "#d6d0c2",
    "charcoal": "#3c3937",
}
MORTAR_COLORS = {"grey": "#9a968e", "white": "#dedacf", "dark": "#4a4744", "sand": "#b9a684"}
TILE_COLORS = {
    "white": "#e8e6e0",
    "cream": "#e2d5b6",
    "black": "#1f1f21",
    "terracotta": "#b3603e",
    "blue": "#2e5c8a",
    "green": "#3e7a58",
    "grey": "#8c8f92",
    "pink": "#d6a2a5",
}
GROUT_COLORS = {"white": "#d9d6cf", "grey": "#8b8883", "dark": "#3b3a39", "sand": "#b8a98c"}
GLAZE_ROUGHNESS = {"glossy": 0.07, "satin": 0.28, "matte": 0.58}


# ----------------------------------------------------------------------------------------------
# Shared: joints, relief and wear of a block pattern
# ----------------------------------------------------------------------------------------------


def _chipped(inside: np.ndarray, rs: Streams, size: int, period: int, amount: float, depth: float) -> np.ndarray:
    """Erode block borders where chipping noise is high: the inside distance minus a noisy bite."""
    if amount <= 0:
        return inside
    n = fbm(rs("chips"), size, period, octaves=4)
    return inside - amount * depth * np.maximum(0.0, n + 0.4)


def _block_relief(inside: np.ndarray, face: np.ndarray, joint: np.ndarray, aa: float, bevel: float) -> tuple[np.ndarray, np.ndarray]:
    """(height, block mask): joint level outside, rising over a bevel of width `bevel` to the face level."""
    profile = smoothstep(-aa, bevel, inside)
    height = joint + (face - joint) * np.sqrt(profile)
    mask = smoothstep(-aa, aa, inside)
    return height.astype(np.float32), mask.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Bricks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrickParams(Params):
    """Parameters of brick walls."""

    bond: str = choice("running", ("running", "stack", "english"), doc="how courses are offset")
    rows: int = number(8, 2, 40, sample=(6, 16), step=2, doc="courses across the tile")
    bricks_per_row: int = number(3, 1, 16, sample=(2, 5), doc="stretchers per course")
    mortar_width: float = number(0.12, 0.0, 0.5, sample=(0.05, 0.3), doc="joint width, fraction of a course")
    mortar_depth: float = number(0.5, 0.0, 1.0, doc="how far the joints are recessed")
    chipping: float = number(0.3, 0.0, 1.0, doc="broken edges and corners")
    color: str = choice("red", tuple(BRICK_COLORS))
    color_variation: float = number(0.4, 0.0, 1.0, doc="brick-to-brick colour spread")
    mortar_color: str = choice("grey", tuple(MORTAR_COLORS))
    weathering: float = number(0.3, 0.0, 1.0, doc="grime, salt bloom and roughness")

    @classmethod
    def adjust_sample(cls, values: dict, rng: np.random.Generator) -> dict:
        """Bricks with a plausible length-to-height ratio (2.2 to 4 courses per brick)."""
        return values | {"bricks_per_row": int(np.clip(round(values["rows"] / rng.uniform(2.2, 4.0)), 1, 16))}


def build_bricks(p: BrickParams, rs: Streams, size: int) -> Surface:
    """Courses of bricks with bevelled, chipped edges in recessed mortar (distances in course heights)."""
    y, x = grid(size)
    v = y * p.rows + JOINT_SHIFT
    row = np.floor(v).astype(np.int64)
    fy = v - row
    row = row % p.rows
    odd = row % 2
    per_row = np.full_like(row, p.bricks_per_row)
    offset = np.zeros_like(v)
    if p.bond == "running":
        offset = 0.5 * odd
    elif p.bond == "english":  # header courses: bricks half as long, centred over the stretcher joints
        per_row = np.where(odd == 1, 2 * p.bricks_per_row, p.bricks_per_row)
        offset = 0.5 * odd
    u = x * per_row + offset + JOINT_SHIFT
    column = np.floor(u).astype(np.int64)
    fx = u - column
    brick = row * (2 * p.bricks_per_row) + column % per_row
    length = p.rows / per_row  # brick length in course heights
    half_joint = p.mortar_width / 2
    inside = rounded_inside(np.abs(fx - 0.5) * length, np.abs(fy - 0.5), length / 2 - half_joint, 0.5 - half_joint, 0.04)
    inside = _chipped(inside, rs, size, 2 * p.rows, p.chipping, 0.12)

    n_bricks = p.rows * 2 * p.bricks_per_row
    cell_rng = rs("bricks")
    lift = cell_rng.standard_normal(n_bricks).astype(np.float32)
    face = 0.78 + 0.04 * lift[brick] + 0.035 * fbm(rs("face"), size, 2 * p.rows, octaves=5)
    joint = 0.5 - 0.35 * p.mortar_depth + 0.03 * fbm(rs("mortar"), size, 8 * p.rows, octaves=5)
    aa = p.rows / size
    height, mask = _block_relief(inside, face, joint, aa, 0.09)

    cv = p.color_variation
    bricks_rgb = col.jitter_colors(rs("brick colours"), n_bricks, col.srgb(BRICK_COLORS[p.color]), 0.2 * cv, 0.03 * cv)
    speckle = fbm(rs("speckle"), size, 8 * p.rows, octaves=5)
    brick_rgb = bricks_rgb[brick] * (1.0 + 0.07 * speckle)[..., None]
    mortar_rgb = col.shade(col.srgb(MORTAR_COLORS[p.mortar_color]), 1.0 + 0.05 * fbm(rs("mortar tint"), size, 16, 4))
    rgb = col.mix(mortar_rgb, brick_rgb, mask)

    w = p.weathering
    grime = w * smoothstep(-0.5, 1.5, fbm(rs("grime"), size, 3, octaves=5))
    salt = w * smoothstep(0.9, 1.8, fbm(rs("salt"), size, 4, octaves=5))
    rgb = col.shade(rgb, 1.0 - 0.35 * grime - 0.25 * w * (1.0 - np.sqrt(smoothstep(-aa, 0.09, inside))))
    rgb = col.mix(rgb, col.srgb("#e6e2d8"), 0.35 * salt)
    rough = 0.95 + (0.8 + 0.04 * speckle + 0.08 * grime - 0.95) * mask + 0.05 * salt
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, height, np.clip(rough, 0, 1), zeros, 4.0)


# ----------------------------------------------------------------------------------------------
# Tiles (square and hexagonal share colouring, glaze and wear)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileLook(Params):
    """Colour, glaze and wear of glazed tiles (shared by square and hexagonal tiles)."""

    grout_width: float = number(0.06, 0.0, 0.3, sample=(0.02, 0.12), doc="fraction of a tile")
    bevel: float = number(0.5, 0.0, 1.0, doc="rounded tile edges")
    color: str = choice("white", tuple(TILE_COLORS))
    pattern: str = choice("plain", ("plain", "checker", "mixed"), doc="checker needs an even tile count")
    glaze: str = choice("glossy", tuple(GLAZE_ROUGHNESS))
    grout_color: str = choice("grey", tuple(GROUT_COLORS))
    wear: float = number(0.2, 0.0, 1.0, doc="chips, scuffs and dull patches")
    variation: float = number(0.3, 0.0, 1.0, doc="tile-to-tile colour spread")


def _tile_colors(p: TileLook, rs: Streams, n: int, checker: np.ndarray) -> np.ndarray:
    """(n, 3) colours of the tiles: one colour, a two-colour checker, or shades mixed at random."""
    base = col.srgb(TILE_COLORS[p.color])
    rng = rs("tile colours")
    if p.pattern == "checker":
        partner = col.srgb(TILE_COLORS["black" if p.color in ("white", "cream", "yellow", "pink") else "white"])
        colors = np.where(checker[:, None], partner, base)
    elif p.pattern == "mixed":
        shades = np.stack([base * 0.72, base, np.minimum(base * 1.2 + 0.04, 1.0)])
        colors = shades[rng.integers(0, 3, n)]
    else:
        colors = np.broadcast_to(base, (n, 3))
    bright = 1.0 + 0.07 * p.variation * rng.standard_normal((n, 1))
    return np.clip(colors * bright, 0.0, 1.0).astype(np.float32)


def _finish_tiles(p: TileLook, rs: Streams, size: int, inside: np.ndarray, tile: np.ndarray, colors: np.ndarray, aa: float, period: int) -> Surface:
    """Relief, colour and roughness of a tiled floor from the tiles' inside distance and ids."""
    inside = _chipped(inside, rs, size, 2 * period, p.wear, 0.06)
    lippage = rs("lippage").standard_normal(len(colors)).astype(np.float32)
    face = 0.82 + 0.025 * lippage[tile] + 0.012 * fbm(rs("wave"), size, period, octaves=3)
    joint = 0.35 + 0.02 * fbm(rs("grout"), size, 16 * period, octaves=2)
    height, mask = _block_relief(inside, face, joint, aa, 0.012 + 0.07 * p.bevel)

    mottle = fbm(rs("mottle"), size, 4 * period, octaves=4)
    glaze_mottle = {"glossy": 0.015, "satin": 0.03, "matte": 0.06}[p.glaze]
    tile_rgb = colors[tile] * (1.0 + glaze_mottle * mottle)[..., None]
    grout_rgb = col.shade(col.srgb(GROUT_COLORS[p.grout_color]), 1.0 + 0.06 * fbm(rs("grout tint"), size, 32, 3))
    scuff = p.wear * smoothstep(0.2, 1.4, fbm(rs("scuff"), size, 4, octaves=6))
    rgb = col.mix(grout_rgb, tile_rgb, mask)
    rgb = col.shade(rgb, 1.0 - 0.12 * scuff)
    tile_rough = GLAZE_ROUGHNESS[p.glaze] + 0.4 * scuff + 0.01 * mottle
    rough = 0.92 + (tile_rough - 0.92) * mask
    zeros = np.zeros((size, size), np.float32)
    return Surface(rgb, height, np.clip(rough, 0, 1), zeros, 3.0)


@dataclass(frozen=True)
class SquareTileParams(TileLook):
    """Parameters of square tiles."""

    tiles: int = number(6, 1, 32, sample=(3, 10), doc="tiles across the tile")

    def check(self) -> None:
        """A checker pattern only wraps with an even tile count."""
        if self.pattern == "checker" and self.tiles % 2:
            raise ValueError(f"SquareTileParams.tiles must be even for a checker pattern, got {self.tiles}")

    @classmethod
    def adjust_sample(cls, values: dict, rng: np.random.Generator) -> dict:
        """An even tile count when the pattern is a checker."""
        if values["pattern"] == "checker" and values["tiles"] % 2:
            return values | {"tiles": values["tiles"] + 1}
        return values


def build_square_tiles(p: SquareTileParams, rs: Streams, size: int) -> Surface:
    """A grid of glazed square tiles with rounded, bevelled edges in grout."""
    y, x = grid(size)
    u, v = x * p.tiles + JOINT_SHIFT, y * p.tiles + JOINT_SHIFT
    i, j = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    half = 0.5 - p.grout_width / 2
    inside = rounded_inside(np.abs(u - i - 0.5), np.abs(v - j - 0.5), half, half, 0.02 + 0.08 * p.bevel)
    tile = (j % p.tiles) * p.tiles + i % p.tiles
    ids = np.arange(p.tiles * p.tiles)
    colors = _tile_colors(p, rs, p.tiles * p.tiles, (ids // p.tiles + ids % p.tiles) % 2 == 1)
    return _finish_tiles(p, rs, size, inside, tile, colors, p.tiles / size, p.tiles)


@dataclass(frozen=True)
class HexTileParams(TileLook):
    """Parameters of hexagonal tiles (columns follow from rows so the hexagons stay nearly regular)."""

    rows: int = number(8, 2, 40, sample=(4, 14), step=2, doc="rows of hexagons across the tile")
    pattern: str = choice("plain", ("plain", "mixed", "accent"), doc="accent: a few tiles in a contrasting colour")


def hex_columns(rows: int) -> int:
    """Columns of a hexagon lattice with `rows` rows that keeps cells closest to regular (rows * sqrt(3) / 2)."""
    return max(1, round(rows * math.sqrt(3) / 2))


def build_hex_tiles(p: HexTileParams, rs: Streams, size: int) -> Surface:
    """Hexagonal tiles: the Voronoi diagram of a hexagonal lattice, grout along the cell borders."""
    columns = hex_columns(p.rows)
    cells = voronoi_sites(hex_sites(columns, p.rows), size)
    inside = cells.edge - p.grout_width / 2  # distances in lattice cells, about one tile across
    n = cells.n_cells
    if p.pattern == "accent":
        rng = rs("accent")
        accent = rng.random(n) < 0.15
        colors = _tile_colors(dataclasses.replace(p, pattern="plain"), rs, n, np.zeros(n, bool))
        other = col.srgb(TILE_COLORS["black" if p.color in ("white", "cream", "pink") else "white"])
        colors = np.where(accent[:, None], other, colors).astype(np.float32)
    else:
        colors = _tile_colors(p, rs, n, np.zeros(n, bool))
    aa = math.sqrt(columns * p.rows) / size
    return _finish_tiles(p, rs, size, inside, cells.cell, colors, aa, p.rows)
