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


def vae_scale_factor(vae_config) -> int:
    """How many pixels one latent cell spans per side: 2 per downsampling level of the VAE."""
    return 2 ** (len(vae_config.block_out_channels) - 1)


def model_latents(vae_config, z: torch.Tensor, color: torch.Tensor | None = None) -> torch.Tensor:
    """The diffusion model's latents: VAE latents (B, C, h, w) normalised, then the colour latents (B, 3, h, w) of
    `stablematerials.color_latents` when the model uses them."""
    latents = normalize_latents(vae_config, z)
    return latents if color is None else torch.cat([latents, color.to(latents.dtype)], dim=1)


def decode_model_latents(
    vae, latents: torch.Tensor, color_latents: bool, wrap: bool, color_smoothing: float | None = None
) -> torch.Tensor:
    """Model latents -> (B, 9, H, W) model-space maps: the VAE decodes its own channels; with `color_latents` the
    last three channels set the basecolor's low frequencies (`stablematerials.color_latents.apply_color`, wrapping
    around the edges when `wrap`), their chroma first blurred by `color_smoothing` cells if given (`smooth_chroma`).
    Convolution padding is the caller's (`stablematerials.tiling`)."""
    from .color_latents import apply_color, smooth_chroma

    channels = vae.config.latent_channels
    z = denormalize_latents(vae.config, latents[:, :channels].to(vae.dtype))
    decoded = vae.decode(z).sample
    if not color_latents:
        return decoded
    color = latents[:, channels:].float()
    if color_smoothing:
        color = smooth_chroma(color, color_smoothing, wrap)
    return apply_color(decoded, color, vae_scale_factor(vae.config), wrap)
