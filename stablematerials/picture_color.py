"""A pictured material's mean basecolor, estimated from the picture's own colours (image prompts, issue 14).

An image prompt's embedding lands near the captions of what the picture shows, and a model that takes attributes
(`stablematerials.attributes`) would give it the colour of those captions' materials: often not the picture's (a
blue-grey slate ranked beside grey concrete gets grey). The picture itself says more. A photograph's colours are
the basecolor times its lighting, so its mean is darker and tinted; a linear map of a few robust statistics

    features = [mean RGB, 90th-percentile RGB, median RGB, 1]          (10,)  sRGB in [0, 1]
    basecolor ~ features @ fit                                          fit: (10, 3)

fitted by least squares on rendered pictures of procedural materials under the image encoder's random lights
(`training/add_image_encoder.py`), undoes most of that. Measured on held-out materials (scratch probe, session 17:
342 train pictures, 114 held-out per view kind): the mean colour within 0.1 (largest channel) of the material's for
39 % of "unlike" pictures raw, 62 % with the fit; "like" pictures 49 % -> 54 %.

The fit is stored in model_index.json (`image_color_fit`); the pipeline gives an image prompt (not a text and image
mix, whose words may name another colour) this colour as its colour attribute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

COLOR_FEATURES = 10
FEATURE_SIZE = 128  # pictures are reduced to this longer side first: the statistics do not need more pixels


def picture_color_features(image: Image.Image) -> np.ndarray:
    """(10,) the picture's mean, 90th-percentile and median RGB (sRGB in [0, 1]) and a constant 1."""
    picture = image.convert("RGB")
    if max(picture.size) > FEATURE_SIZE:
        scale = FEATURE_SIZE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.BOX)
    x = np.asarray(picture, dtype=np.float64).reshape(-1, 3) / 255.0  # (P, 3)
    return np.concatenate([x.mean(0), np.percentile(x, 90, axis=0), np.median(x, axis=0), [1.0]])


def fit_picture_colors(features: np.ndarray, basecolors: np.ndarray) -> np.ndarray:
    """(N, 10) picture features and (N, 3) their materials' mean basecolors -> the (10, 3) least-squares map."""
    if features.ndim != 2 or features.shape[1] != COLOR_FEATURES or basecolors.shape != (features.shape[0], 3):
        got = f"{features.shape} and {basecolors.shape}"
        raise ValueError(f"need (N, {COLOR_FEATURES}) picture features and (N, 3) colours, got {got}")
    fit, *_ = np.linalg.lstsq(features, basecolors, rcond=None)
    return fit


def picture_basecolors(images: Sequence[Image.Image], fit: Sequence[Sequence[float]]) -> torch.Tensor:
    """(B, 3) each pictured material's estimated mean basecolor, sRGB clipped to [0, 1]."""
    features = np.stack([picture_color_features(im) for im in images])  # (B, 10)
    return torch.from_numpy(np.clip(features @ np.asarray(fit, dtype=np.float64), 0.0, 1.0)).float()


def check_image_color_fit(fit: object) -> None:
    """A ValueError naming the problem unless `fit` is None or a (10, 3) nested list of finite numbers."""
    if fit is None:
        return
    if not (isinstance(fit, (list, tuple)) and len(fit) == COLOR_FEATURES and all(map(_finite_triple, fit))):
        raise ValueError(f"image_color_fit must be {COLOR_FEATURES} rows of 3 finite numbers, got {fit!r}"[:200])


def _finite_triple(row: object) -> bool:
    return isinstance(row, (list, tuple)) and len(row) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row
    )
