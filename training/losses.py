"""Loss terms: per-map reconstruction, KL, rendering, adversarial (hinge), diffusion targets and LCM consistency."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stablematerials.maps import MODEL_SLICES, UNUSED_SLICE
from stablematerials.material import unpack_model_channels
from stablematerials.render import render_plane

# Model-space channel groups (the map table, stablematerials.maps), and the unused channel kept at 0.
MAP_CHANNELS: dict[str, slice] = {**MODEL_SLICES, "unused": UNUSED_SLICE}


def map_l1(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean absolute error of each map group in model space: {map name: scalar}."""
    return {name: (pred[:, s] - target[:, s]).abs().mean() for name, s in MAP_CHANNELS.items()}


def lowpass_l1(pred: torch.Tensor, target: torch.Tensor, channels: slice, pool: int) -> torch.Tensor:
    """L1 between `channels` of two (B, C, H, W) tensors averaged over pool x pool cells: regional mean values."""
    pool = min(pool, pred.shape[-1], pred.shape[-2])
    return (F.avg_pool2d(pred[:, channels], pool) - F.avg_pool2d(target[:, channels], pool)).abs().mean()


def kl_per_element(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) averaged over latent elements (Kingma & Welling 2014)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def render_l1(pred: torch.Tensor, target: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
    """L1 between renders of two model-space materials (B, 9, H, W) under the same lights (B, L, 3)."""
    return (render_plane(unpack_model_channels(pred), lights) - render_plane(unpack_model_channels(target), lights)).abs().mean()


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss (Lim & Ye 2017; used by SAGAN and the LDM autoencoders)."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge loss: raise the discriminator's score of the fakes."""
    return -fake_logits.mean()


# ----------------------------------------------------------------------------------------------
# Diffusion
# ----------------------------------------------------------------------------------------------


def _alphas(scheduler, timesteps: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), shaped to broadcast against `like`."""
    ab = scheduler.alphas_cumprod.to(device=like.device, dtype=torch.float32)[timesteps.long()]
    shape = (-1,) + (1,) * (like.ndim - 1)
    return ab.sqrt().view(shape).to(like.dtype), (1.0 - ab).sqrt().view(shape).to(like.dtype)


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """What the UNet should output: the noise, the clean sample, or v = a * noise - s * x0 (Salimans & Ho 2022)."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return latents
    if prediction_type == "v_prediction":
        a, s = _alphas(scheduler, timesteps, latents)
        return a * noise - s * latents
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def predicted_x0(scheduler, model_output: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The clean sample implied by the UNet's output at x_t (DDPM, Ho et al. 2020, eq. 15; v: Salimans & Ho 2022)."""
    a, s = _alphas(scheduler, timesteps, noisy)
    if prediction_type == "epsilon":
        return (noisy - s * model_output) / a
    if prediction_type == "sample":
        return model_output
    if prediction_type == "v_prediction":
        return a * noisy - s * model_output
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def predicted_noise(scheduler, model_output: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The noise implied by the UNet's output at x_t."""
    a, s = _alphas(scheduler, timesteps, noisy)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return (noisy - a * model_output) / s
    if prediction_type == "v_prediction":
        return a * model_output + s * noisy
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def ddim_step(scheduler, x0: torch.Tensor, noise: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM update to t_next from a predicted clean sample and noise (Song et al. 2021, arXiv 2010.02502, eq. 12)."""
    a, s = _alphas(scheduler, t_next, x0)
    return a * x0 + s * noise


def min_snr_weights(
    scheduler, timesteps: torch.Tensor, gamma: float, prediction_type: str, plus_one: bool = False
) -> torch.Tensor:
    """Per-sample loss weights of Min-SNR-gamma (Hang et al. 2023, arXiv 2303.09556) for the given objective: the
    x0 error weighted by min(snr, gamma). `plus_one`: by min(snr + 1, gamma), which stays 1 at zero SNR."""
    ab = scheduler.alphas_cumprod.to(timesteps.device, torch.float32)[timesteps.long()]
    snr = ab / (1.0 - ab)
    clipped = (snr + 1.0 if plus_one else snr).clamp(max=gamma)
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "v_prediction":
        return clipped / (snr + 1.0)
    return clipped  # sample (x0) prediction


# ----------------------------------------------------------------------------------------------
# Latent consistency distillation (Luo et al. 2023, arXiv 2310.04378)
# ----------------------------------------------------------------------------------------------


def consistency_scalings(timesteps: torch.Tensor, timestep_scaling: float = 10.0, sigma_data: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """c_skip, c_out of the consistency parametrisation f(x, t) = c_skip x + c_out x0 (Song et al. 2023, LCM)."""
    t = timesteps.float() * timestep_scaling
    c_skip = sigma_data**2 / (t**2 + sigma_data**2)
    c_out = t / (t**2 + sigma_data**2).sqrt()
    return c_skip, c_out


def consistency_loss(
    pred: torch.Tensor, target: torch.Tensor, loss_type: str, huber_c: float, channel_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L2, or the pseudo-Huber loss sqrt(d^2 + c^2) - c (Song & Dhariwal 2023) used by LCM, of (B, C, h, w) latents;
    with `channel_weight` (C,) a weighted mean over channels (divided by the weights' mean, so all ones is the plain
    mean and the loss keeps its scale)."""
    d2 = (pred.float() - target.float()) ** 2
    if loss_type == "l2":
        per = d2
    elif loss_type == "huber":
        per = (d2 + huber_c**2).sqrt() - huber_c
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}")
    return channel_mean(per, channel_weight)


def channel_mean(
    per: torch.Tensor, channel_weight: torch.Tensor | None, dim: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Mean of (B, C, h, w) losses over `dim` (None: all); with `channel_weight` (C,) weighted over channels and
    divided by the weights' mean, so all ones is the plain mean and the loss keeps its scale."""
    if channel_weight is None:
        return per.mean() if dim is None else per.mean(dim=dim)
    w = channel_weight.to(per).view(1, -1, 1, 1)
    weighted = per * w
    return (weighted.mean() if dim is None else weighted.mean(dim=dim)) / w.mean()


def color_channel_weights(channels: int, color_weight: float) -> torch.Tensor:
    """(channels,) loss weights: 1 for the VAE's latents, `color_weight` for the last COLOR_CHANNELS (the colour
    latents of stablematerials.color_latents)."""
    from stablematerials.color_latents import COLOR_CHANNELS

    weights = torch.ones(channels)
    weights[-COLOR_CHANNELS:] = color_weight
    return weights
