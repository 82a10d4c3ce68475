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

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import pictures

ImageLike = pictures.PictureLike


MAX_IMAGE_SIDE = 1024  # encoders see 128-224 px; a larger picture is reduced on load (decode time, memory)


def check_image_file(path: str | os.PathLike) -> None:
    """Raise ValueError unless `path` is an image file that can be read as an image prompt (only its header and
    structure are checked here; the pixels are decoded when it is used)."""
    pictures.check_image_file(path, "image prompt")


def load_image_prompt(image: ImageLike) -> Image.Image:
    """An image prompt as an RGB PIL image, at most MAX_IMAGE_SIDE on its longer side: from PIL, an (H, W, 3)
    array (uint8, uint16, or float in [0, 1]), a (3, H, W) tensor in [0, 1], or a file path
    (`stablematerials.pictures.read_picture`: EXIF turn applied, 16-bit scaled, transparency on grey)."""
    return Image.fromarray(pictures.to_uint8(pictures.read_picture(image, "image prompt", MAX_IMAGE_SIDE)))


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


def mix_embeddings(text: torch.Tensor, image: torch.Tensor, image_weight: float) -> torch.Tensor:
    """"This picture, but <text>": (B, D) text and image embeddings -> (B, D) a point `image_weight` of the way from
    the text's direction to the picture's along the great circle through them (spherical linear interpolation,
    Shoemake 1985), its length interpolated linearly. In a sentence encoder's space every prompt is a unit vector
    (times the pipeline's scale), so a mix stays where prompts live, as a plain average (shorter) would not.
    0 is the text alone, 1 the picture alone."""
    t_len, i_len = text.norm(dim=-1, keepdim=True), image.norm(dim=-1, keepdim=True)
    t, i = text / t_len.clamp_min(1e-12), image / i_len.clamp_min(1e-12)
    omega = torch.arccos((t * i).sum(-1, keepdim=True).clamp(-1.0, 1.0))  # (B, 1) angle between them
    sin = torch.sin(omega)
    w = float(image_weight)
    near = (sin < 1e-4) & (omega < 1.0)  # (almost) the same direction: the linear mix is exact and avoids 0 / 0
    a = torch.where(near, torch.full_like(omega, 1.0 - w), torch.sin((1.0 - w) * omega) / sin.clamp_min(1e-12))
    b = torch.where(near, torch.full_like(omega, w), torch.sin(w * omega) / sin.clamp_min(1e-12))
    direction = a * t + b * i
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return direction * ((1.0 - w) * t_len + w * i_len)
