"""Export to formats other tools read: glTF 2.0 binary, MaterialX, packed ORM textures and preset texture folders
(the registry of formats: `EXPORT_FORMATS`)."""

from __future__ import annotations

from .formats import EXPORT_FORMATS, ExportFormat, folder_format, folder_formats, get_format
from .gltf import export_glb, glb_bytes
from .materialx import export_mtlx
from .textures import encode_png, export_texture_set, orm_file_name, pack_orm

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "encode_png",
    "export_glb",
    "export_mtlx",
    "export_texture_set",
    "folder_format",
    "folder_formats",
    "get_format",
    "glb_bytes",
    "orm_file_name",
    "pack_orm",
]
