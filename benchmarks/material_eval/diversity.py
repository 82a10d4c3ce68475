"""How different the materials of one prompt's seeds are (pairwise, on the classifier's 256 px sources).

Distances per pair:
* colour: the largest per-channel difference of the two mean basecolors (sRGB, [0, 1]);
* structure: 1 - the largest normalised circular cross-correlation of the two luma images over all shifts
  (via the FFT, at 128 px); zero when one material is the other shifted (a tileable material has no fixed origin,
  so a shifted copy is not a new material), near one for unrelated layouts;
* pixel: mean absolute basecolor difference (reported, not judged: a shifted copy scores high).

A pair is clearly different when its colour or its structure distance clears the threshold (CLEAR_COLOUR,
CLEAR_STRUCTURE, argued below): four layouts in one colour count, one layout in four colours counts, one layout in
one colour shifted around does not.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import LUMA

# Thresholds, from test-split procedural materials at 256 px (4 seeds per family, all 114 pairs): structure
# distances of two seeds of one family range from 0.55 (two brushed plates, two plain weaves) to 0.98, median 0.84;
# a material against a copy of itself shifted and re-noised (uniform +-5 levels) scores 0.015-0.27, and 0.49 for a
# near-uniform polished plate, whose luma is mostly that noise. 0.5 sits between. A mean colour change of 0.05 in one
# channel (13 levels of 255) is plainly visible side by side.
CLEAR_COLOUR = 0.05
CLEAR_STRUCTURE = 0.5


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-channel difference of the mean basecolors of two sources (8, h, w) uint8."""
    ma = a[:3].reshape(3, -1).astype(np.float64).mean(axis=1)
    mb = b[:3].reshape(3, -1).astype(np.float64).mean(axis=1)
    return float(np.abs(ma - mb).max() / 255.0)


def pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute basecolor difference of two sources (8, h, w) uint8."""
    return float(np.abs(a[:3].astype(np.float32) - b[:3].astype(np.float32)).mean() / 255.0)


def _luma(source: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(source[:3]).float()[None] / 255.0
    x = F.avg_pool2d(x, 2)  # (1, 3, 128, 128)
    y = (x[0] * torch.tensor(LUMA).view(3, 1, 1)).sum(0)
    y = y - y.mean()
    return y / y.norm().clamp_min(1e-8)


def structure_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - max over circular shifts of the normalised cross-correlation of the two sources' luma (at 128 px).

    A flat image (no luma variation) has no structure to compare: two flat images are 0 apart, a flat and a
    structured one 1.
    """
    la, lb = _luma(a), _luma(b)
    flat_a, flat_b = float(la.abs().sum()) == 0.0, float(lb.abs().sum()) == 0.0
    if flat_a or flat_b:
        return 0.0 if flat_a and flat_b else 1.0
    corr = torch.fft.irfft2(torch.fft.rfft2(la) * torch.conj(torch.fft.rfft2(lb)), s=la.shape)
    return float(1.0 - corr.max())


def clearly_different(a: np.ndarray, b: np.ndarray) -> bool:
    return colour_distance(a, b) >= CLEAR_COLOUR or structure_distance(a, b) >= CLEAR_STRUCTURE


def seed_diversity(sources: list[np.ndarray]) -> dict[str, float]:
    """Mean colour, structure and pixel distance over all pairs of a prompt's seeds, the share of clearly
    different pairs, and 'all_different' (1.0 when every pair is)."""
    pairs = list(combinations(range(len(sources)), 2))
    if not pairs:
        raise ValueError("diversity needs at least two materials")
    col = [colour_distance(sources[i], sources[j]) for i, j in pairs]
    struct = [structure_distance(sources[i], sources[j]) for i, j in pairs]
    pix = [pixel_distance(sources[i], sources[j]) for i, j in pairs]
    clear = [c >= CLEAR_COLOUR or s >= CLEAR_STRUCTURE for c, s in zip(col, struct)]
    return {"colour": float(np.mean(col)), "structure": float(np.mean(struct)), "pixel": float(np.mean(pix)),
            "clear_pairs": float(np.mean(clear)), "all_different": float(all(clear))}  # fmt: skip
