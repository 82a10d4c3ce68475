"""How well a model's VAE keeps held-out procedural materials: encode (posterior mean), decode, compare.

The round trip follows the pipeline: the material packed to model space (Material.to_model_tensor), encoded with
circular padding (the materials tile), the posterior mean normalised to model latents (stablematerials.latents,
with the basecolor's colour latents beside them when the model has them: stablematerials.color_latents), then
decoded by `pipe.decode_latents` (denormalised, circular, and with the pipeline's windowed attention when the
size exceeds the model's training size, as `generate` decodes at that size).

Per material: basecolor PSNR (dB), the largest per-channel shift of the mean basecolor, the mean angle between
input and output normals (degrees), height / roughness / metallic mean absolute error, and how many metallic pixels
(>= 0.5) stay metallic. Targets from issue 12 are in TARGETS.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from stablematerials.color_latents import encode_color
from stablematerials.latents import model_latents
from stablematerials.material import Material
from stablematerials.procedural.dataset import dataset_material
from stablematerials.tiling import TilingState, tiling

from .classifier_data import FAMILY_NAMES, split_seeds

logger = logging.getLogger(__name__)

# Issue 12, "A VAE that keeps colour and detail" (measured on held-out materials at 256 px).
TARGETS = {"psnr": 30.0, "colour_shift": 0.02, "normal_deg": 4.0, "mae": 0.03}


@torch.no_grad()
def reconstruct(pipe, material: Material) -> Material:
    """Encode (posterior mean) and decode a tileable material with the pipeline's VAE, as the pipeline decodes."""
    x = material.to_model_tensor()[None].to(pipe.vae.device, pipe.vae.dtype)  # (1, 9, H, W) in [-1, 1]
    f = pipe.vae_scale_factor
    latent_hw = (x.shape[-2] // f, x.shape[-1] // f)
    sample = pipe.unet.config.sample_size
    window = sample if max(x.shape[-2:]) > sample * f else None  # the CLI's `patched` rule
    rolls = (torch.Generator().manual_seed(0),)
    with tiling(TilingState(circular=True, window=window, latent_hw=latent_hw, generators=rolls)):
        z = pipe.vae.encode(x).latent_dist.mean
    color = encode_color(x[:, 0:3], f) if pipe.config.color_latents else None
    decoded = pipe.decode_latents(model_latents(pipe.vae.config, z, color), tileable=True, window=window, roll_generators=rolls)
    return Material.from_model_tensor(decoded[0].float().cpu())


def reconstruction_errors(original: Material, rebuilt: Material) -> dict[str, float]:
    """The per-material figures (see the module docstring); metal_kept is NaN without metallic pixels."""
    mse = float(np.mean((original.basecolor - rebuilt.basecolor) ** 2))
    shift = np.abs(original.basecolor.reshape(-1, 3).mean(0) - rebuilt.basecolor.reshape(-1, 3).mean(0))
    cos = np.clip((original.normal * rebuilt.normal).sum(-1), -1.0, 1.0)
    metal = original.metallic >= 0.5
    return {
        "psnr": 10 * math.log10(1.0 / max(mse, 1e-12)),
        "colour_shift": float(shift.max()),
        "normal_deg": float(np.degrees(np.arccos(cos)).mean()),
        "height_mae": float(np.abs(original.height - rebuilt.height).mean()),
        "roughness_mae": float(np.abs(original.roughness - rebuilt.roughness).mean()),
        "metallic_mae": float(np.abs(original.metallic - rebuilt.metallic).mean()),
        "metal_pixels": int(metal.sum()),
        "metal_kept": float((rebuilt.metallic[metal] >= 0.5).mean()) if metal.any() else float("nan"),
    }


def test_materials(per_family: int, size: int) -> list[tuple[str, int, Material]]:
    """(family, seed, material) for the first `per_family` test-split seeds of every family."""
    return [(f, s, dataset_material(f, s, size)) for f in FAMILY_NAMES for s in split_seeds(f, "test", per_family)]


def evaluate_vae(pipe, sizes: tuple[int, ...], per_family: int) -> dict:
    """{size: {"materials": [per-material rows], "summary": {...}}}; also keeps the first material of every family
    and its reconstruction for the figure under "examples"."""
    out: dict = {}
    for size in sizes:
        rows, examples = [], {}
        for family, seed, material in test_materials(per_family, size):
            rebuilt = reconstruct(pipe, material)
            rows.append({"family": family, "seed": seed} | reconstruction_errors(material, rebuilt))
            examples.setdefault(family, (material, rebuilt))
        logger.info("VAE at %d px: %d materials", size, len(rows))
        out[size] = {"materials": rows, "summary": summarise(rows), "examples": examples}
    return out


def summarise(rows: list[dict]) -> dict[str, float]:
    """Means, worst cases and shares within the issue's targets."""
    col = lambda k: np.array([r[k] for r in rows], np.float64)  # noqa: E731
    metal_pixels = col("metal_pixels")
    kept = np.nansum(col("metal_kept") * metal_pixels) / max(metal_pixels.sum(), 1)
    maes = np.stack([col("height_mae"), col("roughness_mae"), col("metallic_mae")])
    return {
        "n": len(rows),
        "psnr_mean": float(col("psnr").mean()),
        "psnr_min": float(col("psnr").min()),
        "psnr_ok": float((col("psnr") >= TARGETS["psnr"]).mean()),
        "colour_shift_mean": float(col("colour_shift").mean()),
        "colour_shift_max": float(col("colour_shift").max()),
        "colour_shift_ok": float((col("colour_shift") <= TARGETS["colour_shift"]).mean()),
        "normal_deg_mean": float(col("normal_deg").mean()),
        "normal_deg_max": float(col("normal_deg").max()),
        "height_mae": float(maes[0].mean()),
        "roughness_mae": float(maes[1].mean()),
        "metallic_mae": float(maes[2].mean()),
        "mae_ok": float((maes.max(axis=0) <= TARGETS["mae"]).mean()),
        "metal_kept": float(kept),
    }
