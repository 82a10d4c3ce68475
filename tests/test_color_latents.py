"""Colour latents (stablematerials/color_latents.py): the basecolor's regional colour carried exactly beside the VAE's
latents, and the pipeline that decodes with them."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from stablematerials.color_latents import (
    COLOR_SCALE,
    apply_color,
    check_color_smoothing,
    encode_color,
    smooth_chroma,
    upsample_color,
)
from stablematerials.guidance import apply_guidance, check_color_guidance, guide_latents
from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.tiny import tiny_pipeline, tiny_unet


def material(seed: int = 0, h: int = 32, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 9, h, w, generator=g) * 2 - 1


def test_decoding_the_original_gives_it_back_exactly() -> None:
    x = material()
    assert torch.allclose(apply_color(x, encode_color(x[:, 0:3], 8), 8, wrap=True), x, atol=1e-6)
    assert torch.allclose(apply_color(x, encode_color(x[:, 0:3], 8), 8, wrap=False), x, atol=1e-6)


def test_a_colour_shifted_decode_gets_the_colour_back_and_keeps_its_detail() -> None:
    x = material() * 0.3
    shifted = x.clone()
    shifted[:, 0:3] += torch.tensor([0.4, -0.2, -0.3]).view(1, 3, 1, 1)  # a decoder that turns everything orange
    fixed = apply_color(shifted, encode_color(x[:, 0:3], 8), 8, wrap=True)
    assert (shifted[:, 0:3].mean((2, 3)) - x[:, 0:3].mean((2, 3))).abs().max() > 0.2
    assert (fixed[:, 0:3] - x[:, 0:3]).abs().max() < 1e-5  # a uniform shift is pure low frequency
    assert torch.equal(fixed[:, 3:], shifted[:, 3:])  # the other maps stay as decoded


def test_wrapped_upsampling_commutes_with_whole_cell_shifts_and_the_plain_one_does_not_wrap() -> None:
    cells = torch.rand(1, 3, 4, 6)
    up = upsample_color(cells, 8, wrap=True)
    rolled = upsample_color(torch.roll(cells, (1, 2), (-2, -1)), 8, wrap=True)
    assert torch.allclose(torch.roll(up, (8, 16), (-2, -1)), rolled, atol=1e-6)  # no seam at the wrap
    plain = upsample_color(cells, 8, wrap=False)
    assert torch.allclose(plain[..., :4, :4], cells[..., :1, :1].expand(1, 3, 4, 4), atol=1e-6)  # borders hold their cell


def test_encode_color_is_the_cell_mean_times_the_scale_and_refuses_ragged_sizes() -> None:
    x = material()
    assert torch.allclose(encode_color(x[:, 0:3], 8), F.avg_pool2d(x[:, 0:3], 8) * COLOR_SCALE)
    with pytest.raises(ValueError, match="does not divide into 8 px cells"):
        encode_color(x[:, 0:3, :30], 8)


def test_the_pipeline_decodes_colour_latents_and_saves_the_setting(tmp_path) -> None:
    pipe = tiny_pipeline(0, vision=False, color_latents=True)
    pipe.set_progress_bar_config(disable=True)
    f = pipe.vae_scale_factor
    latents = torch.zeros(1, 7, 8, 8)
    latents[:, 4:] = torch.tensor([0.8, -0.6, -0.6]).view(1, 3, 1, 1) * COLOR_SCALE  # model-space red
    maps = pipe.decode_latents(latents, tileable=True)
    assert maps.shape == (1, 9, 8 * f, 8 * f)
    mean = maps[0, 0:3].mean((1, 2))
    assert torch.allclose(mean, torch.tensor([0.8, -0.6, -0.6]), atol=0.05)  # the colour channels set the colour
    out = pipe("red bricks", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="material")
    pipe.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["color_latents"] is True
    again = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    assert again.config.color_latents
    out2 = again("red bricks", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="material")
    assert torch.equal(torch.from_numpy(out.images[0].basecolor), torch.from_numpy(out2.images[0].basecolor))


def test_a_unet_that_does_not_match_the_latent_channels_is_refused() -> None:
    pipe = tiny_pipeline(0, vision=False)
    with pytest.raises(ValueError, match="UNet takes 4 latent channels, but the VAE's 4 \\+ 3 colour make 7"):
        StableMaterialsPipeline(vae=pipe.vae, unet=pipe.unet, scheduler=pipe.scheduler, text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer, color_latents=True)  # fmt: skip
    with pytest.raises(ValueError, match="UNet takes 7 latent channels, but the VAE's 4 make 4"):
        StableMaterialsPipeline(vae=pipe.vae, unet=tiny_unet(0, in_channels=7), scheduler=pipe.scheduler,
                                text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)  # fmt: skip


def test_guide_latents_caps_only_the_colour_channels() -> None:
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 7, 4, 4, generator=g), torch.randn(2, 7, 4, 4, generator=g)
    out = guide_latents(cond, uncond, 7.5, 2.5)
    assert torch.allclose(out[:, :4], apply_guidance(cond[:, :4], uncond[:, :4], 7.5))  # structure: full scale
    assert torch.allclose(out[:, 4:], apply_guidance(cond[:, 4:], uncond[:, 4:], 2.5))  # colour: capped
    assert torch.allclose(guide_latents(cond, uncond, 7.5, None), apply_guidance(cond, uncond, 7.5))
    per_item = guide_latents(cond, uncond, torch.tensor([1.5, 6.0]).view(2, 1, 1, 1), 2.5)  # distillation's draws
    assert torch.allclose(per_item[0, 4:], apply_guidance(cond[0, 4:], uncond[0, 4:], 1.5))  # under the cap: as is
    assert torch.allclose(per_item[1, 4:], apply_guidance(cond[1, 4:], uncond[1, 4:], 2.5))
    assert torch.allclose(per_item[1, :4], apply_guidance(cond[1, :4], uncond[1, :4], 6.0))


def test_the_colour_guidance_cap_is_saved_used_and_checked(tmp_path) -> None:
    pipe = tiny_pipeline(0, vision=False, color_latents=True)
    capped = StableMaterialsPipeline(**pipe.components, embedding_scale=pipe.config.embedding_scale, color_latents=True,
                                     color_guidance_max=1.0)  # fmt: skip
    for p in (pipe, capped):
        p.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=3, guidance_scale=6.0, output_type="material")
    free = pipe("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0]
    held = capped("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0]
    assert not np.array_equal(free.basecolor, held.basecolor)  # the cap reaches the denoising loop
    capped.save_pretrained(tmp_path / "model")
    again = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    assert again.config.color_guidance_max == 1.0
    same = again("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0]
    assert np.array_equal(same.basecolor, held.basecolor)
    for bad, message in ((0.5, "must be a number >= 1"), ("2", "must be a number >= 1"), (float("inf"), "finite")):
        with pytest.raises(ValueError, match=message):
            check_color_guidance(bad, True)
    with pytest.raises(ValueError, match="needs a model with colour latents"):
        check_color_guidance(2.5, False)


def test_smoothing_the_chroma_keeps_each_cells_grey_and_takes_out_hue_noise() -> None:
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(1, 1, 16, 16, generator=g).repeat(1, 3, 1, 1)  # lightness detail: mortar, pores
    hue = 0.3 * torch.randn(1, 3, 16, 16, generator=g)
    noisy = grey + hue - hue.mean(dim=1, keepdim=True)  # the same greys, plus hue noise between cells
    smooth = smooth_chroma(noisy, 1.0, wrap=True)
    assert torch.allclose(smooth.mean(dim=1), noisy.mean(dim=1), atol=1e-6)  # every cell keeps its grey
    assert torch.allclose(smooth_chroma(grey, 1.0, wrap=True), grey, atol=1e-6)  # a grey material is untouched
    chroma = lambda x: (x - x.mean(dim=1, keepdim=True)).std()  # noqa: E731
    assert chroma(smooth) < 0.3 * chroma(noisy)
    shifted = smooth_chroma(torch.roll(noisy, (3, 5), dims=(2, 3)), 1.0, wrap=True)
    assert torch.allclose(shifted, torch.roll(smooth, (3, 5), dims=(2, 3)), atol=1e-6)  # wraps: tileable stays so
    assert not torch.allclose(smooth_chroma(noisy, 1.0, wrap=False), smooth, atol=1e-3)  # held borders differ


def test_the_colour_smoothing_is_saved_used_and_checked(tmp_path) -> None:
    pipe = tiny_pipeline(0, vision=False, color_latents=True)
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=2, guidance_scale=6.0, output_type="material")
    plain = pipe("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0]
    pipe.register_to_config(color_smoothing=1.5)
    smooth = pipe("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0]
    assert not np.array_equal(plain.basecolor, smooth.basecolor)  # the setting reaches the decoder
    assert np.array_equal(plain.normal, smooth.normal)  # only the basecolor's colour changes
    pipe.save_pretrained(tmp_path / "model")
    again = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    assert again.config.color_smoothing == 1.5
    assert np.array_equal(again("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0].basecolor,
                          smooth.basecolor)  # fmt: skip
    off = StableMaterialsPipeline.from_pretrained(tmp_path / "model", color_smoothing=None)
    assert np.array_equal(off("red bricks", generator=torch.Generator().manual_seed(0), **call).images[0].basecolor,
                          plain.basecolor)  # fmt: skip
    for bad in (0, -1.0, 9.0, True, "1"):
        with pytest.raises(ValueError, match="color_smoothing"):
            check_color_smoothing(bad, True)
    with pytest.raises(ValueError, match="needs a model with colour latents"):
        check_color_smoothing(1.0, False)
