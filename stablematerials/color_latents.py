"""Colour latents: the basecolor's regional mean colour carried beside the VAE latents, exactly.

Why (default model v3, training/README.md): the material autoencoder keeps detail but not colour. Its GroupNorm
layers normalise each image's features, which leaves the absolute colour of a region hard to carry; after 6000 steps
it decoded a flat blue as brown and a flat mid-grey as 0.87, and test materials came back up to 0.18 off in mean
colour (basecolor PSNR 25.8 dB). So the latents the diffusion model works in are the VAE's latents plus three
channels holding the basecolor averaged over each latent cell (f x f pixels, f the VAE's downsampling). Decoding
keeps the VAE's high frequencies and takes the low frequencies of the basecolor from those channels:

    basecolor = decoded - up(pool(decoded)) + up(colour)

where pool is the f x f average and up a bilinear upsampling (wrapping around the edges for tileable materials).
A model may also smooth the colour latents' chroma before decoding (`smooth_chroma`, `color_smoothing` in its
model_index.json): default model v3's teacher leaves hue noise between neighbouring cells (pastel speckle,
benchmarks/material_eval/speckle.py) that its training data does not have.
On the v3 VAE's test materials this raised the basecolor PSNR from 25.8 to 31.4 dB with no mean colour shift at all.
The colour channels are model-space basecolor ([-1, 1]) times COLOR_SCALE, which brings them near unit variance
like the normalised VAE latents (basecolor channels of the procedural set have a standard deviation of about 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .filters import gaussian_blur

COLOR_CHANNELS = 3
COLOR_SCALE = 2.0


def encode_color(basecolor: torch.Tensor, factor: int) -> torch.Tensor:
    """Model-space basecolor (B, 3, H, W) -> colour latents (B, 3, H/f, W/f): f x f means, times COLOR_SCALE."""
    if basecolor.shape[-2] % factor or basecolor.shape[-1] % factor:
        raise ValueError(f"a basecolor of {tuple(basecolor.shape[-2:])} px does not divide into {factor} px cells")
    return F.avg_pool2d(basecolor.float(), factor) * COLOR_SCALE


def upsample_color(cells: torch.Tensor, factor: int, wrap: bool) -> torch.Tensor:
    """(B, 3, h, w) cell means -> (B, 3, h f, w f): bilinear between cell centres, wrapping around the edges when
    `wrap` (tileable materials), else holding the border cells' values."""
    h, w = cells.shape[-2:]
    padded = F.pad(cells, (1, 1, 1, 1), mode="circular" if wrap else "replicate")
    up = F.interpolate(padded, scale_factor=factor, mode="bilinear", align_corners=False)
    return up[..., factor : factor + h * factor, factor : factor + w * factor]


def smooth_chroma(color: torch.Tensor, sigma: float, wrap: bool) -> torch.Tensor:
    """Colour latents (B, 3, h, w) with their chroma (each cell's difference from its grey, the mean of its three
    channels) blurred by `sigma` cells; the grey is kept, so mortar, grout and pores keep their contrast and each
    cell its lightness. On procedural materials' true colour latents sigma 1 costs 0.13 dB of basecolor PSNR (19
    families at 256 px, default model v3's VAE; bricks 0.5, rusty metal 0.7)."""
    grey = color.mean(dim=1, keepdim=True)
    return grey + gaussian_blur(color - grey, sigma, (-2, -1) if wrap else ())


def check_color_smoothing(sigma: float | None, color_latents: bool) -> None:
    """A ValueError naming the value unless `sigma` is None or a number in (0, 8] cells for a model with colour
    latents."""
    if sigma is None:
        return
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma <= 8:
        raise ValueError(f"color_smoothing must be None or a number of cells in (0, 8], got {sigma!r}")
    if not color_latents:
        raise ValueError(f"color_smoothing ({sigma}) needs a model with colour latents (color_latents)")


def apply_color(decoded: torch.Tensor, color: torch.Tensor, factor: int, wrap: bool) -> torch.Tensor:
    """Decoded model-space maps (B, 9, H, W) with the basecolor's low frequencies taken from colour latents
    (B, 3, H/f, W/f); the other maps are returned as decoded."""
    base = decoded[:, 0:3].float()
    low = upsample_color(F.avg_pool2d(base, factor), factor, wrap)
    wanted = upsample_color(color.float() / COLOR_SCALE, factor, wrap)
    out = decoded.clone()
    out[:, 0:3] = (base - low + wanted).clamp(-1.0, 1.0).to(decoded.dtype)
    return out
