"""Texture sets for engines: packed occlusion-roughness-metallic (ORM) maps, PNG encoding, preset texture folders.

Packed ORM (Unreal's "ORM", Poly Haven's "ARM", glTF's metallicRoughness + occlusion): R ambient occlusion (white
when there is none), G roughness, B metallic, all linear.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import NAMING_PRESETS, _sanitize, save_material
from ..material import Material

# How each naming preset spells the packed ORM file (`{name}` is the material's name).
ORM_STEMS: dict[str, str] = {"plain": "orm", "ambientcg": "{name}_ORM", "polyhaven": "{name}_arm"}


def pack_orm(material: Material, ao: np.ndarray | None = None) -> np.ndarray:
    """Packed ORM texture (H, W, 3) float32 in [0, 1]: R ambient occlusion (or white), G roughness, B metallic."""
    h, w = material.size
    if ao is None:
        occlusion = np.ones((h, w), np.float32)
    else:
        occlusion = np.asarray(ao, dtype=np.float32)
        if occlusion.ndim == 3 and occlusion.shape[-1] == 1:
            occlusion = occlusion[..., 0]
        if occlusion.shape != (h, w):
            raise ValueError(f"ambient occlusion map has shape {occlusion.shape}, expected ({h}, {w})")
        if not np.isfinite(occlusion).all():
            raise ValueError("ambient occlusion map contains NaN or infinite values")
        occlusion = np.clip(occlusion, 0.0, 1.0)
    return np.stack([occlusion, material.roughness, material.metallic], axis=-1).astype(np.float32)


def encode_png(data: np.ndarray, bit_depth: int = 8) -> bytes:
    """A (H, W) or (H, W, 3) array in [0, 1] as PNG file bytes (8 or 16 bit)."""
    import cv2

    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    arr = np.clip(np.asarray(data, dtype=np.float32), 0.0, 1.0)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) array, got shape {arr.shape}")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    pixels = np.round(arr * scale).astype(dtype)
    if pixels.ndim == 3:
        pixels = pixels[..., ::-1]  # OpenCV expects BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def orm_file_name(naming: str, name: str) -> str:
    """The packed ORM file name of a naming preset (`orm.png`, `<name>_ORM.png`, `<name>_arm.png`)."""
    if naming not in ORM_STEMS:
        raise ValueError(f"unknown naming preset {naming!r}; expected one of {', '.join(NAMING_PRESETS)}")
    return ORM_STEMS[naming].format(name=name) + ".png"


def export_texture_set(
    material: Material,
    folder: str | os.PathLike,
    *,
    naming: str = "plain",
    name: str | None = None,
    normal_convention: str = "opengl",
    bit_depth: int = 16,
    orm: bool = False,
    ao: np.ndarray | None = None,
    overwrite: bool = False,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a material folder in a naming preset (normal convention, bit depth), optionally with a packed ORM map.

    The folder is written atomically by `save_material`; the ORM texture is 8-bit (as engines import it).
    """
    extras = dict(extra_files or {})
    if orm:
        # save_material sanitises the name the same way before naming the maps
        extras[orm_file_name(naming, _sanitize(name or Path(folder).name))] = encode_png(pack_orm(material, ao), 8)
    return save_material(
        material,
        folder,
        naming=naming,
        name=name,
        normal_convention=normal_convention,
        bit_depth=bit_depth,
        overwrite=overwrite,
        extra_files=extras,
    )
