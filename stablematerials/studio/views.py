"""Pictures of a material for a front end: the five maps, a tiled view to judge seams, and the lit preview."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..maps import MAP_NAMES, MAPS
from ..material import Material

if TYPE_CHECKING:
    from PIL import Image

MAP_LABELS = {name: spec.label for name, spec in MAPS.items()}  # names for people, from the map table


def map_images(material: Material, normal_convention: str = "opengl") -> list[tuple["Image.Image", str]]:
    """The maps as 8-bit PIL images with their display names, in `MAP_NAMES` order."""
    images = material.to_pil("directx" if normal_convention == "directx" else "opengl")
    return [(images[name], MAP_LABELS[name]) for name in MAP_NAMES]


def tiled_view(
    material: Material, map_name: str = "basecolor", n: int = 2, max_side: int = 1024, min_side: int = 0
) -> "Image.Image":
    """One map repeated n x n times (seams show where the copies meet), scaled down to at most `max_side` pixels,
    or enlarged by whole pixels (nearest, so no filtering hides a seam) to at least `min_side`."""
    from PIL import Image

    if map_name not in MAP_NAMES:
        raise ValueError(f"unknown map {map_name!r}; expected one of {', '.join(MAP_NAMES)}")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 8:
        raise ValueError(f"n must be a whole number from 1 to 8, got {n!r}")
    if not isinstance(max_side, int) or max_side < 8:
        raise ValueError(f"max_side must be an integer >= 8, got {max_side!r}")
    if not isinstance(min_side, int) or not 0 <= min_side <= max_side:
        raise ValueError(f"min_side must be an integer from 0 to max_side ({max_side}), got {min_side!r}")
    data = material.encoded(map_name)
    tiled = np.tile(data, (n, n, 1) if data.ndim == 3 else (n, n))
    image = Image.fromarray(np.round(tiled * 255).astype(np.uint8))
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    elif max(image.size) < min_side:
        factor = -(-min_side // max(image.size))  # whole pixels: ceil(min_side / side)
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    return image


def light_direction(azimuth_degrees: float, elevation_degrees: float) -> tuple[float, float, float]:
    """A unit light direction from its compass angle around the view axis (0 = from the right, 90 = from the top)
    and its elevation above the surface (90 = straight from the camera)."""
    for label, value in (("azimuth", azimuth_degrees), ("elevation", elevation_degrees)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"light {label} must be a finite number of degrees, got {value!r}")
    if not 0 < elevation_degrees <= 90:
        raise ValueError(f"light elevation must be above the surface (0 < degrees <= 90), got {elevation_degrees!r}")
    az, el = math.radians(azimuth_degrees), math.radians(elevation_degrees)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


def preview_image(
    material: Material, light: Sequence[float] | None = None, size: int = 256
) -> "Image.Image":
    """The material rendered by the project's renderer: on a sphere (left) and a plane (right), lit from `light`."""
    from ..render import DEFAULT_LIGHT_DIRECTION, render_preview

    return render_preview(material, size=size, light_direction=tuple(light) if light is not None else DEFAULT_LIGHT_DIRECTION)


def thumbnail(material: Material, size: int = 128) -> "Image.Image":
    """A small base-color image for a history list."""
    from PIL import Image

    image = material.to_pil()["basecolor"]
    return image.resize((size, size), Image.LANCZOS) if image.size != (size, size) else image
