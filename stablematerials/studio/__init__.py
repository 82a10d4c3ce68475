"""The engine of the web UI (`app.py`), usable without gradio: requests, generation, pictures and downloads."""

from __future__ import annotations

from .downloads import GLB_SHAPES, glb_for, prune_outputs, save_pictures, zip_material
from .engine import ModelChoice, Studio, folder_native_size, material_name
from .request import BIT_DEPTHS, MODEL_VARIANTS, NORMAL_CONVENTIONS, GenerationRequest, GenerationResult, Limits
from .views import MAP_LABELS, light_direction, map_images, preview_image, thumbnail, tiled_view

__all__ = [
    "BIT_DEPTHS",
    "GLB_SHAPES",
    "GenerationRequest",
    "GenerationResult",
    "Limits",
    "MAP_LABELS",
    "MODEL_VARIANTS",
    "ModelChoice",
    "NORMAL_CONVENTIONS",
    "Studio",
    "folder_native_size",
    "glb_for",
    "light_direction",
    "map_images",
    "material_name",
    "preview_image",
    "prune_outputs",
    "save_pictures",
    "thumbnail",
    "tiled_view",
    "zip_material",
]
