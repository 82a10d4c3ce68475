"""Concepts only images describe: real textures no procedural family covers, grouped by what they are, and how
close a model's materials for their captions come to them in colour.

A concept is a material noun of the texture captions ('grass', 'lava', 'ice', 'rock' with its synonym 'stone')
whose textures name no procedural family (`family_of_caption` is None). Captions naming two concepts ('grass
rock', 'snow rock') belong to none: their pictures mix both.

Colour statistic of a picture (a generated basecolor or a texture image, resized to STAT_SIZE so that fine grain
counts alike): its mean sRGB colour (3) and its per-channel standard deviation over pixels (3, the colour spread:
flat ice against mottled rock). Against a concept's held-out images, a model's materials for that concept's
captions are scored by:
* colour distance: the Euclidean distance between the mean colour of the materials and of the images (sRGB, 0-1);
* spread difference: the materials' mean spread minus the images' (negative: flatter than the images);
* nearest-concept accuracy: the share of materials whose statistic (6 numbers) is nearest to their own concept's
  centroid (the mean statistic of its images) among all concepts' centroids.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image

from training.image_encoder_data import caption_nouns

STAT_SIZE = 128  # pixels: pictures of any size are compared at one scale (generated sources are 256 px)
SYNONYMS = {"stone": "rock"}  # game texture names use both for the same thing


# ----------------------------------------------------------------------------------------------
# Grouping
# ----------------------------------------------------------------------------------------------


def concept_of(item: dict) -> str | None:
    """The concept of a `real_textures` item: its one material noun (synonyms merged) when it names no procedural
    family, else None."""
    if item["family"] is not None:
        return None
    concepts = {SYNONYMS.get(n, n) for n in caption_nouns(item["caption"])}
    return concepts.pop() if len(concepts) == 1 else None


def group_concepts(items: list[dict], min_held_out: int = 3) -> dict[str, dict[str, list[dict]]]:
    """{concept: {"held_out": items, "train": items}} for the concepts with at least `min_held_out` held-out
    images (fewer cannot say what the concept looks like), most held-out images first."""
    groups: dict[str, dict[str, list[dict]]] = {}
    for item in items:
        concept = concept_of(item)
        if concept is not None:
            groups.setdefault(concept, {"held_out": [], "train": []})["held_out" if item["held_out"] else "train"].append(item)
    kept = {c: g for c, g in groups.items() if len(g["held_out"]) >= min_held_out}
    return dict(sorted(kept.items(), key=lambda kv: (-len(kv[1]["held_out"]), kv[0])))


def concept_prompts(items: list[dict], count: int = 4) -> list[str]:
    """Up to `count` distinct captions of a concept's items, the most frequent first (ties alphabetical)."""
    ranked = sorted(Counter(it["caption"] for it in items).items(), key=lambda kv: (-kv[1], kv[0]))
    return [caption for caption, _ in ranked[:count]]


# ----------------------------------------------------------------------------------------------
# Colour statistics and scores
# ----------------------------------------------------------------------------------------------


def colour_stats(rgb: np.ndarray) -> np.ndarray:
    """(6,) mean and standard deviation per sRGB channel of an (H, W, 3) uint8 picture, at STAT_SIZE px."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"colour_stats expects an (H, W, 3) uint8 picture, got {rgb.shape} {rgb.dtype}")
    small = np.asarray(Image.fromarray(rgb).resize((STAT_SIZE, STAT_SIZE), Image.Resampling.BOX), dtype=np.float64) / 255.0
    flat = small.reshape(-1, 3)
    return np.concatenate([flat.mean(0), flat.std(0)])


def set_scores(generated: np.ndarray, images: np.ndarray) -> dict[str, float]:
    """Colour distance and spread difference of generated statistics (N, 6) against images' (M, 6)."""
    return {
        "colour_distance": float(np.linalg.norm(generated[:, :3].mean(0) - images[:, :3].mean(0))),
        "spread_difference": float(generated[:, 3:].mean() - images[:, 3:].mean()),
    }


def nearest_concepts(stats: np.ndarray, centroids: dict[str, np.ndarray]) -> list[str]:
    """For each statistic (N, 6) the concept whose centroid (6,) is nearest (Euclidean)."""
    names = list(centroids)
    table = np.stack([centroids[c] for c in names])  # (K, 6)
    distances = np.linalg.norm(stats[:, None, :] - table[None], axis=-1)  # (N, K)
    return [names[k] for k in distances.argmin(1)]


def concept_scores(generated: dict[str, np.ndarray], images: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per concept: `set_scores` and the nearest-concept accuracy of one model's materials. `generated` and `images`
    map each concept to statistics (N, 6) / (M, 6); every concept of `generated` must have images."""
    centroids = {c: s.mean(0) for c, s in images.items()}
    out = {}
    for concept, stats in generated.items():
        nearest = nearest_concepts(stats, centroids)
        out[concept] = set_scores(stats, images[concept]) | {"nearest_accuracy": float(np.mean([n == concept for n in nearest]))}
    return out


def mean_scores(per_concept: dict[str, dict[str, float]]) -> dict[str, float]:
    """Means over concepts (each concept counts once): colour distance, |spread difference|, nearest accuracy."""
    rows = list(per_concept.values())
    return {
        "colour_distance": float(np.mean([r["colour_distance"] for r in rows])),
        "abs_spread_difference": float(np.mean([abs(r["spread_difference"]) for r in rows])),
        "nearest_accuracy": float(np.mean([r["nearest_accuracy"] for r in rows])),
    }
