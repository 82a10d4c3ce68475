"""Guidance math, as pure functions: classifier-free guidance and the guidance-scale embedding of a latent-consistency
student. The pipeline samples with them and the training scripts train with them (without importing the pipeline)."""

from __future__ import annotations

import math

import torch

from .color_latents import COLOR_CHANNELS


def apply_guidance(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance of a UNet output (Ho & Salimans 2022, arXiv 2207.12598): u + scale * (c - u)."""
    return uncond_out + scale * (cond_out - uncond_out)


def guide_latents(
    cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float | torch.Tensor, color_scale_max: float | None
) -> torch.Tensor:
    """Classifier-free guidance of UNet outputs (B, C, h, w) whose last COLOR_CHANNELS channels are colour latents
    (`stablematerials.color_latents`), guided at most at `color_scale_max`; None: every channel at `scale`.

    Why: guidance extrapolates away from the unconditional prediction, whose colour is the training set's mean (warm
    greys and browns), so a strong scale pushes every colour away from it. Default model v3's teacher at 7.5 made
    grey concrete blue (0.16, 0.54, 0.82) and white marble cyan; unguided (1) its colours were washed out towards
    that mean (blue tiles (0.19, 0.32, 0.40)); at 2 on the colour channels (v3's setting) and 7.5 on the rest, grey
    concrete was (0.48, 0.52, 0.54), marble (0.78, 0.83, 0.83) and the tiles still blue, while the structure keeps the
    full scale. `scale` may be a tensor (B, 1, 1, 1) (distillation draws one per item).
    """
    out = apply_guidance(cond_out, uncond_out, scale)
    if color_scale_max is None:
        return out
    capped = scale.clamp(max=color_scale_max) if isinstance(scale, torch.Tensor) else min(scale, color_scale_max)
    k = COLOR_CHANNELS
    out[:, -k:] = apply_guidance(cond_out[:, -k:], uncond_out[:, -k:], capped)
    return out


def check_color_guidance(color_scale_max: float | None, color_latents: bool, name: str = "color_guidance_max") -> None:
    """A ValueError naming the value (as `name`) unless `color_scale_max` is None or a finite number >= 1 for a model
    with colour latents (below 1 the colour would be guided away from the prompt)."""
    if color_scale_max is None:
        return
    if isinstance(color_scale_max, bool) or not isinstance(color_scale_max, (int, float)) or not color_scale_max >= 1:
        raise ValueError(f"{name} must be a number >= 1 or None, got {color_scale_max!r}")
    if not math.isfinite(color_scale_max):
        raise ValueError(f"{name} must be finite, got {color_scale_max!r}")
    if not color_latents:
        raise ValueError(f"{name} ({color_scale_max}) needs a model with colour latents (color_latents)")


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
