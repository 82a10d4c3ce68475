"""Periodic noise, Voronoi cells and field helpers: everything here wraps around the unit tile exactly.

Coordinates are tile units in [0, 1); a field of `size` pixels samples pixel centres (i + 0.5) / size, so the same
(seed, parameters) gives the same pattern at every resolution. Value noise is a lattice of Gaussian values with
`period` cells per tile, interpolated with a uniform cubic B-spline; because that interpolation is separable, a
whole octave is two small matrix products (weights @ lattice @ weights.T), which is what makes it fast.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Mean over a cell of the sum of squared cubic B-spline weights (the integral of B^2 over the support is 151/315);
# dividing by it gives 1-D B-spline noise of unit variance on average.
_BSPLINE_VAR_1D = 151.0 / 315.0


class Streams:
    """Independent, named random streams for one (family, seed): adding a stream never changes the others."""

    def __init__(self, seed: int, family: str) -> None:
        self.seed = int(seed)
        self.family = family

    def __call__(self, name: str) -> np.random.Generator:
        """A fresh generator for the component `name` (same name, same numbers)."""
        key = [self.seed, zlib.crc32(self.family.encode()), zlib.crc32(name.encode())]
        return np.random.default_rng(key)


# ----------------------------------------------------------------------------------------------
# Coordinates and shaping
# ----------------------------------------------------------------------------------------------


def coords(size: int) -> np.ndarray:
    """Pixel-centre coordinates of one axis in tile units: (size,) float32 in (0, 1)."""
    return ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)


# Lattice layouts (bricks, tiles, planks, panels) add JOINT_SHIFT cells to their lattice coordinate, so joints never
# lie on the tile's edge. A joint on the wrap would still be seamless, but it is the one place where the seam metric
# (the wrap edge against the strongest interior edge) cannot tell the two flanks of a groove from a seam.
JOINT_SHIFT = 0.5


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcastable (y, x) coordinates: shapes (size, 1) and (1, size)."""
    c = coords(size)
    return c[:, None], c[None, :]


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at edge0 to 1 at edge1 (the GLSL smoothstep)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def normalize01(x: np.ndarray) -> np.ndarray:
    """Rescale a field linearly to [0, 1] (a constant field becomes 0.5)."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:
        return np.full_like(x, 0.5, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def wrap_delta(d: np.ndarray) -> np.ndarray:
    """Shortest signed difference on the unit circle: maps any difference to [-0.5, 0.5)."""
    return d - np.floor(d + 0.5)


def rounded_inside(ax: np.ndarray, ay: np.ndarray, hx: np.ndarray | float, hy: float, r: float) -> np.ndarray:
    """Signed distance inside a rounded rectangle (positive inside), from |offsets| (ax, ay) to its centre.

    hx, hy are the half sizes and r the corner radius; the standard rounded-box distance function.
    """
    qx = ax - (hx - r)
    qy = ay - (hy - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2) + np.minimum(np.maximum(qx, qy), 0.0) - r
    return (-outside).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Value noise and fBm
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def _bspline_taps(size: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic B-spline taps sampling a periodic lattice of `period` nodes at `size` pixel centres.

    Returns (index, weight), each (4, size): pixel p is sum_k weight[k, p] * lattice[index[k, p]].
    """
    t = (np.arange(size, dtype=np.float64) + 0.5) * period / size
    i = np.floor(t).astype(np.int64)
    f = t - i
    f2, f3 = f * f, f * f * f
    weights = np.stack([(1 - f) ** 3 / 6, (3 * f3 - 6 * f2 + 4) / 6, (-3 * f3 + 3 * f2 + 3 * f + 1) / 6, f3 / 6])
    index = np.stack([(i + k - 1) % period for k in range(4)])
    weights = weights.astype(np.float32)
    index.flags.writeable = False
    weights.flags.writeable = False
    return index, weights


def lattice_field(lattice: np.ndarray, size: int) -> np.ndarray:
    """Interpolate a periodic (py, px) lattice of values to a (size, size) field with a cubic B-spline.

    Separable: first along y (4 row gathers), then along x (4 column gathers); no BLAS, so no thread contention.
    """
    py, px = lattice.shape
    lattice = lattice.astype(np.float32, copy=False)
    iy, wy = _bspline_taps(size, py)
    ix, wx = _bspline_taps(size, px)
    rows = wy[0][:, None] * lattice[iy[0]]
    for k in range(1, 4):
        rows += wy[k][:, None] * lattice[iy[k]]
    out = rows[:, ix[0]] * wx[0]
    for k in range(1, 4):
        out += rows[:, ix[k]] * wx[k]
    return out


def value_noise(rng: np.random.Generator, size: int, period: int, period_y: int | None = None) -> np.ndarray:
    """One octave of periodic value noise, about zero mean and unit variance: (size, size) float32.

    `period` lattice cells across the tile horizontally, `period_y` (default: the same) vertically; unequal
    periods give streaks (brushed metal, wood grain).
    """
    py = period if period_y is None else period_y
    if period < 1 or py < 1:
        raise ValueError(f"noise periods must be >= 1, got {period} x {py}")
    lattice = rng.standard_normal((py, period)).astype(np.float32)
    return lattice_field(lattice, size) / np.float32(_BSPLINE_VAR_1D)


def fbm(
    rng: np.random.Generator,
    size: int,
    period: int,
    octaves: int = 5,
    gain: float = 0.5,
    period_y: int | None = None,
) -> np.ndarray:
    """Fractal sum of value-noise octaves (periods doubling), about zero mean and unit variance.

    Octaves finer than the pixel grid are skipped, so a field at a low resolution is the coarse part of the same
    field at a high resolution.
    """
    py = period if period_y is None else period_y
    total = np.zeros((size, size), dtype=np.float32)
    norm = 0.0
    amp = 1.0
    for o in range(octaves):
        fx, fy = period << o, py << o
        if o > 0 and max(fx, fy) > size:
            break
        total += np.float32(amp) * value_noise(rng, size, fx, fy)
        norm += amp * amp
        amp *= gain
    return total / np.float32(np.sqrt(norm))


def ridged(rng: np.random.Generator, size: int, period: int, octaves: int = 5, period_y: int | None = None) -> np.ndarray:
    """Ridged noise in [0, 1]: 1 on the zero crossings of fBm (thin connected ridges), falling off around them."""
    n = fbm(rng, size, period, octaves, period_y=period_y)
    return np.clip(1.0 - np.abs(n) * 1.2, 0.0, 1.0)


def turbulence(rng: np.random.Generator, size: int, period: int, octaves: int = 5) -> np.ndarray:
    """Perlin's turbulence: a fractal sum of |noise| octaves, normalised to about unit scale (>= 0)."""
    total = np.zeros((size, size), dtype=np.float32)
    norm = 0.0
    amp = 1.0
    for o in range(octaves):
        p = period << o
        if o > 0 and p > size:
            break
        total += np.float32(amp) * np.abs(value_noise(rng, size, p))
        norm += amp
        amp *= 0.5
    return total / np.float32(norm)


# ----------------------------------------------------------------------------------------------
# Voronoi cells
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cells:
    """A periodic Voronoi diagram sampled on the pixel grid; distances are in lattice cells.

    f1: distance to the nearest site; edge: distance to the nearest cell border;
    cell: index of the nearest site (0 .. n_cells-1); dx, dy: vector from the pixel to its site.
    """

    f1: np.ndarray
    edge: np.ndarray
    cell: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    n_cells: int


def voronoi(
    rng: np.random.Generator, size: int, cells_x: int, cells_y: int | None = None, jitter: float = 0.9
) -> Cells:
    """Periodic Voronoi diagram of one jittered site per lattice cell (Worley 1996), with wrapped distances."""
    cy = cells_x if cells_y is None else cells_y
    if cells_x < 1 or cy < 1:
        raise ValueError(f"Voronoi needs at least one cell per axis, got {cells_x} x {cy}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"Voronoi jitter must be in [0, 1], got {jitter}")
    sites = (0.5 + (rng.random((cy, cells_x, 2)) - 0.5) * jitter).astype(np.float32)
    return voronoi_sites(sites, size)


def hex_sites(columns: int, rows: int) -> np.ndarray:
    """Sites of a hexagonal lattice on a (rows, columns) grid: odd rows shifted by half a cell (rows even)."""
    sites = np.full((rows, columns, 2), 0.5, np.float32)
    sites[:, :, 0] = 0.25 + 0.5 * (np.arange(rows) % 2)[:, None]
    return sites


_VORONOI_BLOCK = 1 << 18  # pixels per block of rows (bounds memory to ~10 MB per candidate array)


def voronoi_sites(sites: np.ndarray, size: int) -> Cells:
    """Periodic Voronoi diagram of given sites, one per lattice cell: `sites` (cells_y, cells_x, 2) in cell units.

    Distances are measured in lattice cells, so with unequal cell counts the cells are stretched (elongated bark
    plates) and the nearest site is always among the 3x3 neighbouring cells. The border distance is the exact
    distance to the bisector between the nearest site and each neighbour (the two-pass method popularised by
    Inigo Quilez), searched over the 3x3 neighbouring cells.
    """
    cy, cells_x = sites.shape[:2]
    # Candidate sites of every lattice cell (its 3x3 neighbourhood), relative to the cell's corner: (9, cy, cx).
    oy, ox = np.divmod(np.arange(9), 3)
    oy, ox = oy - 1, ox - 1
    rows = (np.arange(cy)[None, :] + oy[:, None]) % cy  # (9, cy)
    cols = (np.arange(cells_x)[None, :] + ox[:, None]) % cells_x  # (9, cx)
    cand_x = (sites[rows[:, :, None], cols[:, None, :], 0] + ox[:, None, None]).astype(np.float32)
    cand_y = (sites[rows[:, :, None], cols[:, None, :], 1] + oy[:, None, None]).astype(np.float32)
    u = coords(size) * cells_x
    iu = np.floor(u).astype(np.int64)
    fu = (u - iu).astype(np.float32)
    rows_per_block = max(1, _VORONOI_BLOCK // size)
    blocks = [
        _voronoi_block(cand_x, cand_y, iu, fu, coords(size)[r0 : r0 + rows_per_block] * cy, oy, ox)
        for r0 in range(0, size, rows_per_block)
    ]
    f1, edge, cell, ndx, ndy = (np.concatenate(parts) for parts in zip(*blocks))
    return Cells(f1=f1, edge=edge, cell=cell, dx=ndx, dy=ndy, n_cells=cells_x * cy)


def _voronoi_block(
    cand_x: np.ndarray, cand_y: np.ndarray, iu: np.ndarray, fu: np.ndarray, v: np.ndarray, oy: np.ndarray, ox: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Voronoi quantities for a block of pixel rows at lattice heights `v`: (f1, edge, cell, dx, dy)."""
    cy, cells_x = cand_x.shape[1:]
    iv = np.floor(v).astype(np.int64)
    fv = (v - iv).astype(np.float32)
    # Offsets from each pixel to the 9 candidate sites of its cell: (9, rows, size).
    dx = np.take(np.take(cand_x, iv, axis=1), iu, axis=2) - fu[None, None, :]
    dy = np.take(np.take(cand_y, iv, axis=1), iu, axis=2) - fv[None, :, None]
    d2 = dx * dx + dy * dy
    nearest = np.argmin(d2, axis=0)
    f1 = d2.min(axis=0)
    ndx = np.take_along_axis(dx, nearest[None], 0)
    ndy = np.take_along_axis(dy, nearest[None], 0)
    cell = ((iv[:, None] + oy[nearest]) % cy) * cells_x + (iu[None, :] + ox[nearest]) % cells_x
    # Border distance: min over the other candidates k of the distance to the bisector of (site_1, site_k),
    # dot(midpoint, unit(site_k - site_1)) = (|d_k|^2 - |d_1|^2) / (2 |d_k - d_1|).
    ex, ey = dx - ndx, dy - ndy
    elen2 = ex * ex + ey * ey
    dist = (d2 - f1) / (2.0 * np.sqrt(np.maximum(elen2, 1e-12)))
    dist[elen2 < 1e-12] = np.inf
    return np.sqrt(f1), np.maximum(dist.min(axis=0), 0.0), cell, ndx[0], ndy[0]


def domes(cells: Cells, radius: np.ndarray) -> np.ndarray:
    """Hemispherical bumps in [0, 1] centred on each Voronoi site, of per-site `radius` (lattice cells; 0: none)."""
    r = np.asarray(radius, np.float32)[cells.cell]
    safe = np.maximum(r, 1e-6)
    return np.where(r > 0, np.sqrt(np.clip(1.0 - (cells.f1 / safe) ** 2, 0.0, 1.0)), 0.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Filtering and splatting
# ----------------------------------------------------------------------------------------------


def blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with wrap-around; `sigma` in tile units (so the same at every resolution). Via the FFT."""
    size_y, size_x = field.shape
    s = sigma * size_x
    if s < 0.05:
        return field.astype(np.float32)
    fy = np.fft.fftfreq(size_y).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(size_x).astype(np.float32)[None, :]
    transfer = np.exp(-2.0 * np.pi**2 * s * s * (fx * fx + fy * fy))
    return np.fft.irfft2(np.fft.rfft2(field) * transfer, s=field.shape).astype(np.float32)


def splat_segments(size: int, starts: np.ndarray, ends: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rasterise line segments (tile units, (n, 2) as (x, y)) onto a wrapped grid: about 1 per covered pixel.

    Each segment is sampled twice per pixel of its length and accumulated with wrap-around; blur the result for
    width. Used for scratches and lenticels.
    """
    out = np.zeros((size, size), dtype=np.float32)
    if len(starts) == 0:
        return out
    starts = np.asarray(starts, dtype=np.float32)
    ends = np.asarray(ends, dtype=np.float32)
    w = np.ones(len(starts), np.float32) if weights is None else np.asarray(weights, np.float32)
    lengths = np.linalg.norm(ends - starts, axis=1) * size
    steps = np.maximum(2, np.ceil(lengths * 2).astype(np.int64))
    seg = np.repeat(np.arange(len(starts)), steps)
    t = np.concatenate([np.linspace(0.0, 1.0, n, dtype=np.float32) for n in steps])
    pts = starts[seg] + (ends[seg] - starts[seg]) * t[:, None]
    ix = np.floor(pts[:, 0] * size).astype(np.int64) % size
    iy = np.floor(pts[:, 1] * size).astype(np.int64) % size
    np.add.at(out, (iy, ix), w[seg] * 0.5)
    return np.minimum(out, 1.0)
