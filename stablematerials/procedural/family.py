"""What a procedural family is (parameters, a builder, a caption writer) and how it becomes a `Material`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from ..material import Material, normal_from_height
from .noise import Streams
from .params import Params


class Surface(NamedTuple):
    """A builder's output: maps without the normal, plus the relief depth used to derive it.

    basecolor (N, N, 3) sRGB; height, roughness, metallic (N, N); all in [0, 1]. `normal_strength` is passed to
    `stablematerials.material.normal_from_height` (height range in texels at 256 px).
    """

    basecolor: np.ndarray
    height: np.ndarray
    roughness: np.ndarray
    metallic: np.ndarray
    normal_strength: float


@dataclass(frozen=True)
class Family:
    """One material family: its parameter type, builder and caption writer.

    `noun` is the word every caption contains; `metal` says which part is metallic: "none", "all" or "partial".
    """

    name: str
    noun: str
    params: type[Params]
    build: Callable[[Any, Streams, int], Surface]
    caption: Callable[[Any, np.random.Generator], str]
    metal: str
    summary: str


def check_size(size: Any) -> int:
    """A positive multiple of 8, else ValueError naming it."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0 or size % 8:
        raise ValueError(f"size must be a positive multiple of 8, got {size!r}")
    return int(size)


def check_seed(seed: Any) -> int:
    """A non-negative integer below 2**63, else ValueError naming it."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def render(family: Family, params: Params, seed: int, size: int) -> Material:
    """Build the family's surface and assemble the Material: normal from height, caption and metadata."""
    if not isinstance(params, family.params):
        raise ValueError(f"{family.name} takes {family.params.__name__}, got {type(params).__name__}")
    streams = Streams(seed, family.name)
    surface = family.build(params, streams, size)
    height = np.clip(surface.height, 0.0, 1.0).astype(np.float32)
    normal = normal_from_height(torch.from_numpy(height)[None, None], surface.normal_strength)
    caption = family.caption(params, streams("caption"))
    metadata = {
        "family": family.name,
        "caption": caption,
        "params": params.as_dict(),
        "seed": seed,
        "source": "procedural",
        "normal_strength": float(surface.normal_strength),
    }
    return Material(
        basecolor=surface.basecolor,
        normal=normal[0].permute(1, 2, 0).numpy(),
        height=height,
        roughness=surface.roughness,
        metallic=surface.metallic,
        metadata=metadata,
    )
