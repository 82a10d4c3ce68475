"""Pastel speckle: colour noise at the scale of one latent cell in a basecolor.

Default model v3's basecolors carried independent red/green/blue noise per 8 x 8 px cell (at 512 px): concrete,
plaster, white tiles and metals looked sprinkled with pastel confetti while their mean colour was right, so neither
the colour words nor the classifier saw it. The measure: the basecolor's cell means (4 px cells of the 256 px
source, the model's 8 px latent cells at 512 px), minus their Gaussian blur (sigma one cell, wrapping around:
materials tile), minus the grey part of that difference; the standard deviation of what is left, in sRGB [0, 1].
A luminance change between cells (mortar, grout, pores) does not count; a hue change does. Procedural materials
have little of it except where their cells really differ in hue (bricks of several colours; see the reference
line the evaluation prints).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stablematerials.filters import gaussian_blur

CELL = 4  # px of the 256 px source: one 8 px latent cell of a 512 px material
SIGMA = 1.0  # cells


def chroma_speckle(source: np.ndarray) -> float:
    """A classifier source (8, 256, 256) uint8 whose first three channels are the basecolor -> its speckle."""
    base = torch.from_numpy(np.ascontiguousarray(source[:3])).float()[None] / 255.0  # (1, 3, H, W)
    cells = F.avg_pool2d(base, CELL)  # (1, 3, H/4, W/4)
    detail = cells - gaussian_blur(cells, SIGMA, (-2, -1))
    return float((detail - detail.mean(dim=1, keepdim=True)).std())
