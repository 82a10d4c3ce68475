"""The image-prompt encoder of this project's models: a small ResNet whose projected features are the prompt embedding.

A picture of a material becomes one vector in the space of the text encoder's sentence embeddings (MiniLM-L6,
384-d, unit norm), so an image prompt conditions the UNet as the caption of what it shows would. The encoder is a
plain `transformers.ResNetForImageClassification` (He et al. 2016, basic blocks) whose "classifier" has as many
outputs as the text embedding is wide: a linear projection of the spatially averaged features. Its `logits` are
the embedding, normalised to unit length by `stablematerials.conditioning.encode_images`. A `CLIPImageProcessor`
resizes the shorter side to the input size, centre-crops and normalises. Both load with `from_pretrained` as the
pipeline's `vision_encoder` and `processor`; no code of this project is needed at load time.

Why a BatchNorm CNN with a projection: material pictures are textures, whose identity is in local statistics
spread over the image; a convolutional body averaged over space is shift invariant by construction. Trained from
scratch on this CPU, BatchNorm CNNs learned the families faster than ConvNext, ConvNextV2 or LeViT bodies of the
same size (after 150 steps, family cross-entropy 1.85-1.95 against 2.48-2.53 for the others; see
`benchmarks/results/image_prompt.md`). A ResNet's pooled features follow a ReLU, so they cannot point everywhere
on the sphere: hence the projection head.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

# CLIP's normalisation constants: any fixed affine map works for a model trained from scratch; these are the ones
# every CLIP-style processor config already carries.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
VISION_ENTRY = ["transformers", "ResNetForImageClassification"]
PROCESSOR_ENTRY = ["transformers", "CLIPImageProcessor"]


def image_processor(image_size: int):
    """Shorter side to `image_size` (bicubic), centre crop to a square, CLIP normalisation."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
    )


def build_image_encoder(
    embed_dim: int,
    hidden_sizes: Sequence[int] = (32, 64, 128, 256),
    depths: Sequence[int] = (1, 1, 2, 1),
    image_size: int = 128,
    seed: int | None = None,
):
    """A fresh ResNet (basic blocks, stages `hidden_sizes` at 1/4 ... 1/32 scale after a 7x7 stride-2 stem and a
    max pool) with a linear projection to `embed_dim`, and its processor. Defaults: the default model's encoder
    (1.62 M parameters, 3.3 MB in float16)."""
    from transformers import ResNetConfig, ResNetForImageClassification

    if len(hidden_sizes) != len(depths):
        raise ValueError(f"one depth per stage: widths {list(hidden_sizes)}, depths {list(depths)}")
    if seed is not None:
        torch.manual_seed(seed)
    config = ResNetConfig(
        num_channels=3, embedding_size=hidden_sizes[0], hidden_sizes=list(hidden_sizes), depths=list(depths),
        layer_type="basic", downsample_in_first_stage=False, num_labels=embed_dim,
    )  # fmt: skip
    return ResNetForImageClassification(config).eval(), image_processor(image_size)


def load_image_encoder(folder: str | os.PathLike, dtype: torch.dtype | None = None):
    """The encoder saved in `folder` (its `vision_encoder/` and `processor/` subfolders: a pipeline folder or the
    image-encoder training's output) as (model, processor); one clear ValueError when it holds none."""
    from transformers import CLIPImageProcessor, ResNetForImageClassification

    folder = Path(folder)
    if not (folder / "vision_encoder" / "config.json").is_file() or not (folder / "processor").is_dir():
        raise ValueError(f"{str(folder)!r} holds no image encoder (vision_encoder/ and processor/)")
    model = ResNetForImageClassification.from_pretrained(folder / "vision_encoder", torch_dtype=dtype)
    return model.eval().requires_grad_(False), CLIPImageProcessor.from_pretrained(folder / "processor")


def embedding_width(config) -> int:
    """The width of the embedding an encoder config produces (the projection's outputs)."""
    return int(config.num_labels)


def add_image_encoder(model: str | os.PathLike, encoder: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
    """Put the image encoder saved in `encoder` (`vision_encoder/` and `processor/` subfolders) into the pipeline
    folder `model`: the two folders are copied (weights cast to `dtype` when given) and model_index.json names them.

    Each folder appears whole (written beside, then swapped in) and model_index.json is rewritten atomically last,
    so an interrupted call leaves a model that loads as before or complete.
    """
    from transformers import AutoConfig, CLIPImageProcessor, ResNetForImageClassification

    from .io import AtomicFolder, atomic_write_text

    model, encoder = Path(model), Path(encoder)
    index_path = model / "model_index.json"
    if not index_path.is_file():
        raise ValueError(f"{model} is not a pipeline folder: it has no model_index.json")
    text_class = (json.loads(index_path.read_text()).get("text_encoder") or [None, ""])[1] or ""
    if text_class.endswith("WithProjection"):
        raise ValueError(f"{model} prompts with {text_class} (CLIP space); this encoder learns a sentence encoder's space")
    for sub in ("vision_encoder", "processor"):
        if not (encoder / sub).is_dir():
            raise ValueError(f"{encoder} has no {sub}/ folder (train one with training/train_image_encoder.py)")
    config = AutoConfig.from_pretrained(encoder / "vision_encoder")
    if type(config).__name__ != "ResNetConfig":
        raise ValueError(f"{encoder / 'vision_encoder'} holds a {type(config).__name__}, expected a ResNetConfig")
    width = embedding_width(config)
    for unet in ("unet", "unet_lcm"):
        if (model / unet / "config.json").is_file():
            unet_width = json.loads((model / unet / "config.json").read_text()).get("cross_attention_dim")
            if unet_width != width:
                raise ValueError(f"the encoder gives {width}-d embeddings but {model / unet} takes {unet_width}-d ones")

    vision = ResNetForImageClassification.from_pretrained(encoder / "vision_encoder", torch_dtype=torch.float32)
    processor = CLIPImageProcessor.from_pretrained(encoder / "processor")
    with AtomicFolder(model / "vision_encoder", overwrite=True) as tmp:
        (vision.to(dtype) if dtype is not None else vision).save_pretrained(tmp)
    with AtomicFolder(model / "processor", overwrite=True) as tmp:
        processor.save_pretrained(tmp)
    index = json.loads(index_path.read_text())
    index["vision_encoder"], index["processor"] = VISION_ENTRY, PROCESSOR_ENTRY
    atomic_write_text(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")
