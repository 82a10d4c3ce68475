"""Caption anchors: pull a text prompt's embedding toward the training captions nearest to it.

A user's prompt ("glossy white bathroom wall tiles") lands in the sentence encoder's space between the captions the
UNet was trained on ("white ceramic tiles in a grid, glossy glaze"). The UNet follows such off-caption points less
well: the default model v3 made the asked family for 64 % of training-like captions but 51 % of prompts worded
unlike them (benchmarks/results/default_model_v3_diagnosis.md). A model may ship a bank of caption embeddings
(`caption_anchors/anchors.safetensors`, unit rows); each non-empty text prompt then moves `anchor_weight` of the way
toward the mean direction of its `anchor_neighbours` nearest anchors (`snap_to_anchors`), so it conditions like the
captions it means. Measured on the shipped v3 (weight 0.5, 8 neighbours, 4096 anchors): family right 51 -> 68 %,
colour words 49 -> 47 % (unchanged within noise; default_model_v3_diagnosis.md, section 5).

Image prompts land in the same space (the image encoder regresses caption embeddings) and can be pulled the same
way, by their own share `image_anchor_weight`: at 0.5, 95 held-out renders in views unlike training gave their
family 27 -> 39 % of the time and their colour within 0.1 19 -> 28 % (benchmarks/results/image_prompt.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .conditioning import mix_embeddings
from .io import atomic_write_bytes

ANCHOR_FOLDER = "caption_anchors"
ANCHOR_FILE = "anchors.safetensors"
DEFAULT_NEIGHBOURS = 8


def check_anchor_settings(weight: object, neighbours: object, name: str = "anchor_weight") -> None:
    """ValueError naming the bad setting: the weight (`name`) None or in [0, 1]; `anchor_neighbours` a positive int."""
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))
                               or not (math.isfinite(weight) and 0 <= weight <= 1)):  # fmt: skip
        raise ValueError(f"{name} must be None or a number in [0, 1], got {weight!r}")
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise ValueError(f"anchor_neighbours must be a positive integer, got {neighbours!r}")


def nearest_anchors(embeds: torch.Tensor, anchors: torch.Tensor, neighbours: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D) embeddings -> the bank as unit rows (N, D) and the indices (B, k) of each embedding's `neighbours`
    nearest rows of `anchors` (N, D) by cosine (k capped at N)."""
    bank = F.normalize(anchors.to(device=embeds.device, dtype=torch.float32), dim=-1)  # (N, D)
    unit = F.normalize(embeds.float(), dim=-1)  # (B, D)
    return bank, (unit @ bank.T).topk(min(neighbours, bank.shape[0]), dim=-1).indices  # (B, k)


def snap_to_anchors(embeds: torch.Tensor, anchors: torch.Tensor, neighbours: int, weight: float) -> torch.Tensor:
    """(B, D) embeddings -> (B, D): each moved `weight` of the way (along the great circle, `mix_embeddings`) toward
    the unit mean of its `neighbours` nearest rows of `anchors` (N, D) by cosine; its length is kept."""
    if weight == 0:
        return embeds
    bank, nearest = nearest_anchors(embeds, anchors, neighbours)
    target = F.normalize(bank[nearest].mean(dim=1), dim=-1) * embeds.float().norm(dim=-1, keepdim=True)  # (B, D)
    return mix_embeddings(embeds.float(), target, weight).to(embeds.dtype)


def anchors_path(model_folder: str | os.PathLike) -> Path:
    return Path(model_folder) / ANCHOR_FOLDER / ANCHOR_FILE


def load_anchors(model_folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None:
    """The model folder's anchor bank: (anchors float32 (N, D), their families (N,) int64 or None, their materials'
    model-space mean colours float32 (N, 3) or None), or None when it has no bank. The families' and colours' shapes
    are checked where every bank goes in, `StableMaterialsPipeline.set_caption_anchors`."""
    path = anchors_path(model_folder)
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    anchors = tensors.get("anchors")
    if anchors is None or anchors.ndim != 2 or anchors.shape[0] == 0:
        raise ValueError(f"{path} must hold one non-empty (N, D) tensor named 'anchors'")
    families, colors = tensors.get("families"), tensors.get("colors")
    return anchors.float(), None if families is None else families.long(), None if colors is None else colors.float()


def save_anchors(anchors: torch.Tensor, model_folder: str | os.PathLike, families: torch.Tensor | None = None,
                 colors: torch.Tensor | None = None) -> Path:  # fmt: skip
    """Write the bank atomically (unit rows, float16: half the bytes, cosines unchanged to 1e-3), with each anchor's
    family index and mean colour when given (`stablematerials.attributes`); return the path."""
    from safetensors.torch import save

    path = anchors_path(model_folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"anchors": F.normalize(anchors.detach().float().cpu(), dim=-1).to(torch.float16).contiguous()}
    if families is not None:
        tensors["families"] = families.detach().cpu().to(torch.int64).contiguous()
        tensors["colors"] = colors.detach().cpu().to(torch.float32).contiguous()
    atomic_write_bytes(path, save(tensors))
    return path
