"""Compatibility with the published StableMaterials checkpoint layout (configs and CLIP tokenizer files from
../shared/reference, without weights): a shrunk random-weight copy loads and generates, and the full-size configs
build with every component the pipeline needs."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, LCMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection

from conftest import PUBLISHED_LAYOUT
from stablematerials import StableMaterialsPipeline

pytestmark = pytest.mark.skipif(
    not PUBLISHED_LAYOUT.is_dir(), reason=f"published layout reference not found at {PUBLISHED_LAYOUT}"
)

SHRINK_UNET = dict(block_out_channels=[32, 32, 64, 64], norm_num_groups=8, attention_head_dim=4, cross_attention_dim=32)


def _config(name):
    return json.loads((PUBLISHED_LAYOUT / name / "config.json").read_text())


def _shrunk_unet(name):
    cfg = {k: v for k, v in _config(name).items() if not k.startswith("_")} | SHRINK_UNET
    if cfg.get("time_cond_proj_dim"):
        cfg["time_cond_proj_dim"] = 32
    return UNet2DConditionModel.from_config(cfg)


@pytest.fixture(scope="module")
def published_copy(tmp_path_factory):
    """A random-weight checkpoint with the published folder layout, model_index.json and component classes."""
    root = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    shutil.copy(PUBLISHED_LAYOUT / "model_index.json", root / "model_index.json")
    for folder in ("tokenizer", "processor", "scheduler"):
        shutil.copytree(PUBLISHED_LAYOUT / folder, root / folder)
    vae_cfg = {k: v for k, v in _config("vae").items() if not k.startswith("_")}
    vae_cfg |= dict(block_out_channels=[16, 16, 32, 32], norm_num_groups=8)
    AutoencoderKL.from_config(vae_cfg).save_pretrained(root / "vae")
    _shrunk_unet("unet").save_pretrained(root / "unet")
    _shrunk_unet("unet_lcm").save_pretrained(root / "unet_lcm")
    text = CLIPTextConfig(**(_config("text_encoder") | dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=32)))
    CLIPTextModelWithProjection(text).save_pretrained(root / "text_encoder")
    vision = CLIPVisionConfig(**(_config("vision_encoder") | dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=32, patch_size=32)))
    CLIPVisionModelWithProjection(vision).save_pretrained(root / "vision_encoder")
    # The published release ships a custom pipeline.py; loading must never run it.
    (root / "pipeline.py").write_text("raise RuntimeError('remote code must not run')\n")
    return root


def test_model_index_is_the_published_one(published_copy):
    index = json.loads((published_copy / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", "StableMaterialsPipeline"]


def test_loads_published_layout_and_generates(published_copy):
    pipe = StableMaterialsPipeline.from_pretrained(published_copy)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler) is DDIMScheduler and pipe.vae.config.latent_channels == 18
    assert pipe.vision_encoder is not None and pipe.vae_scale_factor == 8
    assert pipe.config.embedding_scale == 1.0  # the published model_index.json has none: CLIP embeddings as they are
    assert pipe.vae.config.latents_mean is None  # one global scaling factor, as published
    text = pipe("old rusty metal bars", height=64, width=64, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                output_type="material")  # fmt: skip
    m = text.images[0]
    assert m.size == (64, 64) and np.isfinite(m.basecolor).all()
    img = pipe(np.full((50, 50, 3), 200, np.uint8), height=64, width=64, num_inference_steps=2, tileable=True)
    assert img.images[0].metadata["prompt"] == "<image>"
    # The real CLIP tokenizer and the text tower give one projected embedding per prompt.
    embeds, negative = pipe.encode_prompt(["a", "rusty metal"], torch.device("cpu"), 1, True)
    assert embeds.shape == (2, 1, 32) and negative.shape == (2, 1, 32)


def test_default_negative_is_black_image_embedding(published_copy):
    from stablematerials.conditioning import encode_images, load_image_prompt

    pipe = StableMaterialsPipeline.from_pretrained(published_copy)
    _, negative = pipe.encode_prompt(["bricks"], torch.device("cpu"), 1, True)
    black = encode_images(pipe.vision_encoder, pipe.processor, [load_image_prompt(np.zeros((224, 224, 3), np.uint8))], torch.device("cpu"))
    assert torch.allclose(negative[0, 0], black[0])


def test_student_from_unet_lcm(published_copy):
    pipe = StableMaterialsPipeline.from_pretrained(published_copy, student=True)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.is_student and isinstance(pipe.scheduler, LCMScheduler)
    m = pipe("bricks", height=64, width=64, generator=torch.Generator().manual_seed(0)).images[0]
    assert m.metadata["num_inference_steps"] == 4


def _published_maps(decoded: torch.Tensor) -> dict[str, np.ndarray]:
    """The published pipeline's maps of one decoded (9, H, W) tensor, as 8-bit pixels, written from its description:
    maps = decoded / 2 + 1/2, each clamped to [0, 1]; the normal's Z rebuilt from the decoded X, Y as they are
    (Z = sqrt(1 - x^2 - y^2), and where x^2 + y^2 > 1: X, Y divided by their length, Z = 0), encoded n / 2 + 1/2;
    PIL images by truncation (torchvision's to_pil_image multiplies by 255 and casts to bytes)."""
    x = decoded.float() * 0.5 + 0.5
    xy = x[3:5] * 2 - 1
    sum_sq = (xy**2).sum(dim=0)
    outside = sum_sq > 1
    z = torch.where(outside, torch.zeros_like(sum_sq), torch.sqrt((1 - sum_sq).clamp_min(0)))
    xy = torch.where(outside, xy / sum_sq.sqrt().clamp_min(1e-12), xy)
    normal = torch.cat([xy, z[None]]) * 0.5 + 0.5
    maps = {"basecolor": x[0:3], "normal": normal, "height": x[5:6], "roughness": x[6:7], "metallic": x[7:8]}
    to8 = lambda t: (t.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).squeeze(-1).numpy()  # noqa: E731
    return {name: to8(t) for name, t in maps.items()}


@pytest.mark.parametrize("student", [False, True], ids=["teacher", "student"])
def test_pil_output_matches_the_published_maps(published_copy, student):
    """On identical weights, every map of the default output (PIL) is within 1/255 of the published pipeline's, and
    the normal follows the published rebuild: the old clamp of X, Y first would be off by far more here."""
    pipe = StableMaterialsPipeline.from_pretrained(published_copy, student=student)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt="bricks", height=64, width=64, num_inference_steps=2)
    latents = pipe(**kw, generator=torch.Generator().manual_seed(3), output_type="latent").images
    with torch.no_grad():  # the published decode: latents / scaling_factor through the VAE
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample[0]
    expected = _published_maps(decoded)
    material = pipe(**kw, generator=torch.Generator().manual_seed(3)).images[0]
    assert sorted(material.as_dict()) == sorted(expected)
    for name, image in material.as_dict().items():
        got = np.asarray(image).astype(int)
        assert got.shape == expected[name].shape, name
        assert np.abs(got - expected[name]).max() <= 1, name  # rounding here, truncation there
    # The decoded normals leave [-1, 1]: clamping X and Y first turns them, as the project did before.
    xy = decoded[3:5]
    assert xy.abs().max() > 1.2
    clamped = _published_maps(torch.cat([decoded[:3], xy.clamp(-1, 1), decoded[5:]]))["normal"].astype(int)
    assert np.abs(clamped - expected["normal"]).max() > 8


def test_save_pretrained_round_trip(published_copy, tmp_path):
    pipe = StableMaterialsPipeline.from_pretrained(published_copy)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "saved")
    assert not list((tmp_path / "saved").rglob("*.bin"))  # safetensors only
    again = StableMaterialsPipeline.from_pretrained(tmp_path / "saved")
    again.set_progress_bar_config(disable=True)
    kw = dict(prompt="bricks", height=64, width=64, num_inference_steps=2, output_type="np")
    a = pipe(**kw, generator=torch.Generator().manual_seed(1)).images
    b = again(**kw, generator=torch.Generator().manual_seed(1)).images
    assert np.array_equal(a, b)


def test_refuses_pickle_weights_unless_allowed(published_copy, tmp_path):
    root = tmp_path / "pickled"
    shutil.copytree(published_copy, root)
    vae_dir = root / "vae"
    state = AutoencoderKL.from_pretrained(vae_dir).state_dict()
    for f in vae_dir.glob("*.safetensors"):
        f.unlink()
    torch.save(state, vae_dir / "diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match="only pickle weights"):
        StableMaterialsPipeline.from_pretrained(root)
    pipe = StableMaterialsPipeline.from_pretrained(root, allow_pickle=True)
    assert pipe.vae.config.latent_channels == 18


def test_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        StableMaterialsPipeline.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="no model_index.json"):
        StableMaterialsPipeline.from_pretrained(tmp_path)
    (tmp_path / "model_index.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        StableMaterialsPipeline.from_pretrained(tmp_path)


def test_full_size_configs_build_on_meta_device():
    """The published full-size configs build every component the pipeline needs, and their sizes agree."""
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(_config("vae"))
        unet = UNet2DConditionModel.from_config(_config("unet"))
        student = UNet2DConditionModel.from_config(_config("unet_lcm"))
        text = CLIPTextModelWithProjection(CLIPTextConfig(**_config("text_encoder")))
        vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**_config("vision_encoder")))
    assert vae.config.in_channels == vae.config.out_channels == 9
    assert vae.config.latent_channels == unet.config.in_channels == unet.config.out_channels == 18
    assert unet.config.cross_attention_dim == text.config.projection_dim == vision.config.projection_dim == 768
    assert student.config.time_cond_proj_dim == 256 and unet.config.time_cond_proj_dim is None
    n_unet = sum(p.numel() for p in unet.parameters())
    assert 800e6 < n_unet < 900e6  # the SD-1.x-sized UNet
    scheduler = DDIMScheduler.from_pretrained(PUBLISHED_LAYOUT / "scheduler")
    assert scheduler.config.prediction_type == "epsilon"

