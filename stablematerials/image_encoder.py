"""The image-prompt encoder of this project's models: a small ConvNext whose pooled features are the prompt embedding.

A picture of a material becomes one vector in the space of the text encoder's sentence embeddings (MiniLM-L6,
384-d, unit norm), so an image prompt conditions the UNet as the caption of what it shows would. The encoder is a
plain `transformers.ConvNextModel` (Liu et al. 2022, "A ConvNet for the 2020s", arXiv 2201.03545) with its last
stage as wide as the text embedding: its `pooler_output` (the layer-normed spatial mean of the last stage) is the
embedding, normalised to unit length by `stablematerials.conditioning.encode_images`. A `CLIPImageProcessor`
resizes the shorter side to the input size, centre-crops and normalises. Both load with `from_pretrained` as the
pipeline's `vision_encoder` and `processor`; no code of this project is needed at load time.

Why a CNN: material pictures are textures, whose identity is in local statistics spread over the image; a
convolutional backbone averaged over space is shift invariant by construction, trains from scratch on a few
thousand pictures in minutes on a CPU, and encodes a 128 px image in about 10 ms.
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
VISION_ENTRY = ["transformers", "ConvNextModel"]
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
    hidden_sizes: Sequence[int] = (32, 64, 128),
    depths: Sequence[int] = (2, 2, 3, 1),
    image_size: int = 128,
    seed: int | None = None,
):
    """A fresh ConvNext with stages `hidden_sizes` + (embed_dim,) and its processor. Defaults: the default model's
    encoder (1.95 M parameters: stages 32/64/128/384 at 1/4 ... 1/32 of 128 px, the widest stage only one block)."""
    from transformers import ConvNextConfig, ConvNextModel

    widths = [*hidden_sizes, embed_dim]
    if len(widths) != len(depths):
        raise ValueError(f"ConvNext needs one depth per stage: {len(widths)} widths {widths}, depths {list(depths)}")
    if seed is not None:
        torch.manual_seed(seed)
    config = ConvNextConfig(
        num_channels=3, num_stages=len(widths), hidden_sizes=widths, depths=list(depths), image_size=image_size
    )
    return ConvNextModel(config).eval(), image_processor(image_size)


def add_image_encoder(model: str | os.PathLike, encoder: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
    """Put the image encoder saved in `encoder` (`vision_encoder/` and `processor/` subfolders) into the pipeline
    folder `model`: the two folders are copied (weights cast to `dtype` when given) and model_index.json names them.

    Each folder appears whole (written beside, then swapped in) and model_index.json is rewritten atomically last,
    so an interrupted call leaves a model that loads as before or complete.
    """
    from transformers import AutoConfig, CLIPImageProcessor, ConvNextModel

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
    if type(config).__name__ != "ConvNextConfig":
        raise ValueError(f"{encoder / 'vision_encoder'} holds a {type(config).__name__}, expected a ConvNextConfig")
    width = config.hidden_sizes[-1]
    for unet in ("unet", "unet_lcm"):
        if (model / unet / "config.json").is_file():
            unet_width = json.loads((model / unet / "config.json").read_text()).get("cross_attention_dim")
            if unet_width != width:
                raise ValueError(f"the encoder gives {width}-d embeddings but {model / unet} takes {unet_width}-d ones")

    vision = ConvNextModel.from_pretrained(encoder / "vision_encoder", torch_dtype=torch.float32)
    processor = CLIPImageProcessor.from_pretrained(encoder / "processor")
    with AtomicFolder(model / "vision_encoder", overwrite=True) as tmp:
        (vision.to(dtype) if dtype is not None else vision).save_pretrained(tmp)
    with AtomicFolder(model / "processor", overwrite=True) as tmp:
        processor.save_pretrained(tmp)
    index = json.loads(index_path.read_text())
    index["vision_encoder"], index["processor"] = VISION_ENTRY, PROCESSOR_ENTRY
    atomic_write_text(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")
