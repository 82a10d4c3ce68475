"""Prompt encoders behind one interface: each prompt (text or image) becomes one embedding, (B, 1, D).

The published model feeds the projected CLIP text or image embedding to cross-attention as a single token.
Any transformers text model works the same way: CLIP-style models give `text_embeds`; others (the MiniLM
sentence encoder of the embedded default model) are mean-pooled over their tokens and L2-normalised, as
sentence-transformers does. Image encoders give `image_embeds` (CLIP vision with projection), `pooler_output`
(a pooled backbone such as ConvNext) or `logits` (a CNN whose head projects its pooled features to the prompt
width: the default model's ResNet, trained to land on the sentence embedding of what the picture shows). In a
sentence encoder's space every prompt is a unit vector, so image embeddings are normalised there too.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, str, os.PathLike]


MAX_IMAGE_SIDE = 1024  # encoders see 128-224 px; a larger picture is reduced on load (decode time, memory)
_ALPHA_BACKGROUND = (128, 128, 128)  # transparent parts of a picture are shown on neutral grey


def check_image_file(path: str | os.PathLike) -> None:
    """Raise ValueError unless `path` is an image file that can be read as an image prompt (only its header and
    structure are checked here; the pixels are decoded when it is used)."""
    with _open_image_file(path) as im:
        try:
            im.verify()
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"image prompt {str(path)!r} is not a readable image: {e}") from e


def load_image_prompt(image: ImageLike) -> Image.Image:
    """An image prompt as an RGB PIL image, at most MAX_IMAGE_SIDE on its longer side: from PIL, an (H, W, 3)
    array (uint8, uint16, or float in [0, 1]), a (3, H, W) tensor in [0, 1], or a file path.

    EXIF orientation is applied (phone photos), 16-bit pictures are scaled (not clipped) to 8 bits, transparency
    is composited on grey. Unreadable, truncated or absurdly large files are a ValueError naming the file."""
    if isinstance(image, Image.Image):
        return _as_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        with _open_image_file(image) as im:
            try:
                im.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # JPEG: decode at a reduced scale, much faster
                return _as_rgb(im)
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(f"image prompt {str(image)!r} is not a readable image: {e}") from e
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float()
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"an image tensor must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
        image = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        return _as_rgb(Image.fromarray(_array_to_uint8(image)))
    raise TypeError(f"cannot use an object of type {type(image).__name__} as an image prompt")


@contextlib.contextmanager
def _open_image_file(path: str | os.PathLike) -> Iterator[Image.Image]:
    """An image file opened by PIL (header read, pixels not decoded yet), or one clear ValueError when it is missing,
    not an image, or above PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`: PIL itself refuses only twice
    that, and between the two it warns and decodes)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image prompt {str(path)!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with one clear message
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ValueError(f"image prompt {str(path)!r} is too large to open safely: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"image prompt {str(path)!r} is not a readable image: {e}") from e
    with im:
        limit = Image.MAX_IMAGE_PIXELS
        if limit and im.width * im.height > limit:
            raise ValueError(
                f"image prompt {str(path)!r} is too large to open safely: {im.width}x{im.height} pixels, more than "
                f"{limit} (PIL's decompression-bomb limit)"
            )
        yield im


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array -> (H, W, 3) uint8; uint16 is scaled by 1/257."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"an image array must be (H, W, 3), got shape {arr.shape}")
    arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return np.round(arr / 257.0).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("an image array must be finite; it holds NaN or infinite values")
    return np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)


def _as_rgb(im: Image.Image) -> Image.Image:
    """Oriented, 8-bit RGB, transparency on grey, longer side at most MAX_IMAGE_SIDE."""
    if im.width == 0 or im.height == 0:
        raise ValueError(f"an image prompt must have pixels, got size {im.width}x{im.height}")
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit grey: scale to 8 bits, do not clip
        arr = np.asarray(im, dtype=np.float32)
        top = arr.max(initial=0.0)
        peak = 1.0 if im.mode == "F" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
        im = Image.fromarray(np.round(np.clip(arr / peak, 0.0, 1.0) * 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _ALPHA_BACKGROUND + (255,))
        im = Image.alpha_composite(background, rgba)
    im = im.convert("RGB")
    if max(im.size) > MAX_IMAGE_SIDE:
        im.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return im


def is_image_prompt(x: object) -> bool:
    """True for the objects an image prompt may be (a str is always a text prompt)."""
    return isinstance(x, (Image.Image, np.ndarray, torch.Tensor, os.PathLike))


@torch.no_grad()
def encode_text(text_encoder: torch.nn.Module, tokenizer, texts: list[str], device: torch.device) -> torch.Tensor:
    """Texts -> (B, D) embeddings (projected for CLIP, mean-pooled and normalised for sentence encoders)."""
    max_length = getattr(tokenizer, "model_max_length", 77)
    if max_length is None or max_length > 4096:  # tokenizers without a limit report a huge sentinel
        max_length = 512
    inputs = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids = inputs["input_ids"].to(device)
    attention_mask = inputs["attention_mask"].to(device)
    out = text_encoder(input_ids=input_ids, attention_mask=attention_mask)
    embeds = getattr(out, "text_embeds", None)
    if embeds is not None:
        return embeds
    hidden = out.last_hidden_state  # (B, T, D)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    return F.normalize(pooled, dim=-1)


def is_sentence_encoder(text_encoder: torch.nn.Module) -> bool:
    """True when text prompts become unit-norm mean-pooled sentence embeddings (MiniLM), False for CLIP-style
    towers with a projection head, whose `text_embeds` are used as they are (see `encode_text`)."""
    return not hasattr(text_encoder, "text_projection")


@torch.no_grad()
def encode_images(
    vision_encoder: torch.nn.Module, processor, images: list[Image.Image], device: torch.device, normalize: bool = False
) -> torch.Tensor:
    """Images -> (B, D) float32 embeddings: `image_embeds` of a CLIP-style tower, else the `pooler_output` of a
    pooled backbone ((B, D) or (B, D, 1, 1)), else the `logits` of a model whose head is the projection (the
    default model's ResNet); unit vectors when `normalize`."""
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    dtype = next(vision_encoder.parameters()).dtype
    out = vision_encoder(pixel_values=pixel_values.to(device=device, dtype=dtype))
    found = [getattr(out, k, None) for k in ("image_embeds", "pooler_output", "logits")]
    embeds = next((e for e in found if e is not None), None)
    if embeds is None:
        raise ValueError(
            f"{type(vision_encoder).__name__} gives no image_embeds, pooler_output or logits; use e.g. a "
            "CLIPVisionModelWithProjection or ResNetForImageClassification"
        )
    embeds = embeds.flatten(1).float()
    return F.normalize(embeds, dim=-1) if normalize else embeds


def embedding_dim(text_encoder: torch.nn.Module | None, vision_encoder: torch.nn.Module | None) -> int | None:
    """The size of the embedding the encoders produce (what the UNet's cross_attention_dim must be)."""
    for enc in (text_encoder, vision_encoder):
        if enc is None:
            continue
        cfg = enc.config
        width = getattr(cfg, "projection_dim", None) or getattr(cfg, "hidden_size", None)
        return int(width if width is not None else cfg.num_labels)  # the default model's ResNet: its head's outputs
    return None
