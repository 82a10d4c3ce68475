"""StableMaterials: tileable PBR materials from text or image prompts.

Importing the package is cheap: the diffusion pipeline (and with it diffusers) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .io import load_material, save_material
from .maps import MAP_NAMES, MAPS
from .material import Material

__version__ = "0.1.0"

__all__ = [
    "MAP_NAMES",
    "MAPS",
    "Material",
    "StableMaterialsCapturePipeline",
    "StableMaterialsPipeline",
    "StableMaterialsPipelineOutput",
    "load_material",
    "render_preview",
    "save_material",
    "__version__",
]

if TYPE_CHECKING:
    from .capture import StableMaterialsCapturePipeline
    from .pipeline import StableMaterialsPipeline, StableMaterialsPipelineOutput
    from .render import render_preview

_LAZY = {
    "StableMaterialsCapturePipeline": "capture",
    "StableMaterialsPipeline": "pipeline",
    "StableMaterialsPipelineOutput": "pipeline",
    "render_preview": "render",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
