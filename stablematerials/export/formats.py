"""The export formats, in one registry (as the procedural families are): what each writes, the options it takes and
the function that writes it. `stablematerials export` offers every entry; the batch job's folders and extra files
and the web UI's downloads are written through it. Adding a format is one entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import NAMING_PRESETS, load_material
from ..material import Material
from .gltf import export_glb, glb_bytes
from .materialx import export_mtlx
from .textures import export_texture_set

# The options of a texture folder (`export_texture_set`) and of a glTF binary (`export_glb`).
FOLDER_OPTIONS = ("name", "normal_convention", "bit_depth", "orm", "ao", "overwrite", "extra_files")
GLB_OPTIONS = ("shape", "size_m", "tiling", "displacement", "texture_size", "ao", "segments", "name")


@dataclass(frozen=True)
class ExportFormat:
    """One way to write a material for another tool.

    name: the key (`--to NAME`). label: what it is, for people (the CLI's help, the web UI's choices).
    suffix: the file it writes (".glb"); None for a folder of texture files.
    options: the keyword options `write` passes on to `writer` (any other is a ValueError naming it).
    writer: writer(material, target, **options) -> the path written; `reads_folder`: it takes a material folder
        as it is (MaterialX references the folder's files), else a folder is loaded into a `Material` first.
    encoder: encoder(material, **options) -> the file's bytes, for single-file formats that can be embedded in
        another folder (the batch job's `.glb`); None otherwise.
    """

    name: str
    label: str
    suffix: str | None
    options: tuple[str, ...]
    writer: Callable[..., Path]
    encoder: Callable[..., bytes] | None = None
    reads_folder: bool = False

    @property
    def is_folder(self) -> bool:
        """True when it writes a folder of texture files."""
        return self.suffix is None

    def check_options(self, options: dict[str, Any]) -> None:
        """ValueError naming the options this format does not take."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} do(es) not apply to {self.name}")

    def write(self, source: Material | str | os.PathLike, target: str | os.PathLike, **options: Any) -> Path:
        """Write `source` (a `Material` or a material folder) to `target`; return the path written."""
        self.check_options(options)
        if self.suffix is not None and Path(target).suffix.lower() != self.suffix:
            raise ValueError(f"a {self.name} file must end in {self.suffix}, got {str(target)!r}")
        if not isinstance(source, Material):
            if not Path(source).is_dir():
                raise ValueError(f"{str(source)!r} is not a material folder")
            source = source if self.reads_folder else load_material(source)
        return self.writer(source, target, **options)

    def encode(self, material: Material, **options: Any) -> bytes:
        """The file's bytes (single-file formats with an encoder)."""
        if self.encoder is None:
            raise ValueError(f"{self.name} is not written as one file that can be embedded")
        self.check_options(options)
        return self.encoder(material, **options)


def _texture_folder(naming: str) -> Callable[..., Path]:
    def write(material: Material, target: str | os.PathLike, **options: Any) -> Path:
        return export_texture_set(material, target, naming=naming, **options)

    return write


# How each naming preset's folder is described to people.
_FOLDER_LABELS = {
    "plain": "Plain (basecolor.png, normal.png, ...)",
    "ambientcg": "ambientCG (_Color, _NormalGL, _Displacement, ...)",
    "polyhaven": "Poly Haven (_diff, _nor_gl, _disp, ...)",
}

EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("glb", "glTF 2.0 binary: the material on a plane or a sphere", ".glb",
                     GLB_OPTIONS, export_glb, encoder=glb_bytes),
        ExportFormat("mtlx", "MaterialX standard_surface referencing the folder's maps", ".mtlx",
                     ("displacement_scale",), export_mtlx, reads_folder=True),
        *(ExportFormat(key, _FOLDER_LABELS[key], None, FOLDER_OPTIONS, _texture_folder(key))
          for key in NAMING_PRESETS),
    )
}  # fmt: skip


def get_format(name: str) -> ExportFormat:
    """The registered export format `name`, else a ValueError listing the formats."""
    if name not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {name!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name]


def folder_formats() -> list[ExportFormat]:
    """The formats that write a folder of texture files (one per naming preset)."""
    return [f for f in EXPORT_FORMATS.values() if f.is_folder]


def folder_format(naming: str) -> ExportFormat:
    """The texture-folder format of naming preset `naming`, else a ValueError listing the presets."""
    if naming not in EXPORT_FORMATS or not EXPORT_FORMATS[naming].is_folder:
        names = ", ".join(f.name for f in folder_formats())
        raise ValueError(f"unknown naming preset {naming!r}; expected one of {names}")
    return EXPORT_FORMATS[naming]
