"""`StableMaterialsPipeline`: text or image prompt -> tileable PBR `Material`s with latent diffusion."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, LCMScheduler, UNet2DConditionModel
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from .anchors import DEFAULT_NEIGHBOURS, check_anchor_settings, load_anchors, save_anchors, snap_to_anchors
from .attributes import COLOR_ENTRIES, attribute_input_width, check_attribute_families, item_seeds, pick_attributes
from .color_latents import COLOR_CHANNELS, check_color_smoothing
from .components import load_component
from .conditioning import (
    ImageLike,
    encode_images,
    encode_text,
    is_image_prompt,
    is_sentence_encoder,
    load_image_prompt,
    mix_embeddings,
)
from .defaults import DEFAULT_GUIDANCE, DEFAULT_IMAGE_WEIGHT, check_teacher_steps, default_steps_for, native_size
from .guidance import check_color_guidance, guidance_scale_embedding, guide_latents
from .latents import decode_model_latents, vae_scale_factor
from .lora_student import is_lora_student, load_lora_student
from .outputs import MAP_OUTPUT_TYPES, package_maps
from .picture_color import check_image_color_fit, picture_basecolors
from .tiling import TilingState, enable_feature_rolling, tiling
from .values import parse_float

logger = logging.getLogger(__name__)

PromptInput = Union[str, ImageLike, list]
OUTPUT_TYPES = (*MAP_OUTPUT_TYPES, "latent")
STUDENT_SUBFOLDER = "unet_lcm"
# Far beyond any useful guidance (3 to 15); a student embeds 1000 (w - 1), which overflows float32 near 3e35.
MAX_GUIDANCE_SCALE = 1000.0


def max_inference_steps(scheduler) -> int:
    """The most denoising steps `scheduler` can take: every timestep must lie inside its training schedule.

    DDIM with `steps_offset` 1 (the published configs) reaches timestep 1000 of a 1000-step schedule at 1000 steps,
    so it stops at 999; an LCM scheduler stops at its `original_inference_steps` (50)."""
    train_steps = int(scheduler.config.num_train_timesteps)
    upper = train_steps
    if isinstance(scheduler, LCMScheduler):
        upper = min(upper, int(scheduler.config.get("original_inference_steps") or upper))
    for n in range(upper, 0, -1):
        try:
            scheduler.set_timesteps(n, device="cpu")
        except ValueError:
            continue
        timesteps = scheduler.timesteps
        if len(timesteps) == n and int(timesteps.min()) >= 0 and int(timesteps.max()) < train_steps:
            return n
    return 1


@dataclass
class StableMaterialsPipelineOutput(BaseOutput):
    """`images`: what `output_type` asks for (`stablematerials.outputs`: `StableMaterialsMaterial`s with PIL maps,
    the published default; `Material`s; one (B, H, W, 9) array or (B, 9, H, W) tensor), or latents ("latent")."""

    images: Any


class StableMaterialsPipeline(DiffusionPipeline):
    """Latent diffusion for PBR materials (StableMaterials, Vecchio 2024, arXiv 2406.09293).

    Components: `vae` (AutoencoderKL, 9 channels in and out), `unet` (UNet2DConditionModel conditioned on a single
    embedding token), `scheduler`, `text_encoder` + `tokenizer`, and optionally `vision_encoder` + `processor` for
    image prompts: CLIP vision with projection (published model) or a CNN with a projection head (a ResNet, this
    project's models, whose image embeddings are unit vectors like the sentence embeddings of their text prompts). A UNet with `time_cond_proj_dim` is a latent-consistency
    student: the guidance scale is embedded and classifier-free guidance is off. `embedding_scale` (saved in
    model_index.json) multiplies prompt embeddings before the UNet: 1 for the published model (CLIP projections),
    sqrt(D) for this project's models, whose unit-norm sentence embeddings it brings to unit variance per entry.
    `color_latents` (saved in model_index.json; default model v3 on): the UNet's latents end with three channels
    holding the basecolor's mean per latent cell, which set the decoded basecolor's low frequencies
    (`stablematerials.color_latents`). `color_guidance_max` (saved in model_index.json; needs `color_latents`): a
    teacher guides those colour channels at most at this scale (`stablematerials.guidance.guide_latents`); a
    student distilled with it has learned the same. `color_smoothing` (saved in model_index.json; needs
    `color_latents`): the colour latents' chroma is blurred by this many cells before decoding
    (`stablematerials.color_latents.smooth_chroma`), taking out the hue noise between cells a teacher leaves.
    `prefer_teacher` and `teacher_steps` (saved in model_index.json): a model whose guided teacher is its best
    default although it ships a student (`load_pipeline(student=None)` then loads the teacher), and how many steps
    its teacher needs by default (None: the published 50).
    `anchor_weight`, `anchor_neighbours`, `image_anchor_weight` (saved in model_index.json; need a caption-anchor bank,
    `set_caption_anchors`): how far non-empty text prompts, and image prompts, move toward the mean of their nearest
    training captions (`stablematerials.anchors`); None or 0: not at all.
    `attribute_families` (saved in model_index.json): for a UNet that also takes attributes (a projection class
    embedding over these families' one-hot and a mean colour, `stablematerials.attributes`), the families in order;
    each item takes the attributes of one of its prompt's nearest caption anchors (`prepare_attributes`).
    `image_color_fit` (saved in model_index.json): a (10, 3) map from a picture's colour statistics to its
    material's mean basecolor (`stablematerials.picture_color`); with it, an image prompt's colour attribute is
    the picture's estimated colour instead of its nearest anchor's.
    `prompt_embeds` given to `__call__` are used as they are (already scaled).
    """

    model_cpu_offload_seq = "text_encoder->vision_encoder->unet->vae"
    _optional_components = ["vision_encoder", "processor"]

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: UNet2DConditionModel,
        scheduler,
        text_encoder: torch.nn.Module,
        tokenizer,
        vision_encoder: torch.nn.Module | None = None,
        processor=None,
        embedding_scale: float = 1.0,
        color_latents: bool = False,
        color_guidance_max: float | None = None,
        prefer_teacher: bool = False,
        teacher_steps: int | None = None,
        anchor_weight: float | None = None,
        anchor_neighbours: int = DEFAULT_NEIGHBOURS,
        image_anchor_weight: float | None = None,
        color_smoothing: float | None = None,
        attribute_families: list[str] | None = None,
        image_color_fit: list[list[float]] | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(embedding_scale, (int, float)) and math.isfinite(embedding_scale) and embedding_scale > 0):
            raise ValueError(f"embedding_scale must be a positive number, got {embedding_scale!r}")
        want = vae.config.latent_channels + (COLOR_CHANNELS if color_latents else 0)
        if unet.config.in_channels != want:
            colour = f" + {COLOR_CHANNELS} colour" if color_latents else ""
            raise ValueError(
                f"the UNet takes {unet.config.in_channels} latent channels, but the VAE's {vae.config.latent_channels}"
                f"{colour} make {want}"
            )
        check_color_guidance(color_guidance_max, color_latents)
        check_color_smoothing(color_smoothing, color_latents)
        check_teacher_steps(teacher_steps)
        check_anchor_settings(anchor_weight, anchor_neighbours)
        check_anchor_settings(image_anchor_weight, anchor_neighbours, name="image_anchor_weight")
        check_attribute_families(attribute_families, attribute_input_width(unet))
        check_image_color_fit(image_color_fit)
        self.register_to_config(embedding_scale=float(embedding_scale), color_latents=bool(color_latents),
                                color_guidance_max=None if color_guidance_max is None else float(color_guidance_max),
                                prefer_teacher=bool(prefer_teacher), teacher_steps=teacher_steps,
                                anchor_weight=None if anchor_weight is None else float(anchor_weight),
                                anchor_neighbours=int(anchor_neighbours),
                                image_anchor_weight=None if image_anchor_weight is None else float(image_anchor_weight),
                                color_smoothing=None if color_smoothing is None else float(color_smoothing),
                                attribute_families=None if attribute_families is None else list(attribute_families),
                                image_color_fit=None if image_color_fit is None
                                else [list(map(float, row)) for row in image_color_fit])  # fmt: skip
        self.caption_anchors: torch.Tensor | None = None  # (N, D) training-caption embeddings: `set_caption_anchors`
        self.anchor_attributes: tuple[torch.Tensor, torch.Tensor] | None = None  # their families (N,), colours (N, 3)
        self.register_modules(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            vision_encoder=vision_encoder,
            processor=processor,
        )
        self.vae_scale_factor = vae_scale_factor(self.vae.config)
        enable_feature_rolling(self.unet)
        enable_feature_rolling(self.vae)

    # ------------------------------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        student: bool = False,
        torch_dtype: torch.dtype | None = None,
        allow_pickle: bool = False,
        local_files_only: bool | None = None,
        **components: Any,
    ) -> "StableMaterialsPipeline":
        """Load a pipeline folder: the published StableMaterials layout as it is, or one saved by `save_pretrained`.

        Each component is built from its own folder with the class `model_index.json` names; no code from the
        folder is run (a `pipeline.py` beside the weights is ignored). `student=True` takes the UNet from the
        `unet_lcm` folder and uses `LCMScheduler`. Weights load from safetensors only unless `allow_pickle=True`.
        A path that is not a local folder is a hub id and is downloaded (unless `local_files_only`).
        Keyword arguments named like components replace them (`unet=my_unet`).
        """
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            if local_files_only or os.environ.get("HF_HUB_OFFLINE") == "1" or "/" not in str(pretrained_model_name_or_path):
                raise ValueError(f"model {str(pretrained_model_name_or_path)!r} is not a folder (and hub access is off)")
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(pretrained_model_name_or_path)))
        index_path = folder / "model_index.json"
        if not index_path.is_file():
            raise ValueError(f"{folder} is not a pipeline folder: it has no model_index.json")
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{index_path} is not valid JSON: {e}") from e

        unknown = set(components) - set(inspect.signature(cls.__init__).parameters)
        if unknown:
            raise TypeError(f"unexpected keyword arguments for from_pretrained: {sorted(unknown)}")
        # saved in model_index.json, not components
        settings = {"embedding_scale": 1.0, "color_latents": False, "color_guidance_max": None, "prefer_teacher": False,
                    "teacher_steps": None, "anchor_weight": None, "anchor_neighbours": DEFAULT_NEIGHBOURS,
                    "image_anchor_weight": None, "color_smoothing": None, "attribute_families": None,
                    "image_color_fit": None}  # fmt: skip
        loaded: dict[str, Any] = {k: components.pop(k, index.get(k, default)) for k, default in settings.items()}
        for name in inspect.signature(cls.__init__).parameters:
            if name == "self" or name in settings:
                continue
            if name in components:
                loaded[name] = components[name]
                continue
            subfolder = STUDENT_SUBFOLDER if (name == "unet" and student) else name
            entry = index.get(name)
            if name == "unet" and student:
                entry = entry or ["diffusers", "UNet2DConditionModel"]
            if not entry or entry[0] is None or entry[1] is None:
                loaded[name] = None
                continue
            if name == "unet" and student and is_lora_student(folder / subfolder):  # built on the teacher's unet/
                teacher = load_component(entry[0], entry[1], folder / "unet", torch_dtype, allow_pickle)
                loaded[name] = load_lora_student(folder / subfolder, teacher)
                continue
            loaded[name] = load_component(entry[0], entry[1], folder / subfolder, torch_dtype, allow_pickle)
        if student:
            loaded["scheduler"] = LCMScheduler.from_config(loaded["scheduler"].config)
        missing = [n for n in ("vae", "unet", "scheduler", "text_encoder", "tokenizer") if loaded.get(n) is None]
        if missing:
            raise ValueError(f"{folder} lacks required components: {', '.join(missing)}")
        pipe = cls(**loaded)
        bank = load_anchors(folder)
        if bank is not None:
            pipe.set_caption_anchors(*bank)
        pipe.register_to_config(_name_or_path=str(pretrained_model_name_or_path))
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """diffusers' `save_pretrained`, plus the caption anchors (`caption_anchors/anchors.safetensors`) if any."""
        super().save_pretrained(save_directory, **kwargs)
        if self.caption_anchors is not None:
            save_anchors(self.caption_anchors, save_directory, *(self.anchor_attributes or ()))

    def set_caption_anchors(self, anchors: torch.Tensor | None, families: torch.Tensor | None = None,
                            colors: torch.Tensor | None = None) -> None:  # fmt: skip
        """Use (N, D) training-caption embeddings as anchors for text prompts (`stablematerials.anchors`), or None;
        with their families (N,) (indices into `attribute_families`) and model-space mean colours (N, 3), they also
        give the attributes of a UNet that takes them (`stablematerials.attributes`)."""
        self.anchor_attributes = None
        if anchors is not None:
            width = self.unet.config.cross_attention_dim
            if anchors.ndim != 2 or anchors.shape[0] == 0 or anchors.shape[1] != width:
                raise ValueError(f"caption anchors must be (N, {width}) for this UNet, got {tuple(anchors.shape)}")
            anchors = anchors.detach().float().cpu()
            if (families is None) != (colors is None):
                raise ValueError("caption anchors need both their families and their colours, or neither")
            if families is not None:
                n = len(self.config.get("attribute_families") or ())
                if families.shape != (anchors.shape[0],) or colors.shape != (anchors.shape[0], 3):
                    raise ValueError(f"anchor families and colours must be ({anchors.shape[0]},) and ({anchors.shape[0]}, 3), "
                                     f"got {tuple(families.shape)} and {tuple(colors.shape)}")  # fmt: skip
                if n == 0 or int(families.min()) < 0 or int(families.max()) >= n:
                    raise ValueError(f"anchor families must index the model's {n} attribute_families")
                self.anchor_attributes = (families.detach().long().cpu(), colors.detach().float().cpu())
        self.caption_anchors = anchors

    def enable_xformers_memory_efficient_attention(self, attention_op: Callable | None = None) -> None:
        """Use xformers attention (CUDA only; `pip install stablematerials[cuda]`), keeping features rolling."""
        super().enable_xformers_memory_efficient_attention(attention_op)
        enable_feature_rolling(self.unet)
        enable_feature_rolling(self.vae)

    # ------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------
    @property
    def is_student(self) -> bool:
        """True when the UNet embeds the guidance scale (a latent-consistency student)."""
        return getattr(self.unet.config, "time_cond_proj_dim", None) is not None

    @property
    def default_num_inference_steps(self) -> int:
        """4 for a student; the model's own `teacher_steps` for its teacher, else the published 50."""
        return default_steps_for(self.is_student, self.config.get("teacher_steps"))

    @property
    def native_size(self) -> int:
        """The output size (pixels) the model was trained at, and the default size of `__call__`."""
        return native_size(self.unet.config, self.vae.config)

    @property
    def _latent_sample_size(self) -> int:
        """The UNet's training size in latent pixels: the attention window of patched output."""
        sample = self.unet.config.sample_size
        return sample[0] if isinstance(sample, (list, tuple)) else sample

    def _warn_if_wrap_is_inexact(self, latent_hw: tuple[int, ...], height: int, width: int) -> None:
        if any(s % 2 ** (len(self.unet.config.block_out_channels) - 1) for s in latent_hw):
            logger.warning(
                "tileable output at %dx%d: the latent size %s is not divisible by the UNet's downsampling, so the "
                "deepest features cannot wrap exactly", width, height, latent_hw,
            )  # fmt: skip

    def _call_scheduler(self):
        """A private scheduler instance for one call (a student samples with LCMScheduler)."""
        cls = LCMScheduler if (self.is_student and not isinstance(self.scheduler, LCMScheduler)) else type(self.scheduler)
        return cls.from_config(self.scheduler.config)

    @property
    def max_inference_steps(self) -> int:
        """The most denoising steps this model's scheduler can take (see `max_inference_steps`)."""
        return max_inference_steps(self._call_scheduler())

    def check_steps(self, steps: int, label: str = "num_inference_steps") -> None:
        """ValueError naming `label` unless `steps` is a whole number this model's scheduler can take."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"{label} must be a positive integer, got {steps!r}")
        limit = self.max_inference_steps
        if steps > limit:
            scheduler = self._call_scheduler()
            raise ValueError(
                f"{label} must be from 1 to {limit} for this model ({type(scheduler).__name__} over "
                f"{scheduler.config.num_train_timesteps} training timesteps), got {steps}"
            )

    # ------------------------------------------------------------------------------------------
    # Steps of __call__
    # ------------------------------------------------------------------------------------------
    def check_inputs(
        self,
        prompt: PromptInput | None,
        image: ImageLike | list | None,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        num_images_per_prompt: int,
        output_type: str,
        tileable_start: float,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        image_weight: float | None = None,
    ) -> None:
        if prompt is None and image is None and prompt_embeds is None:
            raise ValueError("give a prompt, an image or prompt_embeds")
        if prompt is not None and image is not None:
            self.check_mix(prompt, image, image_weight)
        elif image_weight is not None:
            raise ValueError("image_weight mixes a text prompt with an image; give both prompt (text) and image")
        if prompt_embeds is not None and (prompt is not None or image is not None):
            raise ValueError("give either prompt_embeds or a prompt/image, not both")
        if prompt_embeds is not None and (prompt_embeds.ndim != 3 or prompt_embeds.shape[1] != 1):
            raise ValueError(f"prompt_embeds must have shape (B, 1, D), got {tuple(prompt_embeds.shape)}")
        if negative_prompt_embeds is not None and prompt_embeds is not None:
            if negative_prompt_embeds.shape != prompt_embeds.shape:
                raise ValueError(
                    f"negative_prompt_embeds has shape {tuple(negative_prompt_embeds.shape)}, "
                    f"prompt_embeds {tuple(prompt_embeds.shape)}"
                )
        for item in prompt if isinstance(prompt, list) else [prompt]:
            if item is None and prompt is not None:
                raise ValueError("prompt list contains None")
            if isinstance(item, str) and not item.strip():
                raise ValueError("prompt is empty; give some text or an image")
        if isinstance(prompt, list) and not prompt:
            raise ValueError("prompt is an empty list")
        f = self.vae_scale_factor
        for label, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value % 8 or value % f:
                raise ValueError(f"{label} must be a positive multiple of {max(8, f)}, got {value!r}")
        self.check_steps(num_inference_steps)
        if not isinstance(guidance_scale, (int, float)) or not math.isfinite(guidance_scale) or guidance_scale < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")
        if guidance_scale > MAX_GUIDANCE_SCALE:
            raise ValueError(f"guidance_scale must be at most {MAX_GUIDANCE_SCALE:g}, got {guidance_scale!r}")
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be a positive integer, got {num_images_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        if not 0.0 <= tileable_start <= 1.0:
            raise ValueError(f"tileable_start must be in [0, 1], got {tileable_start!r}")

    @staticmethod
    def check_mix(prompt: PromptInput, image: ImageLike | list, image_weight: float) -> None:
        """Text and image together ("this picture, but blue"): texts only in `prompt`, as many as the images or one
        of either, and `image_weight` in [0, 1]."""
        texts = prompt if isinstance(prompt, (list, tuple)) else [prompt]
        images = image if isinstance(image, (list, tuple)) else [image]
        if not all(isinstance(t, str) for t in texts):
            raise ValueError(
                "with an image, prompt must be text (the two are mixed); a list passed as prompt alone may mix text "
                "and images"
            )
        if len(texts) != len(images) and 1 not in (len(texts), len(images)):
            raise ValueError(
                f"got {len(texts)} text prompts and {len(images)} images; give as many of each, or one of either"
            )
        parse_float("image_weight", image_weight, 0.0, 1.0, strict=True)

    def _prompt_list(self, prompt: PromptInput | None, image: ImageLike | list | None) -> list:
        """Normalise prompt/image arguments to one list whose items are str (text) or PIL images."""
        items = prompt if prompt is not None else image
        items = list(items) if isinstance(items, (list, tuple)) else [items]
        out = []
        for item in items:
            if isinstance(item, str) and prompt is not None:
                out.append(item)
            elif isinstance(item, str) or is_image_prompt(item):
                out.append(load_image_prompt(item))
            else:
                raise TypeError(f"a prompt must be text or an image, got {type(item).__name__}")
        return out

    def _encode_items(self, items: list, device: torch.device) -> torch.Tensor:
        """Mixed list of str / PIL -> (B, D), keeping order; texts and images are each encoded in one batch."""
        texts = [(i, x) for i, x in enumerate(items) if isinstance(x, str)]
        images = [(i, x) for i, x in enumerate(items) if not isinstance(x, str)]
        parts: dict[int, torch.Tensor] = {}
        if texts:
            emb = self._anchored(encode_text(self.text_encoder, self.tokenizer, [t for _, t in texts], device),
                                 [t for _, t in texts])  # fmt: skip
            parts.update({i: e for (i, _), e in zip(texts, emb)})
        if images:
            if self.vision_encoder is None or self.processor is None:
                raise ValueError("this model has no vision encoder, so it takes text prompts only")
            emb = encode_images(
                self.vision_encoder, self.processor, [im for _, im in images], device,
                normalize=is_sentence_encoder(self.text_encoder),
            )  # fmt: skip
            width = self.unet.config.cross_attention_dim
            if emb.shape[-1] != width:
                raise ValueError(
                    f"the vision encoder gives {emb.shape[-1]}-d image embeddings but the UNet takes {width}-d ones"
                )
            emb = self._anchor(emb, self.config.get("image_anchor_weight"))
            parts.update({i: e for (i, _), e in zip(images, emb)})
        return torch.stack([parts[i] for i in range(len(items))]) * self.config.embedding_scale

    def _anchored(self, embeds: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """(B, D) text embeddings, the non-empty ones moved toward their caption anchors by `anchor_weight`; the
        empty text (the unconditional input guidance pushes away from) is kept."""
        keep = torch.tensor([not t.strip() for t in texts], device=embeds.device)[:, None]
        return torch.where(keep, embeds, self._anchor(embeds, self.config.get("anchor_weight")))

    def _anchor(self, embeds: torch.Tensor, weight: float | None) -> torch.Tensor:
        """(B, D) embeddings moved `weight` of the way toward their caption anchors (`snap_to_anchors`); unchanged
        when the model has no anchors or the weight is None or 0."""
        if self.caption_anchors is None or not weight:
            return embeds
        return snap_to_anchors(embeds, self.caption_anchors, self.config.get("anchor_neighbours"), weight)

    @torch.no_grad()
    def encode_prompt(
        self,
        items: list,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        negative_prompt: PromptInput | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompts -> (B * n, 1, D) embeddings, and the negative ones when guidance is on.

        The default negative is what the UNet saw as its unconditional input: the embedding of a black image for the
        published model (CLIP text and vision towers), the empty text for models with a sentence encoder.
        """
        embeds = self._encode_items(items, device)  # (B, D)
        return self._with_negatives(embeds, device, num_images_per_prompt, do_classifier_free_guidance, negative_prompt)

    def _with_negatives(
        self, embeds: torch.Tensor, device: torch.device, num_images_per_prompt: int, do_classifier_free_guidance: bool,
        negative_prompt: PromptInput | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """(B, D) prompt embeddings -> (B * n, 1, D), and the negative ones when guidance is on (`encode_prompt`)."""
        count = embeds.shape[0]
        negative = None
        if do_classifier_free_guidance:
            if negative_prompt is None:
                published_style = self.vision_encoder is not None and not is_sentence_encoder(self.text_encoder)
                if published_style:
                    neg_items = [load_image_prompt(np.zeros((224, 224, 3), np.uint8))]
                else:
                    neg_items = [""]
            else:
                neg_items = self._prompt_list(negative_prompt, None)
            neg = self._encode_items(neg_items, device)
            if neg.shape[0] == 1:
                neg = neg.expand(count, -1)
            elif neg.shape[0] != count:
                raise ValueError(f"negative_prompt has {neg.shape[0]} items but prompt has {count}")
            negative = neg.repeat_interleave(num_images_per_prompt, dim=0).unsqueeze(1)
        embeds = embeds.repeat_interleave(num_images_per_prompt, dim=0).unsqueeze(1)
        return embeds, negative

    def encode_mixed_prompt(
        self, prompt: PromptInput, image: ImageLike | list, image_weight: float, device: torch.device,
    ) -> tuple[torch.Tensor, list[str]]:  # fmt: skip
        """Text and image prompts together -> (B, D) mixed embeddings (`conditioning.mix_embeddings`) and their
        labels; one of either is paired with every item of the other."""
        texts, images = self._prompt_list(prompt, None), self._prompt_list(None, image)
        count = max(len(texts), len(images))
        texts, images = texts * (count // len(texts)), images * (count // len(images))
        text, picture = self._encode_items(texts, device), self._encode_items(images, device)
        return mix_embeddings(text, picture, image_weight), [f"<image> + {t}" for t in texts]

    def _encode_empty(self, device: torch.device) -> torch.Tensor:
        return self._encode_items([""], device)

    def prepare_prompt_embeds(
        self,
        prompt: PromptInput | None,
        image: ImageLike | list | None,
        negative_prompt: PromptInput | None,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        device: torch.device,
        image_weight: float | None = None,
    ) -> tuple[torch.Tensor, list[str], list]:
        """The UNet's conditioning in its dtype: (B * n, 1, D), or (2 B n, 1, D) with the negatives first when
        guiding; each prompt's label for the metadata (its text, "<image>", "<image> + text" or "<embedding>"); and
        each prompt's picture when it is an image prompt alone (PIL), else None."""
        n = num_images_per_prompt
        if prompt is not None and image is not None:
            mixed, labels = self.encode_mixed_prompt(prompt, image, image_weight, device)
            embeds, negative = self._with_negatives(mixed, device, n, do_classifier_free_guidance, negative_prompt)
            pictures = [None] * len(labels)  # the words may name another colour than the picture's
        elif prompt_embeds is None:
            items = self._prompt_list(prompt, image)
            embeds, negative = self.encode_prompt(items, device, n, do_classifier_free_guidance, negative_prompt)
            labels = [x if isinstance(x, str) else "<image>" for x in items]
            pictures = [None if isinstance(x, str) else x for x in items]
        else:  # given embeddings are used as they are (already scaled); the default negative is the empty text
            embeds = prompt_embeds.to(device).repeat_interleave(n, dim=0)
            negative = negative_prompt_embeds
            if do_classifier_free_guidance and negative is None:
                negative = self._encode_empty(device).unsqueeze(1).expand_as(embeds)
            elif negative is not None:
                negative = negative.to(device).repeat_interleave(n, dim=0)
            labels = ["<embedding>"] * (embeds.shape[0] // n)
            pictures = [None] * len(labels)
        dtype = self.unet.dtype
        embeds = embeds.to(dtype)
        if do_classifier_free_guidance:
            return torch.cat([negative.to(dtype), embeds]), labels, pictures
        return embeds, labels, pictures

    def prepare_latents(
        self,
        batch_size: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
        init_noise_sigma: float,
    ) -> torch.Tensor:
        shape = (batch_size, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for a batch of {batch_size}")
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * init_noise_sigma

    def prepare_attributes(
        self, unet_embeds: torch.Tensor, labels: list[str], num_images_per_prompt: int,
        generator: torch.Generator | list[torch.Generator] | None, do_classifier_free_guidance: bool,
        pictures: list | None = None,
    ) -> torch.Tensor | None:  # fmt: skip
        """The attributes (`stablematerials.attributes`) of a UNet that takes them, in the layout of `unet_embeds`:
        (B n, A), or (2 B n, A) with the negatives' (zeros) first when guiding; None for other UNets. Each item
        takes those of one of its prompt's nearest caption anchors, chosen by its seed; an empty text prompt, or a
        model without attributes in its anchor bank, gives zeros (what the UNet was trained on as "none"); given
        `prompt_embeds` (label "<embedding>") take their nearest anchors' like text, even the empty text's. With the
        model's `image_color_fit`, an image prompt's item (`pictures[b]` not None) takes its picture's estimated
        colour instead of the anchor's."""
        width = attribute_input_width(self.unet)
        if width is None:
            return None
        count = len(labels) * num_images_per_prompt
        cond = unet_embeds[-count:, 0]  # (B n, D): the conditional rows come after the negatives
        attributes = torch.zeros(count, width, device=cond.device)
        if self.anchor_attributes is not None:
            picked = pick_attributes(cond, self.caption_anchors, *self.anchor_attributes, self.config.anchor_neighbours,
                                     item_seeds(generator, count), len(self.config.attribute_families))  # fmt: skip
            named = torch.tensor([bool(labels[b // num_images_per_prompt].strip()) for b in range(count)], device=cond.device)
            attributes = torch.where(named[:, None], picked, attributes)
            fit = self.config.get("image_color_fit")
            shown = [i for i, picture in enumerate(pictures or []) if picture is not None]  # image prompts alone
            if fit is not None and shown:
                colors = picture_basecolors([pictures[i] for i in shown], fit) * 2 - 1  # (S, 3) model space
                for row, i in enumerate(shown):  # each prompt's num_images_per_prompt items
                    attributes[i * num_images_per_prompt:(i + 1) * num_images_per_prompt, -COLOR_ENTRIES:] = colors[row]
        if do_classifier_free_guidance:
            attributes = torch.cat([torch.zeros_like(attributes), attributes])
        return attributes.to(self.unet.dtype)

    @staticmethod
    def roll_generators(generator: torch.Generator | list[torch.Generator] | None) -> tuple[torch.Generator, ...]:
        """Generators of the attention windows' offsets, one per item, seeded from the item's generator without
        drawing from it: an item gives the same material alone or in a batch."""
        return tuple(
            torch.Generator().manual_seed((g.initial_seed() if g is not None else torch.seed()) ^ 0x5EED)
            for g in (generator if isinstance(generator, list) else [generator])
        )

    def guidance_embedding(
        self, guidance_scale: float, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor | None:
        """A student's (LCM) embedded guidance scale (B, time_cond_proj_dim): w - 1, as the published unet_lcm was
        trained; None for a teacher."""
        if not self.is_student:
            return None
        w = torch.full((batch_size,), guidance_scale - 1.0, device=device)
        return guidance_scale_embedding(w, self.unet.config.time_cond_proj_dim).to(device, dtype)

    def denoise(
        self,
        latents: torch.Tensor,
        scheduler,
        unet_embeds: torch.Tensor,
        timestep_cond: torch.Tensor | None,
        cfg_scale: float | None,
        rolling: TilingState,
        tile_from: int,
        generator: torch.Generator | list[torch.Generator] | None,
        callback_on_step_end: Callable | None = None,
        attributes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The denoising loop over `scheduler.timesteps`: latents (B, C, h, w) -> denoised latents.

        `cfg_scale` None: the UNet sees the latents once (a student, or guidance <= 1); else twice, with
        `unet_embeds` (and `attributes`, for a UNet that takes them) holding the negatives first. `rolling` is the
        features-rolling state of the call; circular padding (if it asks for it) starts at step `tile_from`."""
        do_cfg = cfg_scale is not None
        with self.progress_bar(total=len(scheduler.timesteps)) as progress:
            for i, t in enumerate(scheduler.timesteps):
                latent_in = torch.cat([latents] * 2) if do_cfg else latents
                latent_in = scheduler.scale_model_input(latent_in, t)
                with tiling(dataclasses.replace(rolling, circular=rolling.circular and i >= tile_from)):
                    noise_pred = self.unet(
                        latent_in, t, encoder_hidden_states=unet_embeds, timestep_cond=timestep_cond,
                        class_labels=attributes,
                    ).sample
                if do_cfg:
                    uncond, cond = noise_pred.chunk(2)
                    noise_pred = guide_latents(cond, uncond, cfg_scale, self.config.color_guidance_max)
                latents = scheduler.step(noise_pred, t, latents, generator=generator).prev_sample
                if callback_on_step_end is not None:
                    update = callback_on_step_end(self, i, t, {"latents": latents})
                    if update and "latents" in update:
                        latents = update["latents"]
                progress.update()
        return latents

    def decode_latents(
        self,
        latents: torch.Tensor,
        tileable: bool,
        window: int | None = None,
        roll_generators: tuple[torch.Generator | None, ...] = (None,),
    ) -> torch.Tensor:
        """Latents -> (B, 9, H, W) in model space (with colour latents, the basecolor's low frequencies come from
        them: `stablematerials.color_latents`); circular padding makes a tileable latent decode seamlessly."""
        state = TilingState(circular=tileable, window=window, latent_hw=tuple(latents.shape[-2:]), generators=roll_generators)
        with tiling(state):
            return decode_model_latents(self.vae, latents, self.config.color_latents, wrap=tileable,
                                        color_smoothing=self.config.get("color_smoothing"))  # fmt: skip

    def package(
        self,
        decoded: torch.Tensor,
        output_type: str,
        labels: list[str],
        num_images_per_prompt: int,
        generator: torch.Generator | list[torch.Generator] | None,
        settings: dict[str, Any],
    ):
        """Decoded model-space maps (B, 9, H, W) -> the output `output_type` names, each item with its metadata:
        the call's `settings`, its prompt's label and its seed."""
        batch_size = decoded.shape[0]
        gens = generator if isinstance(generator, list) else [generator] * batch_size
        metadata = []
        for b, g in enumerate(gens):
            item = {"prompt": labels[b // num_images_per_prompt], "seed": g.initial_seed() if g is not None else None}
            if not isinstance(generator, list) and batch_size > 1:
                item["batch_index"] = b  # one generator for the batch: the seed alone does not reproduce it
            metadata.append(settings | item)
        return package_maps(decoded, output_type, metadata)

    # ------------------------------------------------------------------------------------------
    # Generation
    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: PromptInput | None = None,
        image: ImageLike | list | None = None,
        negative_prompt: PromptInput | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float = DEFAULT_GUIDANCE,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        tileable: bool = False,
        tileable_start: float = 0.25,
        patched: bool = False,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[["StableMaterialsPipeline", int, Any, dict], dict | None] | None = None,
        image_weight: float | None = None,  # last: the arguments before it keep the published pipeline's positions
    ) -> StableMaterialsPipelineOutput | tuple:
        """Generate materials.

        Args:
            prompt: text, an image (PIL / array / tensor; a PIL image here works as in the published pipeline), or
                a list mixing both.
            image: image prompt(s) (PIL, array, tensor or file path): instead of `prompt`, or with a text `prompt`
                ("this picture, but blue"): the two embeddings are mixed (`conditioning.mix_embeddings`).
            negative_prompt: what to steer away from (text or image); default: black image / empty text.
            height, width: output size in pixels, multiples of 8 (default: the model's training size).
            num_inference_steps: default 50, or 4 for a latent-consistency student.
            guidance_scale: classifier-free guidance weight (embedded as w - 1 for a student).
            tileable: seamless output ("features rolling": circular convolutions from `tileable_start` of the
                schedule on, and a wrapped decode).
            patched: self-attention in rolled windows of the training size, for sizes above it: memory grows with
                the pixel count, not its square.
            output_type: "pil" (the published default: `StableMaterialsMaterial`s whose maps are PIL images),
                "material" (list of `Material`), "np" (B, H, W, 9), "pt" (B, 9, H, W), "latent".
            callback_on_step_end: called as f(pipe, step, timestep, {"latents": ...}); may return new latents.
            image_weight: the picture's share of that mix, in [0, 1] (default 0.5); only with both prompt and image.
        """
        # 0. Defaults: the model's training size and step count; the even mix of a text and a picture given together
        height = height if height is not None else self.native_size
        width = width if width is not None else self.native_size
        if num_inference_steps is None:
            num_inference_steps = self.default_num_inference_steps
        if image_weight is None and prompt is not None and image is not None:
            image_weight = DEFAULT_IMAGE_WEIGHT

        # 1. Check inputs
        self.check_inputs(
            prompt, image, height, width, num_inference_steps, guidance_scale, num_images_per_prompt,
            output_type, tileable_start, prompt_embeds, negative_prompt_embeds, image_weight,
        )  # fmt: skip
        device = self._execution_device
        do_cfg = (not self.is_student) and guidance_scale > 1.0

        # 2. Encode the prompts: (B, 1, D), negatives first when guiding (2B, 1, D); and the attributes of a UNet
        # that takes them, from the prompts' nearest caption anchors (an image prompt's colour from its picture)
        unet_embeds, labels, pictures = self.prepare_prompt_embeds(
            prompt, image, negative_prompt, prompt_embeds, negative_prompt_embeds, num_images_per_prompt, do_cfg, device,
            image_weight,
        )  # fmt: skip
        batch_size = len(labels) * num_images_per_prompt
        attributes = self.prepare_attributes(unet_embeds, labels, num_images_per_prompt, generator, do_cfg, pictures)

        # 3. Timesteps: a private scheduler instance per call, so concurrent calls never share its state.
        scheduler = self._call_scheduler()
        scheduler.set_timesteps(num_inference_steps, device=device)

        # 4. Latents (B, C, H / f, W / f), and the features-rolling state: circular padding for tileable output,
        # attention windows of the training size for patched output
        latents = self.prepare_latents(
            batch_size, height, width, self.unet.dtype, device, generator, latents, scheduler.init_noise_sigma
        )
        roll_generators = self.roll_generators(generator)
        window = self._latent_sample_size if patched else None
        latent_hw = tuple(latents.shape[-2:])
        rolling = TilingState(circular=tileable, window=window, latent_hw=latent_hw, generators=roll_generators)
        if tileable:
            self._warn_if_wrap_is_inexact(latent_hw, height, width)

        # 5. Guidance: embedded for a student (LCM), classifier-free for a teacher
        timestep_cond = self.guidance_embedding(guidance_scale, batch_size, device, self.unet.dtype)
        cfg_scale = guidance_scale if do_cfg else None

        # 6. Denoise; circular padding from `tileable_start` of the schedule on
        tile_from = int(round(tileable_start * len(scheduler.timesteps)))
        latents = self.denoise(
            latents, scheduler, unet_embeds, timestep_cond, cfg_scale, rolling, tile_from, generator,
            callback_on_step_end, attributes,
        )  # fmt: skip

        # 7. Decode and package
        if output_type == "latent":
            images: Any = latents
        else:
            decoded = self.decode_latents(latents, tileable, window, roll_generators)
            settings = {
                "negative_prompt": negative_prompt if isinstance(negative_prompt, str) else None,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
                "scheduler": type(scheduler).__name__,
                "tileable": tileable,
                "patched": patched,
                "height": height,
                "width": width,
                "model": self.config.get("_name_or_path") if hasattr(self, "config") else None,
                "student": self.is_student,
                "package_version": _package_version(),
            }
            images = self.package(decoded, output_type, labels, num_images_per_prompt, generator, settings)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return StableMaterialsPipelineOutput(images=images)


def _package_version() -> str:
    from . import __version__

    return __version__
