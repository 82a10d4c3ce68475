"""Export to formats other tools read: glTF 2.0 binary, MaterialX, packed ORM textures and preset texture folders."""

from __future__ import annotations

from .gltf import export_glb, glb_bytes
from .materialx import export_mtlx
from .textures import encode_png, export_texture_set, orm_file_name, pack_orm

__all__ = ["encode_png", "export_glb", "export_mtlx", "export_texture_set", "glb_bytes", "orm_file_name", "pack_orm"]
