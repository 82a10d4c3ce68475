"""The map between VAE latents and the latents the diffusion model works in.

Two conventions, read from the VAE's config (saved beside its weights):
* per channel (SDXL / Playground v2.5 configs): model = (z - latents_mean) * scaling_factor / latents_std;
* global (Stable Diffusion, SD3): model = (z - shift_factor) * scaling_factor.
Per-channel statistics matter for material latents: measured on this project's first VAE, channel means ranged
from -2.1 to +1.5 with standard deviations from 0.66 to 2.34, so one global scale left offsets of over one unit
that the noise schedule treats as signal.
"""

from __future__ import annotations

import torch


def _per_channel(config, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is None or std is None:
        return None
    shape = (1, -1, 1, 1)
    return (
        torch.as_tensor(mean, dtype=like.dtype, device=like.device).view(shape),
        torch.as_tensor(std, dtype=like.dtype, device=like.device).view(shape),
    )


def normalize_latents(vae_config, z: torch.Tensor) -> torch.Tensor:
    """VAE latents (B, C, h, w) -> model latents, with the VAE config's normalisation."""
    scaling = vae_config.scaling_factor
    stats = _per_channel(vae_config, z)
    if stats is not None:
        return (z - stats[0]) * scaling / stats[1]
    return (z - (getattr(vae_config, "shift_factor", None) or 0.0)) * scaling


def denormalize_latents(vae_config, latents: torch.Tensor) -> torch.Tensor:
    """Model latents (B, C, h, w) -> VAE latents, the inverse of `normalize_latents`."""
    scaling = vae_config.scaling_factor
    stats = _per_channel(vae_config, latents)
    if stats is not None:
        return latents * stats[1] / scaling + stats[0]
    return latents / scaling + (getattr(vae_config, "shift_factor", None) or 0.0)
