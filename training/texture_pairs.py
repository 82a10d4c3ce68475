"""Real textures for the capture model's real streams: colour images with their artists' normal maps (`NAME.EXT`
beside `NAME_norm.EXT` or `NAME_nm.EXT`, the normal map's alpha a height), and photos without any maps
(`RealPhotos`).

Game texture sets ship such pairs (Debian's `nexuiz-textures`, GPL-2+: about 1700 in `data/textures.pk3`, a zip;
`ufoai-textures`, GPL-2+ with some files under other free licences: 725 `_nm` maps in `base/0textures.pk3`).
They give the capture model what photographs cannot: real colour images with a real (if artist-made) relief.
`benchmarks/capture_real_maps.py` scores normals against them; `RealPairs` feeds them to training
(`training/train_capture.py`, `real.*`) as views with a camera's defects, like the synthetic photos.

A normal map is OpenGL (+Y up, the library's convention) or DirectX (Y flipped); its alpha height tells which: the
map's X and Y correlate with those of normals derived from the height, and a Y against an agreeing X is DirectX.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stablematerials.material import (
    Material,
    flip_normal_convention,
    normal_from_height,
)
from stablematerials.pictures import read_picture
from stablematerials.seamless import make_tileable

COLOUR_EXTENSIONS = (".tga", ".png", ".jpg", ".jpeg")
_NORMAL_NAME = re.compile(r"_(norm|nm)$")  # a normal map's name: its colour image's plus one of these
# A game texture set's maps that are not colour images: normal, bump, gloss, specular, glow, height, luma, mask.
_MAP_NAME = re.compile(r"[_-](nm|norm|normal|bump|gloss|spec|glow|height|luma|mask)$", re.IGNORECASE)


def texture_pairs(root: Path, exclude: tuple[str, ...] = ()) -> list[tuple[Path, Path]]:
    """(colour image, normal map) pairs under `root`, sorted: every `NAME_norm.EXT` or `NAME_nm.EXT` (Nexuiz's and
    UFO:AI's names) with a `NAME.EXT` beside it, except those under the top-level folders in `exclude`."""
    pairs = []
    for normal in sorted(p for p in root.rglob("*") if p.suffix.lower() in COLOUR_EXTENSIONS and _NORMAL_NAME.search(p.stem)):
        if normal.relative_to(root).parts[0] in exclude:
            continue
        base = normal.with_name(_NORMAL_NAME.sub("", normal.stem))
        colour = next((base.with_suffix(e) for e in COLOUR_EXTENSIONS if base.with_suffix(e).is_file()), None)
        if colour is not None:
            pairs.append((colour, normal))
    return pairs


def load_pair(colour: Path, normal: Path, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The colour image (H, W, 3), the normal map as unit vectors (H, W, 3, as stored), its alpha (H, W) in [0, 1]
    at the scaled size (at most `max_side` per side, multiples of 8, at least 32), and where the map holds a normal
    (H, W): a stored vector of about unit length that faces out (the holes of a grate are often stored black).
    None when the two differ in size or are under 64 px."""
    rgb, rgba = Image.open(colour).convert("RGB"), Image.open(normal).convert("RGBA")
    if rgb.size != rgba.size or min(rgb.size) < 64:
        return None
    scale = min(1.0, max_side / max(rgb.size))
    size = tuple(max(32, round(side * scale / 8) * 8) for side in rgb.size)
    photo = np.asarray(rgb.resize(size, Image.LANCZOS), dtype=np.float32) / 255.0
    encoded = np.asarray(rgba.resize(size, Image.LANCZOS), dtype=np.float32) / 255.0
    vectors = encoded[..., :3] * 2.0 - 1.0
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    valid = (np.abs(length[..., 0] - 1.0) < 0.25) & (vectors[..., 2] > 0.0)
    return photo, vectors / (length + 1e-8), encoded[..., 3], valid


def agreement(vectors: np.ndarray, alpha: np.ndarray) -> tuple[float, float] | None:
    """Correlations of the map's X and Y with those of OpenGL normals derived from its alpha height (None: flat)."""
    if alpha.std() < 0.02:
        return None
    derived = normal_from_height(torch.from_numpy(alpha)[None, None], 4.0)[0].numpy()  # (3, H, W)
    pairs = [(derived[c].ravel(), vectors[..., c].ravel()) for c in (0, 1)]
    if any(a.std() < 1e-6 or b.std() < 1e-6 for a, b in pairs):
        return None
    x, y = (float(np.corrcoef(a, b)[0, 1]) for a, b in pairs)
    return x, y


def directx(xy: tuple[float, float] | None) -> bool:
    """Y disagrees with the height where X agrees: a DirectX map. (Both disagreeing: the alpha is a depth, not a
    height, and the map is OpenGL.) When X tells nothing (|correlation| < 0.3: relief along one axis only), the
    alpha is taken as a height and Y decides alone."""
    if xy is None:
        return False
    x, y = xy
    return (x > 0) != (y > 0) if abs(x) >= 0.3 else y < 0


def to_opengl(vectors: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The map's normals in the library's OpenGL convention (Y flipped when `directx`) and the `agreement` that
    decided it."""
    xy = agreement(vectors, alpha)
    return (flip_normal_convention(vectors) if directx(xy) else vectors), xy


class _HalfCache:
    """Items loaded on first use (`_load`, in model space (9, H, W), or None when unusable) and kept in float16."""

    def __init__(self, name: str) -> None:
        self.name = name  # the option and folder it came from, for messages
        self._cache: dict[int, torch.Tensor | None] = {}

    def get(self, index: int) -> torch.Tensor | None:
        """Item `index` in model space (9, H, W) float32, or None when it is unusable."""
        if index not in self._cache:
            loaded = self._load(index)
            self._cache[index] = None if loaded is None else loaded.half()
        cached = self._cache[index]
        return None if cached is None else cached.float()

    def _load(self, index: int) -> torch.Tensor | None:
        raise NotImplementedError


class RealPairs(_HalfCache):
    """The pairs under a folder as model-space tensors (9, H, W) for `training.capture_data.sample_view`: the colour
    image as basecolor, the artist's normal (OpenGL) and its alpha as height; roughness and metallic are unknown
    (left at 0.5 and 0, and never scored). Pairs with under `min_valid` of their pixels holding a normal are left
    out. Loaded on first use and kept in float16: 1.2 MB a pair at `max_side` 256, so all 1700 Nexuiz pairs
    would take 2 GB."""

    def __init__(self, root: str | Path, exclude: tuple[str, ...] = (), max_side: int = 256, min_valid: float = 0.9) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"real.textures {str(root)!r} is not a folder")
        self.pairs = texture_pairs(root, exclude)
        if not self.pairs:
            raise ValueError(f"real.textures {str(root)!r} holds no NAME.EXT + NAME_norm.EXT (or NAME_nm.EXT) pairs ({', '.join(COLOUR_EXTENSIONS)})")
        super().__init__(f"real.textures {str(root)!r}")
        self.max_side, self.min_valid = max_side, min_valid

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> torch.Tensor | None:
        loaded = load_pair(*self.pairs[index], self.max_side)
        if loaded is None or loaded[3].mean() < self.min_valid:
            return None
        photo, vectors, alpha, _ = loaded
        flat = np.full(alpha.shape, 0.5, np.float32)
        material = Material(photo, to_opengl(vectors, alpha)[0], alpha, flat, np.zeros_like(flat), {"source": "texture pair"})
        return material.to_model_tensor()


def photo_files(root: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Colour images under `root`, sorted: files with a COLOUR_EXTENSIONS suffix whose name does not end like a
    map's (`_norm`, `_nm`, `_gloss`, ...) and whose path under `root` contains none of the strings in `exclude`."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if (path.suffix.lower() in COLOUR_EXTENSIONS and path.is_file() and not _MAP_NAME.search(path.stem)
                and not any(word in relative for word in exclude)):  # fmt: skip
            found.append(path)
    return found


class RealPhotos(_HalfCache):
    """Photos (or colour textures) without maps, as model-space tensors (9, H, W) for
    `training.capture_data.sample_view`: the photo, reduced to at most `max_side` per side and made tileable
    (`stablematerials.seamless.make_tileable`, as capture does at inference, so wrapped views show no seam), as
    basecolor; the other maps are placeholders (flat normal, height 0.5, roughness 0.5, metallic 0), never scored.
    Photos that cannot be read or are under 64 px are None."""

    def __init__(self, root: str | Path, exclude: tuple[str, ...] = (), max_side: int = 256) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"unlabeled.photos {str(root)!r} is not a folder")
        self.files = photo_files(root, exclude)
        if not self.files:
            raise ValueError(f"unlabeled.photos {str(root)!r} holds no colour images ({', '.join(COLOUR_EXTENSIONS)})")
        super().__init__(f"unlabeled.photos {str(root)!r}")
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> torch.Tensor | None:
        try:
            rgb = read_picture(self.files[index], "photo", max_side=self.max_side)
        except (OSError, ValueError):
            return None
        if min(rgb.shape[:2]) < 64:
            return None
        photo = make_tileable(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy()  # (h, w, 3), wraps
        flat = np.full(photo.shape[:2], 0.5, np.float32)
        normal = np.zeros((*photo.shape[:2], 3), np.float32)
        normal[..., 2] = 1.0
        return Material(photo, normal, flat, flat, np.zeros_like(flat), {"source": "photo"}).to_model_tensor()
