"""Latent normalisation conventions read from a VAE config: per channel (SDXL) and global (SD, SD3)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from stablematerials.latents import denormalize_latents, normalize_latents


def test_per_channel_normalisation_centres_each_channel_and_inverts() -> None:
    g = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.5, 3.0, 1.0])
    z = torch.randn(4, 3, 16, 16, generator=g) * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    config = SimpleNamespace(scaling_factor=1.0, latents_mean=mean.tolist(), latents_std=std.tolist())
    model = normalize_latents(config, z)
    assert model.mean(dim=(0, 2, 3)).abs().max() < 0.1 and (model.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1
    torch.testing.assert_close(denormalize_latents(config, model), z)


def test_global_scaling_and_shift_match_the_sd_conventions() -> None:
    z = torch.randn(2, 4, 8, 8)
    sd = SimpleNamespace(scaling_factor=0.18215, latents_mean=None, latents_std=None)
    torch.testing.assert_close(normalize_latents(sd, z), z * 0.18215)
    sd3 = SimpleNamespace(scaling_factor=1.5305, shift_factor=0.0609)
    torch.testing.assert_close(normalize_latents(sd3, z), (z - 0.0609) * 1.5305)
    torch.testing.assert_close(denormalize_latents(sd3, normalize_latents(sd3, z)), z)


def test_training_records_either_convention_in_the_vae_config() -> None:
    from stablematerials.tiny import tiny_vae
    from training.train_vae import set_latent_normalization

    mean, std = torch.tensor([1.0, -2.0, 0.0, 0.5]), torch.tensor([1.0, 2.0, 0.5, 1.5])
    z = torch.randn(64, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * std.view(1, 4, 1, 1) + mean.view(1, 4, 1, 1)
    vae = tiny_vae(0)
    set_latent_normalization(vae, mean, std, "global")
    assert vae.config.latents_mean is None
    assert abs(normalize_latents(vae.config, z).std().item() - 1.0) < 0.05  # one scale: unit overall spread
    set_latent_normalization(vae, mean, std, "per_channel")
    assert vae.config.scaling_factor == 1.0 and vae.config.latents_std == std.tolist()
    assert (normalize_latents(vae.config, z).std(dim=(0, 2, 3)) - 1).abs().max() < 0.05
