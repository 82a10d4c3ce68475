"""Prompt encoders behind one interface: each prompt (text or image) becomes one embedding, (B, 1, D).

The published model feeds the projected CLIP text or image embedding to cross-attention as a single token.
Any transformers text model works the same way: CLIP-style models give `text_embeds`; others (the MiniLM
sentence encoder of the embedded default model) are mean-pooled over their tokens and L2-normalised, as
sentence-transformers does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, str, os.PathLike]


def load_image_prompt(image: ImageLike) -> Image.Image:
    """An image prompt as an RGB PIL image: from PIL, an (H, W, 3) array (uint8 or float in [0, 1]), a (3, H, W)
    tensor in [0, 1], or a file path."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image prompt {str(path)!r} is not a file")
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"image prompt {str(path)!r} is not a readable image: {e}") from e
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float()
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"an image tensor must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
        image = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
            raise ValueError(f"an image array must be (H, W, 3), got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]))
    raise TypeError(f"cannot use an object of type {type(image).__name__} as an image prompt")


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


@torch.no_grad()
def encode_images(vision_encoder: torch.nn.Module, processor, images: list[Image.Image], device: torch.device) -> torch.Tensor:
    """Images -> (B, D) projected image embeddings (CLIPVisionModelWithProjection)."""
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    dtype = next(vision_encoder.parameters()).dtype
    out = vision_encoder(pixel_values=pixel_values.to(device=device, dtype=dtype))
    embeds = getattr(out, "image_embeds", None)
    if embeds is None:
        raise ValueError(f"{type(vision_encoder).__name__} gives no image_embeds; use a CLIPVisionModelWithProjection")
    return embeds


def embedding_dim(text_encoder: torch.nn.Module | None, vision_encoder: torch.nn.Module | None) -> int | None:
    """The size of the embedding the encoders produce (what the UNet's cross_attention_dim must be)."""
    for enc in (text_encoder, vision_encoder):
        if enc is None:
            continue
        cfg = enc.config
        return int(getattr(cfg, "projection_dim", None) or cfg.hidden_size)
    return None
