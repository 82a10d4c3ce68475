"""One way to generate: the typed `GenerationRequest`, its limits, and `generate(pipe, request)` (the defaults it
fills in live in `stablematerials.defaults`).

The CLI (`stablematerials generate`), the web UI's engine (`stablematerials.studio`), the batch job and the training
scripts' samples all make materials through `generate`, so one request gives the same material everywhere: the same
defaults (steps, size, windowed attention), the same seeds per variation, the same metadata.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import (
    BIT_DEPTHS,
    DEFAULT_GUIDANCE,
    DEFAULT_IMAGE_WEIGHT,
    MAX_SEED,
    MAX_SIZE_ENV,
    MODEL_VARIANTS,
    NORMAL_CONVENTIONS,
    default_output_size,
    max_size_from_env,
)
from .io import NAMING_PRESETS
from .material import Material
from .values import parse_float, parse_int, slug

if TYPE_CHECKING:
    from .pipeline import StableMaterialsPipeline

ProgressCallback = Callable[[int, int], None]  # (steps done, total steps)


def variation_seeds(seed: int, count: int) -> list[int]:
    """The seed of each variation: seed, seed + 1, ... (wrapping within MAX_SEED)."""
    return [(seed + k) & MAX_SEED for k in range(count)]


def material_name(prompt: str, seed: int | None) -> str:
    """A file-friendly name for a material: the prompt's words (at most 40 characters) and the seed."""
    words = slug(prompt, limit=40)
    return f"{words}_{seed}" if seed is not None else words


# ----------------------------------------------------------------------------------------------
# Limits and the request
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one request may ask for. `where` and `raise_hint` word the size message: a web server
    states its own maximum; a local tool says how to raise it."""

    max_resolution: int = 1024
    max_variations: int = 4
    max_steps: int = 100
    max_guidance: float = 30.0
    where: str = "this server's maximum"
    raise_hint: str = ""

    def __post_init__(self) -> None:
        for name in ("max_resolution", "max_variations", "max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_resolution % 8:
            raise ValueError(f"max_resolution must be a multiple of 8, got {self.max_resolution}")


def local_limits() -> Limits:
    """The limits of the command line and batch job on this machine (the size limit from $STABLEMATERIALS_MAX_SIZE)."""
    return Limits(
        max_resolution=max_size_from_env(),
        max_variations=64,
        max_steps=1000,  # the models' training schedules have 1000 steps; `generate` checks the model's own limit
        max_guidance=100.0,  # far beyond any useful guidance (3 to 15); larger values overflow the student's embedding
        where="the limit",
        raise_hint=f"; set {MAX_SIZE_ENV}=N to raise it (memory grows with the pixel count: about 6 GB at 2048 px)",
    )


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: the prompt (text, an image file, or both mixed with `image_weight`, the picture's share),
    sampling settings and how the material is written.

    `seed=None` draws a random seed (the result reports it); `steps`, `width`, `height` and `patched` left as None
    take the model's defaults (`complete`); `model=None` is the caller's default model, otherwise a pipeline folder;
    `variant` picks its UNet (see MODEL_VARIANTS). Variation k uses seed + k. `naming`, `normal_convention` and
    `bit_depth` (of height and normal PNGs) say how the material folder is written.
    """

    prompt: str = ""
    image: str | None = None
    image_weight: float = DEFAULT_IMAGE_WEIGHT
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float = DEFAULT_GUIDANCE
    width: int | None = None
    height: int | None = None
    tileable: bool = True
    patched: bool | None = None
    variations: int = 1
    model: str | None = None
    variant: str = "auto"
    naming: str = "plain"
    normal_convention: str = "opengl"
    bit_depth: int = 16

    @property
    def label(self) -> str:
        """What the material's metadata records as its prompt: the text, `<image:FILE>`, or both with the
        picture's share (`<image:FILE> x0.5 + text`)."""
        text = self.prompt.strip()
        if not self.image:
            return text
        image = f"<image:{Path(self.image).name}>"
        return f"{image} x{self.image_weight:g} + {text}" if text else image

    @property
    def base_name(self) -> str:
        """The prompt's words and/or the image file's stem as a file-friendly name."""
        return slug(" ".join(x for x in (Path(self.image).stem if self.image else "", self.prompt.strip()) if x))

    def validate(self, limits: Limits = Limits(), check_files: bool = True) -> None:
        """Raise ValueError naming the first bad value; return None when the request can run. `check_files=False`
        leaves the image prompt file and the model folder to be checked when they are used."""
        from .conditioning import check_image_file

        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise ValueError("prompt and negative prompt must be text")
        has_text = bool(self.prompt.strip())
        if not has_text and not self.image:
            raise ValueError("give a text prompt (for example 'mossy cobblestone path') or an image prompt")
        if self.image and check_files:
            check_image_file(self.image)
        if self.model is not None and check_files:
            from .loading import resolve_model

            resolve_model(self.model)  # a local folder must hold a pipeline; a hub id is checked when it loads
        self.validate_settings(limits)

    def validate_settings(self, limits: Limits = Limits()) -> None:
        """`validate` without the prompt: for a template whose prompts come later (a batch's command line)."""
        if self.steps is not None:
            parse_int("steps", self.steps, 1, limits.max_steps, strict=True)
        parse_float("guidance", self.guidance, 0.0, limits.max_guidance, strict=True)
        parse_float("image weight", self.image_weight, 0.0, 1.0, strict=True)
        if self.seed is not None:
            parse_int("seed", self.seed, 0, MAX_SEED, strict=True)
        for name in ("tileable",) + (("patched",) if self.patched is not None else ()):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for label, value in (("width", self.width), ("height", self.height)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 8:
                raise ValueError(f"{label} must be a positive multiple of 8 pixels, got {value!r}")
            check_side(label, value, limits)
        parse_int("variations", self.variations, 1, limits.max_variations, strict=True)
        if self.variant not in MODEL_VARIANTS:
            raise ValueError(f"model variant must be one of {', '.join(MODEL_VARIANTS)}, got {self.variant!r}")
        check_output_options(self.naming, self.normal_convention, self.bit_depth)


def check_side(label: str, value: int, limits: Limits) -> None:
    """ValueError when a side of `value` pixels is over the limits' maximum (worded as the limits say)."""
    if value > limits.max_resolution:
        over = f"{limits.where} of {limits.max_resolution} px per side"
        raise ValueError(f"{label} {value} px is over {over}{limits.raise_hint}")


def check_output_options(naming: str, normal_convention: str, bit_depth: int) -> None:
    """ValueError naming the first bad option of how a material folder is written."""
    if naming not in NAMING_PRESETS:
        raise ValueError(f"naming must be one of {', '.join(NAMING_PRESETS)}, got {naming!r}")
    if normal_convention not in NORMAL_CONVENTIONS:
        raise ValueError(f"normal convention must be one of {', '.join(NORMAL_CONVENTIONS)}, got {normal_convention!r}")
    if bit_depth not in BIT_DEPTHS or isinstance(bit_depth, bool):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth!r}")


def complete(
    request: GenerationRequest, native: int | None, default_steps: int, max_size: int | None = None
) -> GenerationRequest:
    """The request with the model's defaults filled in: steps, size (the training size, at least 256 px, at most
    `max_size`), windowed attention above the training size, and a random seed when it has none."""
    native = native or 512
    size = default_output_size(native) if max_size is None else min(default_output_size(native), max_size)
    height = request.height if request.height is not None else size
    width = request.width if request.width is not None else size
    return dataclasses.replace(
        request,
        steps=request.steps if request.steps is not None else default_steps,
        height=height,
        width=width,
        patched=request.patched if request.patched is not None else max(height, width) > native,
        seed=request.seed if request.seed is not None else random.SystemRandom().randrange(2**31),
    )


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationResult:
    """What one request made: its materials (variation k with seed + k), the completed request, the time taken and
    each material's seam scores (`metrics.seam_scores`)."""

    request: GenerationRequest
    materials: tuple[Material, ...]
    seconds: float
    seam: tuple[dict[str, tuple[float, float]], ...]

    @property
    def seed(self) -> int:
        """The request's seed (that of the first variation)."""
        assert self.request.seed is not None  # filled by `complete`
        return self.request.seed

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seed of each variation."""
        return tuple(variation_seeds(self.seed, len(self.materials)))


def generate(
    pipe: "StableMaterialsPipeline",
    request: GenerationRequest,
    *,
    limits: Limits | None = None,
    progress: ProgressCallback | None = None,
) -> GenerationResult:
    """Make the materials `request` asks for with `pipe`: all variations in one batched call (each item is the same
    alone or in a batch), then label them and measure their seams. `limits` default to `local_limits()`."""
    import torch

    from .conditioning import load_image_prompt
    from .metrics import seam_scores

    limits = limits or local_limits()
    request.validate(limits, check_files=False)  # the image prompt is checked as it is read, below
    request = complete(request, pipe.native_size, pipe.default_num_inference_steps, limits.max_resolution)
    request.validate(limits, check_files=False)
    pipe.check_steps(request.steps, label="steps")
    assert request.seed is not None and request.steps is not None  # filled by `complete`
    start = time.perf_counter()
    n, steps = request.variations, request.steps
    seeds = variation_seeds(request.seed, n)

    def on_step(_pipe, step: int, _timestep, _tensors: dict) -> None:
        if progress is not None:
            progress(step + 1, steps)

    image = load_image_prompt(request.image) if request.image else None
    text = request.prompt.strip()
    output = pipe(
        prompt=[text] * n if text else None,
        image=[image] * n if image is not None else None,
        image_weight=request.image_weight if image is not None and text else None,
        negative_prompt=request.negative_prompt.strip() or None,
        height=request.height,
        width=request.width,
        num_inference_steps=steps,
        guidance_scale=float(request.guidance),
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        tileable=request.tileable,
        patched=request.patched,
        output_type="material",
        callback_on_step_end=on_step,
    )
    materials = tuple(output.images)
    for material, seed in zip(materials, seeds):
        material.metadata["prompt"] = request.label
        material.metadata["name"] = material_name(request.base_name, seed)
    return GenerationResult(
        request=request,
        materials=materials,
        seconds=time.perf_counter() - start,
        seam=tuple(seam_scores(m) for m in materials),
    )
