"""The engine of the web UI (`stablematerials.webui`), usable without gradio: cached models, generation through the
one typed request (`stablematerials.generation`), pictures and downloads."""

from __future__ import annotations

from ..defaults import BIT_DEPTHS, MODEL_VARIANTS, NORMAL_CONVENTIONS, folder_native_size
from ..generation import GenerationRequest, GenerationResult, Limits, material_name
from .downloads import GLB_SHAPES, glb_for, prune_outputs, save_pictures, zip_material
from .engine import ModelChoice, Studio
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
