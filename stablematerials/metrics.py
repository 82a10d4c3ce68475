"""Measures used by tests, benchmarks and the app: seam visibility, map consistency, distribution distances."""

from __future__ import annotations

import numpy as np
import torch

from .maps import MAPS
from .material import Material, normal_from_height


def _as_hwc(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[..., None] if x.ndim == 2 else x


def seam_score(image: np.ndarray, axis: int) -> float:
    """How visible the wrap-around seam of one map is along `axis` (0: top/bottom edge, 1: left/right edge).

    The mean absolute difference across the wrapped edge divided by the *largest* mean absolute difference
    between adjacent interior rows (columns). Comparing with the largest interior edge, not the average one,
    keeps structure aligned with the border from counting as a seam: a periodic brick grid whose mortar line
    sits on row 0 scores 1.0, a seamless sinusoid 1.0, smooth non-periodic noise about 3.5, a ramp its height.
    About 1 or below: the seam is no more visible than the texture's own strongest edge.
    """
    x = _as_hwc(image)
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 or 1, got {axis!r}")
    if x.shape[axis] < 3:
        raise ValueError(f"map is too small along axis {axis}: {x.shape[:2]}")
    x = np.moveaxis(x, axis, 0)  # (N, M, C): rows along the chosen axis
    interior = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2))  # (N-1,)
    wrap = float(np.abs(x[0] - x[-1]).mean())
    largest = float(interior.max())
    if largest < 1e-12:
        return 0.0 if wrap < 1e-12 else float("inf")
    return wrap / largest


def seam_scores(material: Material) -> dict[str, tuple[float, float]]:
    """Seam score of every map: {map name: (vertical seam, horizontal seam)}."""
    return {name: (seam_score(arr, 0), seam_score(arr, 1)) for name, arr in material.maps().items()}


def max_seam_score(material: Material) -> float:
    """The worst seam over all maps and both axes."""
    return max(max(pair) for pair in seam_scores(material).values())


def normal_height_agreement(material: Material, strength: float | None = None) -> float:
    """Cosine similarity between the normal map and the normal derived from the height map, averaged.

    With `strength=None` the height scale that fits best (among a coarse sweep) is used, since materials
    differ in how deep their relief is. 1.0 means the two agree everywhere.
    """
    height = torch.from_numpy(material.height)[None, None]
    normal = torch.from_numpy(material.normal).permute(2, 0, 1)[None]
    strengths = [strength] if strength is not None else [0.25, 0.5, 1, 2, 4, 8, 16, 32]
    best = -1.0
    for s in strengths:
        derived = normal_from_height(height, s)
        best = max(best, float((derived * normal).sum(dim=1).mean()))
    return best


def wasserstein_1d(a: np.ndarray, b: np.ndarray, n_quantiles: int = 256) -> float:
    """Earth mover's distance between two 1-D value distributions, via their quantile functions."""
    q = np.linspace(0.0, 1.0, n_quantiles)
    return float(np.abs(np.quantile(np.ravel(a), q) - np.quantile(np.ravel(b), q)).mean())


def map_distribution_distance(generated: list[Material], reference: list[Material]) -> dict[str, float]:
    """Per-map distance between two sets of materials: 1-D Wasserstein distance of pixel values, per channel.

    Basecolor is compared per RGB channel, the normal by its X and Y components, the others directly; each map's
    number is the mean over its channels. Used by the semi-supervised and student benchmarks.
    """
    if not generated or not reference:
        raise ValueError("both material lists must be non-empty")
    out: dict[str, float] = {}
    for name, spec in MAPS.items():
        gen = np.concatenate([_as_hwc(getattr(m, name)).reshape(-1, spec.channels) for m in generated])
        ref = np.concatenate([_as_hwc(getattr(m, name)).reshape(-1, spec.channels) for m in reference])
        channels = range(spec.model_channels) if spec.encoding == "normal" else range(spec.channels)  # normal: X, Y
        out[name] = float(np.mean([wasserstein_1d(gen[..., c], ref[..., c]) for c in channels]))
    return out


# ----------------------------------------------------------------------------------------------
# Maps read from a photo against the true maps (capture benchmark and training evaluation)
# ----------------------------------------------------------------------------------------------


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def exposure_normalized_basecolor_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute sRGB error of a basecolor after the exposure that fits best: one gain on the predicted linear
    values (least squares against the true linear values), since a photo cannot tell a dark surface under a bright
    light from a bright surface under a dim one."""
    p, t = _srgb_to_linear(np.asarray(predicted, np.float64)), _srgb_to_linear(np.asarray(true, np.float64))
    gain = float((p * t).sum() / max((p * p).sum(), 1e-12))
    return float(np.abs(_linear_to_srgb(p * gain) - _linear_to_srgb(t)).mean())


def normal_angle_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean angle in degrees between two (H, W, 3) normal maps (unit vectors)."""
    p = np.asarray(predicted, np.float64)
    t = np.asarray(true, np.float64)
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
    return float(np.degrees(np.arccos(np.clip((p * t).sum(-1), -1.0, 1.0))).mean())


def capture_errors(predicted: Material, true: Material) -> dict[str, float]:
    """Per-map errors of maps read from a photo: basecolor after exposure normalisation, normal mean angle (degrees),
    height after removing each map's mean level (a photo shows relief, not its absolute level), roughness and
    metallic mean absolute error, and the share of pixels whose metallic is on the right side of 0.5."""
    if predicted.size != true.size:
        raise ValueError(f"maps differ in size: {predicted.size} vs {true.size}")
    return {
        "basecolor": exposure_normalized_basecolor_error(predicted.basecolor, true.basecolor),
        "normal_deg": normal_angle_error(predicted.normal, true.normal),
        "height": float(np.abs((predicted.height - predicted.height.mean()) - (true.height - true.height.mean())).mean()),
        "roughness": float(np.abs(predicted.roughness - true.roughness).mean()),
        "metallic": float(np.abs(predicted.metallic - true.metallic).mean()),
        "metallic_accuracy": float(((predicted.metallic >= 0.5) == (true.metallic >= 0.5)).mean()),
    }
