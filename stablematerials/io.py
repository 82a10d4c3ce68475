"""Material folders on disk: naming presets users already know, 8/16-bit PNG and EXR, metadata, atomic writes.

A folder is written into a hidden temporary sibling and renamed into place, so it appears complete or not at all.
Loading recognises ambientCG, Poly Haven, MatSynth and the plain layout by file name.
"""

from __future__ import annotations

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

from .material import MAP_NAMES, Material, flip_normal_convention
from .values import slug

logger = logging.getLogger(__name__)

NamingName = Literal["plain", "ambientcg", "polyhaven"]
NormalConvention = Literal["opengl", "directx", "both"]
IMAGE_EXTENSIONS = (".png", ".exr", ".jpg", ".jpeg", ".tif", ".tiff")
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class NamingPreset:
    """How a naming convention spells each map's file stem; `{name}` is the material's name."""

    key: str
    basecolor: str
    normal_gl: str
    normal_dx: str
    height: str
    roughness: str
    metallic: str

    def stem(self, map_name: str, material_name: str, convention: str = "opengl") -> str:
        if map_name == "normal":
            pattern = self.normal_gl if convention == "opengl" else self.normal_dx
        else:
            pattern = getattr(self, map_name)
        return pattern.format(name=material_name)


NAMING_PRESETS: dict[str, NamingPreset] = {
    "plain": NamingPreset("plain", "basecolor", "normal", "normal_dx", "height", "roughness", "metallic"),
    "ambientcg": NamingPreset(
        "ambientcg",
        "{name}_Color",
        "{name}_NormalGL",
        "{name}_NormalDX",
        "{name}_Displacement",
        "{name}_Roughness",
        "{name}_Metalness",
    ),
    "polyhaven": NamingPreset(
        "polyhaven", "{name}_diff", "{name}_nor_gl", "{name}_nor_dx", "{name}_disp", "{name}_rough", "{name}_metal"
    ),
}

# Recognised file stems when loading, matched on the lower-cased stem; an optional resolution tag
# (`_1k`, `_2K`, `_1K-PNG`) may follow, as in files downloaded from ambientCG and Poly Haven.
_RES = r"(?:[_-]\d+k(?:-[a-z]+)?)?"
_LOAD_PATTERNS: dict[str, re.Pattern] = {
    "basecolor": re.compile(rf"(?:^|_)(?:basecolor|base_color|color|col|diff|diffuse|albedo){_RES}$"),
    "normal_dx": re.compile(rf"(?:^|_)(?:normaldx|nor_dx|normal_dx){_RES}$"),
    "normal_gl": re.compile(rf"(?:^|_)(?:normal|normalgl|nor_gl|normal_gl|nrm){_RES}$"),
    "height": re.compile(rf"(?:^|_)(?:height|displacement|disp){_RES}$"),
    "roughness": re.compile(rf"(?:^|_)(?:roughness|rough){_RES}$"),
    "metallic": re.compile(rf"(?:^|_)(?:metallic|metalness|metal){_RES}$"),
}


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
    wide = ".exr" if exr else ".png"
    files = {m: preset.stem(m, name) + (wide if m == "height" else ".png") for m in MAP_NAMES}
    if normal_convention == "directx":
        files["normal"] = preset.stem("normal", name, "directx") + (wide if exr else ".png")
    elif normal_convention == "both":
        files["normal_dx"] = preset.stem("normal", name, "directx") + (wide if exr else ".png")
    if exr:
        files["normal"] = Path(files["normal"]).with_suffix(".exr").name
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
            map_name = "normal" if key.startswith("normal") else key
            convention = "directx" if key == "normal_dx" or normal_convention == "directx" else "opengl"
            data = material.encoded(map_name, convention)
            depth = bit_depth if map_name in ("height", "normal") else 8
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
        for key, pattern in _LOAD_PATTERNS.items():
            if key not in found and pattern.search(stem):
                found[key] = path
                break
    return found


def load_material(folder: str | os.PathLike) -> Material:
    """Load a material folder in any known layout (plain/MatSynth, ambientCG, Poly Haven).

    A missing metallic map reads as 0, a missing height as flat 0.5, a missing normal is derived from height,
    a missing roughness reads as 0.5; each such default is logged. A missing basecolor is an error.
    """
    folder = Path(folder)
    files = find_material_files(folder)
    meta_path = folder / METADATA_FILE
    metadata: dict = {}
    if meta_path.exists():
        try:
            metadata = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise MaterialFolderError(f"{meta_path} is not valid JSON: {e}") from e
    if "basecolor" not in files:
        raise MaterialFolderError(
            f"{folder} has no basecolor map (looked for basecolor/color/diff/albedo image files)"
        )
    basecolor = read_image(files["basecolor"])
    if basecolor.ndim == 2:
        basecolor = np.repeat(basecolor[..., None], 3, axis=-1)
    h, w = basecolor.shape[:2]

    def grey(key: str, default: float) -> np.ndarray:
        if key not in files:
            logger.warning("%s: no %s map, using %.1f", folder, key, default)
            return np.full((h, w), default, np.float32)
        data = read_image(files[key])
        return data if data.ndim == 2 else data[..., 0]

    height = grey("height", 0.5)
    roughness = grey("roughness", 0.5)
    metallic = grey("metallic", 0.0) if "metallic" in files else np.zeros((h, w), np.float32)
    # A plain-layout `normal.png` is OpenGL unless the metadata says otherwise.
    gl_is_dx = metadata.get("normal_convention") == "directx"
    if "normal_gl" in files:
        normal = read_image(files["normal_gl"]) * 2 - 1
        if gl_is_dx:
            normal = flip_normal_convention(normal)
    elif "normal_dx" in files:
        normal = flip_normal_convention(read_image(files["normal_dx"]) * 2 - 1)
    else:
        normal = None
    for key, arr in (("height", height), ("roughness", roughness), ("metallic", metallic)):
        if arr.shape != (h, w):
            raise MaterialFolderError(f"{folder}: {key} map is {arr.shape[1]}x{arr.shape[0]}, basecolor is {w}x{h}")
    material_meta = {k: v for k, v in metadata.items() if k not in ("files", "naming", "size", "bit_depth")}
    if normal is None:
        logger.warning("%s: no normal map, deriving it from height", folder)
        flat = np.zeros((h, w, 3), np.float32)
        flat[..., 2] = 1
        return Material(basecolor, flat, height, roughness, metallic, material_meta).with_normal_from_height()
    if normal.ndim != 3 or normal.shape[:2] != (h, w):
        raise MaterialFolderError(f"{folder}: normal map has shape {normal.shape}, expected ({h}, {w}, 3)")
    return Material(basecolor, normal, height, roughness, metallic, material_meta)
