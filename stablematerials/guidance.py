"""Guidance math, as pure functions: classifier-free guidance and the guidance-scale embedding of a latent-consistency
student. The pipeline samples with them and the training scripts train with them (without importing the pipeline)."""

from __future__ import annotations

import math

import torch


def apply_guidance(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance of a UNet output (Ho & Salimans 2022, arXiv 2207.12598): u + scale * (c - u)."""
    return uncond_out + scale * (cond_out - uncond_out)


def guidance_scale_embedding(w: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the guidance weight (LCM, Luo et al. 2023, arXiv 2310.04378): (B,) -> (B, D)."""
    w = w.float() * 1000.0
    half = embedding_dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=w.device) / (half - 1))
    args = w[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
