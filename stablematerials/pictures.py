"""Reading the pictures users give: image prompts and photos to capture, from a file, PIL, numpy or torch.

One reader for both, so both take the same inputs the same way: EXIF orientation applied (phone photos store their
turn there), 16-bit pictures scaled rather than clipped, transparency shown on neutral grey, and every unreadable,
truncated or absurdly large file answered with one ValueError that names it. `what` words those messages
("image prompt", "photo").
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

PictureLike = Image.Image | np.ndarray | torch.Tensor | str | os.PathLike

IMAGE_FILE_TYPES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".exr")
ALPHA_BACKGROUND = (128, 128, 128)  # transparent parts of a picture are shown on neutral grey
_DEEP_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (not its sub-folders; hidden files skipped), sorted by name; ValueError when it
    has none."""
    folder = Path(folder)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_FILE_TYPES and not p.name.startswith("."))
    if not found:
        raise ValueError(f"folder {str(folder)!r} has no image files ({', '.join(IMAGE_FILE_TYPES)})")
    return found


@contextlib.contextmanager
def open_image_file(path: str | os.PathLike, what: str = "image") -> Iterator[Image.Image]:
    """An image file opened by PIL (header read, pixels not decoded yet), or one clear ValueError when it is missing,
    not an image, or above PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`: PIL itself refuses only twice
    that, and between the two it warns and decodes)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with one clear message
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ValueError(f"{what} {str(path)!r} is too large to open safely: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{what} {str(path)!r} is not a readable image: {e}") from e
    with im:
        limit = Image.MAX_IMAGE_PIXELS
        if limit and im.width * im.height > limit:
            raise ValueError(
                f"{what} {str(path)!r} is too large to open safely: {im.width}x{im.height} pixels, more than "
                f"{limit} (PIL's decompression-bomb limit)"
            )
        yield im


def check_image_file(path: str | os.PathLike, what: str = "image") -> None:
    """Raise ValueError unless `path` is an image file that can be read (only its header and structure are checked
    here; the pixels are decoded when it is used)."""
    with open_image_file(path, what) as im:
        try:
            im.verify()
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{what} {str(path)!r} is not a readable image: {e}") from e


def read_picture(picture: PictureLike, what: str = "image", max_side: int | None = None) -> np.ndarray:
    """A picture as an (H, W, 3) float32 array of sRGB values in [0, 1] (TypeError for an object of another type).

    Takes a PIL image, an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array (uint8, uint16, bool, or float in [0, 1]),
    a (1, H, W) or (3, H, W) tensor in [0, 1], or a file path. `max_side`: a larger picture is reduced (keeping its
    aspect) so that its longer side is at most this; a JPEG file is then decoded at a reduced scale, much faster.
    """
    if isinstance(picture, (str, os.PathLike)):
        with open_image_file(picture, what) as im:
            try:
                if max_side is not None:
                    im.draft("RGB", (max_side, max_side))
                return _from_pil(im, what, max_side)
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(f"{what} {str(picture)!r} is not a readable image: {e}") from e
    if isinstance(picture, Image.Image):
        return _from_pil(picture, what, max_side)
    if isinstance(picture, torch.Tensor):
        t = picture.detach().cpu()
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"a {what} tensor must be (3, H, W) in [0, 1], got shape {tuple(t.shape)}")
        picture = t.float().expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(picture, np.ndarray):
        return _shrink(_from_array(picture, what), max_side)
    raise TypeError(f"cannot use an object of type {type(picture).__name__} as a {what}")


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) values in [0, 1] -> uint8, rounded."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _from_array(arr: np.ndarray, what: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array -> (H, W, 3) float32 in [0, 1]; alpha is dropped."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"a {what} array must be (H, W, 3), got shape {arr.shape}")
    arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr[..., :3]
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"a {what} array must be finite; it holds NaN or infinite values")
    else:
        raise ValueError(f"a {what} array must be uint8, uint16, bool or float, got {arr.dtype}")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0))


def _from_pil(im: Image.Image, what: str, max_side: int | None) -> np.ndarray:
    """Oriented, transparency on grey, reduced to `max_side`; 16- and 32-bit grey scaled to [0, 1], not clipped."""
    if im.width == 0 or im.height == 0:
        raise ValueError(f"a {what} must have pixels, got size {im.width}x{im.height}")
    im = ImageOps.exif_transpose(im)
    if im.mode in _DEEP_GREY_MODES:
        arr = np.asarray(im, dtype=np.float32)
        top = arr.max(initial=0.0)
        peak = 1.0 if im.mode == "F" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
        return _shrink(np.repeat(np.clip(arr / peak, 0.0, 1.0)[..., None], 3, axis=-1), max_side)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,)), rgba)
    im = im.convert("RGB")
    if max_side is not None and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.float32) / 255.0


def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """`rgb` reduced (Lanczos, in float) so that its longer side is at most `max_side`."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    channels = [np.asarray(Image.fromarray(rgb[..., c]).resize(size, Image.Resampling.LANCZOS)) for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)
