"""Files a front end offers: a zip of the material folder in a chosen naming, a `.glb`, and its pictures as PNGs.

Each file is written atomically into its own fresh sub-folder of `out_dir` (so two requests never collide and the
download keeps the material's name); `prune_outputs` removes sub-folders older than a given age.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..generation import material_name
from ..io import atomic_write_bytes
from ..material import Material

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

GLB_SHAPES = ("plane", "sphere")


def _name_of(material: Material) -> str:
    name = material.metadata.get("name")
    return str(name) if name else material_name(str(material.metadata.get("prompt") or ""), material.metadata.get("seed"))


def _fresh_folder(out_dir: str | os.PathLike | None) -> Path:
    """A new empty folder inside `out_dir` (or the system temp folder)."""
    parent = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="material-", dir=parent))


def zip_material(
    material: Material,
    naming: str = "plain",
    normal_convention: str = "opengl",
    bit_depth: int = 16,
    out_dir: str | os.PathLike | None = None,
) -> Path:
    """The material folder of a folder export format (a naming preset; normal convention, height/normal bit depth),
    zipped under one top folder named after the material; returns the zip's path."""
    from ..export import folder_format

    name = _name_of(material)
    target = _fresh_folder(out_dir) / f"{name}.zip"
    with tempfile.TemporaryDirectory(prefix="zip-material-") as tmp:
        folder = folder_format(naming).write(
            material, Path(tmp) / name, normal_convention=normal_convention, bit_depth=bit_depth
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"{name}/{path.name}")
    atomic_write_bytes(target, buffer.getvalue())
    logger.info("wrote %s", target)
    return target


def glb_for(material: Material, shape: str = "plane", out_dir: str | os.PathLike | None = None) -> Path:
    """The material on a plane or a sphere as a glTF binary (the export format "glb"); returns its path."""
    from ..export import get_format

    if shape not in GLB_SHAPES:
        raise ValueError(f"shape must be one of {', '.join(GLB_SHAPES)}, got {shape!r}")
    glb = get_format("glb")
    target = _fresh_folder(out_dir) / f"{_name_of(material)}_{shape}{glb.suffix}"
    return glb.write(material, target, shape=shape)


def save_pictures(pictures: Mapping[str, "Image.Image"], out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write each picture as `<key>.png` (atomically) into one fresh sub-folder of `out_dir`; returns key -> path.

    A front end should hand its server these files, not the images: gradio saves a returned PIL image into its
    cache by truncating and rewriting a file named after the image's content, so when two requests return the same
    picture (a history thumbnail, an all-black metallic map) one of them can serve that file while it is empty
    (seen once in CI under a full queue: "Too little data for declared Content-Length"; a reader racing gradio's
    re-save of one image read a short file 49 times in 3000). A file path is instead copied into the cache
    atomically, and a copy that exists is never rewritten.
    """
    for key in pictures:
        if not key or Path(key).name != key or key.startswith("."):
            raise ValueError(f"picture names must be plain file names, got {key!r}")
    if not pictures:
        return {}
    folder = _fresh_folder(out_dir)
    paths = {}
    for key, picture in pictures.items():
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        paths[key] = folder / f"{key}.png"
        atomic_write_bytes(paths[key], buffer.getvalue())
    return paths


def prune_outputs(out_dir: str | os.PathLike, max_age_seconds: float) -> int:
    """Delete the download sub-folders of `out_dir` older than `max_age_seconds`; return how many were removed."""
    folder = Path(out_dir)
    if not folder.is_dir():
        return 0
    cutoff = time.time() - max_age_seconds
    removed = 0
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith("material-") and child.stat().st_mtime < cutoff:
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed
