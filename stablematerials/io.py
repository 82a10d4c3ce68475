"""Material folders on disk: naming presets users already know, 8/16-bit PNG and EXR, metadata, atomic writes.

A folder is written into a hidden temporary sibling and renamed into place, so it appears complete or not at all.
Loading recognises ambientCG, Poly Haven, MatSynth and the plain layout by file name.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .maps import MAP_NAMES, MAPS, NAMING_PRESET_KEYS, MapSpec, map_spec
from .material import Material, flip_normal_convention
from .values import slug

logger = logging.getLogger(__name__)

NamingName = Literal["plain", "ambientcg", "polyhaven"]
NormalConvention = Literal["opengl", "directx", "both"]
IMAGE_EXTENSIONS = (".png", ".exr", ".jpg", ".jpeg", ".tif", ".tiff")
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class NamingPreset:
    """A naming convention: how it spells each map's file stem (the `stems` of `stablematerials.maps.MAPS`)."""

    key: str

    def stem(self, map_name: str, material_name: str, convention: str = "opengl") -> str:
        """The file stem of `map_name` for a material named `material_name` (`convention` picks the normal's file)."""
        spec = map_spec(map_name)
        stems = spec.directx_stems if convention == "directx" and spec.directx_stems else spec.stems
        return stems[self.key].format(name=material_name)


NAMING_PRESETS: dict[str, NamingPreset] = {key: NamingPreset(key) for key in NAMING_PRESET_KEYS}


def _load_pattern(aliases: tuple[str, ...]) -> re.Pattern:
    """A stem ending in one of `aliases` after `_` (or being one), then an optional resolution tag (`_1k`, `_2K`,
    `_1K-PNG`) as in files downloaded from ambientCG and Poly Haven; matched on the lower-cased stem."""
    return re.compile(rf"(?:^|_)(?:{'|'.join(aliases)})(?:[_-]\d+k(?:-[a-z]+)?)?$")


@functools.cache
def _load_patterns() -> dict[str, re.Pattern]:
    """Recognised file stems when loading, by key: each map's name, and `normal_dx` / `normal_gl` for the two
    files of a normal map (DirectX first: its names are the more specific)."""
    patterns: dict[str, re.Pattern] = {}
    for name, spec in MAPS.items():
        if spec.directx_aliases:
            patterns[f"{name}_dx"] = _load_pattern(spec.directx_aliases)
            patterns[f"{name}_gl"] = _load_pattern(spec.aliases)
        else:
            patterns[name] = _load_pattern(spec.aliases)
    return patterns


class MaterialFolderError(ValueError):
    """A folder that does not hold a readable material."""


# ----------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class AtomicFolder:
    """Context manager: yields a temporary folder that replaces `target` on success and vanishes on error.

    >>> with AtomicFolder("out/bricks") as tmp:   # write files into tmp
    ...     (tmp / "a.txt").write_text("x")
    """

    def __init__(self, target: str | os.PathLike, overwrite: bool = False) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        if self.target.exists() and not self.overwrite:
            raise FileExistsError(f"{self.target} already exists (pass overwrite=True to replace it)")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".partial", dir=self.target.parent))
        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the final folder gets the usual permissions
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        try:
            if self.target.exists():
                if not self.overwrite:
                    raise FileExistsError(f"{self.target} appeared while it was being written")
                old = self.target.with_name(f".{self.target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(self.target, old)
            os.replace(self.tmp, self.target)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)  # nothing half-written stays behind
            if old is not None and not self.target.exists():
                os.replace(old, self.target)  # the previous content comes back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def is_material_folder(path: str | os.PathLike) -> bool:
    """True for a folder this project wrote (metadata.json) or one holding a recognised basecolor map."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    return (folder / METADATA_FILE).is_file() or "basecolor" in find_material_files(folder)


def check_output_folder(target: str | os.PathLike, overwrite: bool = False, what: str = "a material") -> Path:
    """Check, before any work, that a material folder can be written at `target`; return it as a Path.

    ValueError when the path is empty or is the current folder or one of its parents (it cannot be replaced by a
    folder), when its location cannot be written (a read-only or system folder), FileExistsError when something is
    there and `overwrite` is off, or when it is not a material folder (or an empty folder): `overwrite` never
    deletes a folder of other files; the user removes it."""
    if str(target).strip() == "":
        raise ValueError(f"the output path is empty: name a new folder for {what}, e.g. bricks")
    path = Path(target).expanduser()
    resolved = path.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved.parent == resolved:
        raise ValueError(
            f"the output {str(target)!r} is the current folder or one of its parents: name a new folder for {what}"
        )
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} already exists (use --overwrite to replace it)")
        if path.is_dir() and any(path.iterdir()) and not is_material_folder(path):
            raise FileExistsError(
                f"{path} is not a material folder (no metadata.json or basecolor map): refusing to replace it; "
                "choose another output folder or remove it yourself"
            )
        if not path.is_dir():
            raise FileExistsError(f"{path} is a file, not a material folder: refusing to replace it")
    _check_writable(resolved.parent)
    return path


def _check_writable(folder: Path) -> None:
    """ValueError unless a folder can be created in `folder` (or in its nearest existing parent)."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write into {folder}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".stablematerials-check-", dir=existing))
    except OSError as e:
        raise ValueError(f"cannot write into {existing}: {e.strerror or e}") from None


# ----------------------------------------------------------------------------------------------
# Image files
# ----------------------------------------------------------------------------------------------


def write_image(path: Path, data: np.ndarray, bit_depth: int = 8) -> None:
    """Write a (H, W) or (H, W, 3) array in [0, 1] as PNG (8 or 16 bit), JPEG (8 bit) or EXR (float32)."""
    ext = path.suffix.lower()
    data = np.clip(np.asarray(data, dtype=np.float32), 0.0, 1.0)
    if ext == ".exr":
        import OpenEXR

        channels = {"Y": data} if data.ndim == 2 else {"RGB": np.ascontiguousarray(data)}
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        with OpenEXR.File(header, channels) as f:
            f.write(str(path))
        return
    import cv2

    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if ext in (".jpg", ".jpeg") and bit_depth != 8:
        raise ValueError(f"JPEG is 8-bit only; cannot write {path.name} at {bit_depth} bits")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    pixels = np.round(data * scale).astype(dtype)
    if pixels.ndim == 3:
        pixels = pixels[..., ::-1]  # OpenCV stores BGR
    if not cv2.imwrite(str(path), np.ascontiguousarray(pixels)):
        raise OSError(f"could not write {path}")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 in [0, 1]: (H, W) for grey, (H, W, 3) for colour (alpha dropped)."""
    path = Path(path)
    if path.suffix.lower() == ".exr":
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            if "RGB" in channels:
                data = channels["RGB"].pixels
            elif "RGBA" in channels:
                data = channels["RGBA"].pixels[..., :3]
            else:
                data = next(iter(channels.values())).pixels
        return np.asarray(data, dtype=np.float32)
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise MaterialFolderError(f"{path} is not a readable image")
    if pixels.dtype == np.uint8:
        data = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        data = pixels.astype(np.float32) / 65535.0
    else:
        data = pixels.astype(np.float32)
    if data.ndim == 3:
        data = data[..., :3][..., ::-1] if data.shape[-1] >= 3 else data[..., 0]
    return np.ascontiguousarray(data)


# ----------------------------------------------------------------------------------------------
# Save / load a material folder
# ----------------------------------------------------------------------------------------------


def _sanitize(name: str) -> str:
    """A material name as its file names spell it (its case kept)."""
    return slug(name, limit=255, lower=False)


def material_files(
    name: str, naming: str = "plain", normal_convention: str = "opengl", exr: bool = False
) -> dict[str, str]:
    """The file name of each map for a naming preset (keys: map names; 'normal_dx' when both normals are written)."""
    if naming not in NAMING_PRESETS:
        raise ValueError(f"unknown naming preset {naming!r}; expected one of {', '.join(NAMING_PRESETS)}")
    if normal_convention not in ("opengl", "directx", "both"):
        raise ValueError(f"normal_convention must be opengl, directx or both, got {normal_convention!r}")
    preset = NAMING_PRESETS[naming]
    name = _sanitize(name)

    def file(map_name: str, convention: str = "opengl") -> str:
        ext = ".exr" if exr and MAPS[map_name].deep else ".png"
        return preset.stem(map_name, name, convention) + ext

    files = {m: file(m) for m in MAP_NAMES}
    for m, spec in MAPS.items():
        if spec.directx_stems and normal_convention == "directx":
            files[m] = file(m, "directx")
        elif spec.directx_stems and normal_convention == "both":
            files[f"{m}_dx"] = file(m, "directx")
    return files


def save_material(
    material: Material,
    folder: str | os.PathLike,
    *,
    naming: str = "plain",
    name: str | None = None,
    normal_convention: str = "opengl",
    bit_depth: int = 16,
    exr: bool = False,
    overwrite: bool = False,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a material folder atomically and return its path.

    Height and normal are written at `bit_depth` (16 by default: 8-bit steps show in displacement), or as float
    EXR with `exr=True`; basecolor, roughness and metallic are 8-bit PNG. `metadata.json` records the material's
    metadata plus the naming, normal convention and file names. `extra_files` (name -> bytes) are written too.
    """
    folder = check_output_folder(folder, overwrite)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    name = _sanitize(name or folder.name)
    files = material_files(name, naming, normal_convention, exr)
    with AtomicFolder(folder, overwrite=overwrite) as tmp:
        for key, filename in files.items():
            map_name = key.removesuffix("_dx")
            convention = "directx" if key.endswith("_dx") or normal_convention == "directx" else "opengl"
            data = material.encoded(map_name, convention)
            depth = bit_depth if MAPS[map_name].deep else 8
            write_image(tmp / filename, data, depth)
        meta = dict(material.metadata)
        meta.update(
            {
                "naming": naming,
                "name": name,
                "normal_convention": normal_convention,
                "bit_depth": bit_depth,
                "size": list(material.size[::-1]),
                "files": files,
            }
        )
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        for extra_name, data in (extra_files or {}).items():
            (tmp / extra_name).write_bytes(data)
    logger.info("wrote material %s", folder)
    return folder


def find_material_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Which file holds which map in a folder (keys: basecolor, normal_gl, normal_dx, height, roughness, metallic)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MaterialFolderError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    candidates = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: IMAGE_EXTENSIONS.index(p.suffix.lower()),  # prefer PNG, then EXR, then the rest
    )
    for path in candidates:
        stem = path.stem.lower()
        for key, pattern in _load_patterns().items():
            if key not in found and pattern.search(stem):
                found[key] = path
                break
    return found


def load_material(folder: str | os.PathLike) -> Material:
    """Load a material folder in any known layout (plain/MatSynth, ambientCG, Poly Haven).

    A missing map reads as its default in `stablematerials.maps.MAPS` (height and roughness 0.5, metallic 0), a
    missing normal is derived from the height; each such default is logged, but for metallic (many folders of
    non-metals have none). A missing basecolor is an error.
    """
    folder = Path(folder)
    files = find_material_files(folder)
    metadata = _read_metadata(folder)
    first = MAP_NAMES[0]  # basecolor: required, and the size of the others
    if first not in files:
        raise MaterialFolderError(
            f"{folder} has no {first} map (looked for {'/'.join(MAPS[first].aliases)} image files)"
        )
    # A plain-layout `normal.png` is OpenGL unless the metadata says otherwise.
    gl_is_dx = metadata.get("normal_convention") == "directx"
    maps = {first: _read_map(files, MAPS[first], gl_is_dx)}
    h, w = maps[first].shape[:2]
    derive_normal = False
    for name, spec in MAPS.items():
        data = maps[name] if name in maps else _read_map(files, spec, gl_is_dx)
        if data is None and spec.default is not None:
            if not spec.often_absent:
                logger.warning("%s: no %s map, using %.1f", folder, name, spec.default)
            data = np.full((h, w), spec.default, np.float32)
        elif data is None and spec.encoding == "normal":  # derived from the height below
            logger.warning("%s: no %s map, deriving it from height", folder, name)
            data, derive_normal = np.broadcast_to(np.float32([0, 0, 1]), (h, w, 3)), True
        elif data is None:
            raise MaterialFolderError(f"{folder} has no {name} map")
        expected = (h, w) if spec.channels == 1 else (h, w, spec.channels)
        if data.shape != expected:
            raise MaterialFolderError(f"{folder}: {name} map has shape {data.shape}, expected {expected}")
        maps[name] = data
    material_meta = {k: v for k, v in metadata.items() if k not in ("files", "naming", "size", "bit_depth")}
    material = Material(**maps, metadata=material_meta)
    return material.with_normal_from_height() if derive_normal else material


def _read_metadata(folder: Path) -> dict:
    """A folder's metadata.json ({} when it has none)."""
    path = folder / METADATA_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MaterialFolderError(f"{path} is not valid JSON: {e}") from e


def _read_map(files: dict[str, Path], spec: MapSpec, gl_is_dx: bool) -> np.ndarray | None:
    """One map of a folder as a `Material` holds it, or None when the folder has no file for it. A grey file of a
    colour map is repeated to RGB; a colour file of a grey map gives its first channel."""
    if spec.encoding == "normal":
        gl, dx = files.get(f"{spec.name}_gl"), files.get(f"{spec.name}_dx")
        if gl is not None:
            normal = read_image(gl) * 2 - 1
            return flip_normal_convention(normal) if gl_is_dx else normal
        return None if dx is None else flip_normal_convention(read_image(dx) * 2 - 1)
    if spec.name not in files:
        return None
    data = read_image(files[spec.name])
    if spec.channels == 3:
        return np.repeat(data[..., None], 3, axis=-1) if data.ndim == 2 else data
    return data if data.ndim == 2 else data[..., 0]
