"""The engine behind the web UI: model choices, a cache of loaded pipelines, and `generate(request)`.

It holds no UI code, so it is tested without gradio. Pipelines are loaded once per model folder (under a lock,
so two requests never load the same model twice) and kept in a small least-recently-used cache. A pipeline is
safe to call from several threads (features rolling keeps its state in context variables), but on a small CPU
the front end should run one generation at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..loading import default_model_path, default_output_size, has_student, has_teacher
from ..metrics import seam_scores
from .request import GenerationRequest, GenerationResult, Limits, check_model_folder

if TYPE_CHECKING:
    from ..pipeline import StableMaterialsPipeline

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (steps done, total steps)
STUDENT_STEPS = 4
TEACHER_STEPS = 50


@dataclass(frozen=True)
class ModelChoice:
    """A model the user can pick by name: a pipeline folder (fine-tuned adapters will be further choices)."""

    label: str
    path: Path


def folder_native_size(path: str | os.PathLike) -> int | None:
    """The output size (pixels) a pipeline folder was trained at, read from its configs without loading weights."""
    try:
        unet = json.loads((Path(path) / "unet" / "config.json").read_text())
        vae = json.loads((Path(path) / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    sample = unet.get("sample_size")
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    blocks = vae.get("block_out_channels")
    if not isinstance(sample, int) or not isinstance(blocks, list) or not blocks:
        return None
    return sample * 2 ** (len(blocks) - 1)


def material_name(prompt: str, seed: int | None) -> str:
    """A file-friendly name for a material: the prompt's words (at most 40 characters) and the seed."""
    words = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:40].rstrip("_") or "material"
    return f"{words}_{seed}" if seed is not None else words


class Studio:
    """Loads models on demand and turns `GenerationRequest`s into materials.

    `model` is the folder given on the command line (if any); the embedded default model is offered too when it
    exists. `allow_model_folders=False` refuses requests naming other folders (for servers others can reach).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        limits: Limits = Limits(),
        allow_model_folders: bool = True,
        cache_size: int = 2,
        device: str | None = None,
    ) -> None:
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"cache_size must be a positive integer, got {cache_size!r}")
        self.limits = limits
        self.allow_model_folders = allow_model_folders
        self.device = device
        self._cache_size = cache_size
        self._choices: list[ModelChoice] = []
        if model is not None:
            self._choices.append(ModelChoice(f"{Path(model).name} (--model)", check_model_folder(model).resolve()))
        embedded = default_model_path()
        if (embedded / "model_index.json").is_file() and embedded.resolve() not in {c.path for c in self._choices}:
            self._choices.append(ModelChoice("StableMaterials default model", embedded.resolve()))
        self._pipelines: OrderedDict[tuple[Path, bool], StableMaterialsPipeline] = OrderedDict()  # (folder, student)
        self._lock = threading.Lock()

    # -- models ------------------------------------------------------------------------------------
    def model_choices(self) -> list[ModelChoice]:
        """The models offered by name, the initial selection first (the extension point for adapters)."""
        return list(self._choices)

    @property
    def default_model(self) -> Path | None:
        """The folder used when a request names no model, or None when no model is available."""
        return self._choices[0].path if self._choices else None

    def resolve_model(self, model: str | os.PathLike | None) -> Path:
        """The folder a request's `model` field means; ValueError when there is none or it is not allowed."""
        if model is None or str(model).strip() == "":
            if self.default_model is None:
                raise ValueError(
                    "no model is available: start the app with --model PATH (a pipeline folder) or enter a "
                    "model folder in the page"
                )
            return self.default_model
        folder = check_model_folder(model).resolve()
        if not self.allow_model_folders and folder not in {c.path for c in self._choices}:
            raise ValueError("this server only runs the models in its list; other model folders are disabled")
        return folder

    def uses_student(self, model: str | os.PathLike | None = None, variant: str = "auto") -> bool:
        """Whether a request for `model` and `variant` (see MODEL_VARIANTS) samples with the 4-step student;
        ValueError when the model does not ship the UNet the variant names."""
        folder = self.resolve_model(model)
        if variant == "auto":
            return has_student(folder)
        if variant == "student" and not has_student(folder):
            raise ValueError(f"model {folder.name!r} has no fast 4-step student (unet_lcm/): choose the full model")
        if variant == "teacher" and not has_teacher(folder):
            raise ValueError(f"model {folder.name!r} ships only its fast 4-step student (no unet/): choose the fast model")
        return variant == "student"

    def default_variant(self, model: str | os.PathLike | None = None) -> str:
        """What "auto" means for `model`: "student" when it ships one, else "teacher" ("student" without a model)."""
        try:
            return "student" if self.uses_student(model) else "teacher"
        except ValueError:
            return "student"

    def default_steps(self, model: str | os.PathLike | None = None, variant: str = "auto") -> int:
        """Denoising steps a model needs by default: 4 with the latent-consistency student, else 50."""
        try:
            return STUDENT_STEPS if self.uses_student(model, variant) else TEACHER_STEPS
        except ValueError:
            return STUDENT_STEPS if variant != "teacher" else TEACHER_STEPS

    def native_size(self, model: str | os.PathLike | None = None) -> int | None:
        """The model's training resolution in pixels (None when unknown or no model is available)."""
        try:
            return folder_native_size(self.resolve_model(model))
        except ValueError:
            return None

    def pipeline(self, model: str | os.PathLike | None = None, variant: str = "auto") -> "StableMaterialsPipeline":
        """The loaded pipeline for `model` (see `resolve_model`) and `variant`, loading it on first use."""
        from ..loading import load_pipeline

        folder = self.resolve_model(model)
        student = self.uses_student(folder, variant)
        key = (folder, student)
        with self._lock:
            pipe = self._pipelines.get(key)
            if pipe is None:
                logger.info("loading model %s (%s)", folder, "student" if student else "teacher")
                pipe = load_pipeline(folder, student=student, device=self.device)
                pipe.set_progress_bar_config(disable=True)
                self._pipelines[key] = pipe
                while len(self._pipelines) > self._cache_size:
                    evicted, _ = self._pipelines.popitem(last=False)
                    logger.info("unloaded model %s", evicted[0])
            self._pipelines.move_to_end(key)
            return pipe

    # -- generation --------------------------------------------------------------------------------
    def complete(self, request: GenerationRequest) -> GenerationRequest:
        """The request with the model's defaults filled in (steps, size) and a seed drawn when it has none."""
        native = self.native_size(request.model) or 512
        default_size = min(default_output_size(native), self.limits.max_resolution)
        return dataclasses.replace(
            request,
            steps=request.steps if request.steps is not None else self.default_steps(request.model, request.variant),
            width=request.width if request.width is not None else default_size,
            height=request.height if request.height is not None else default_size,
            seed=request.seed if request.seed is not None else random.SystemRandom().randrange(2**31),
        )

    def generate(self, request: GenerationRequest, progress_callback: ProgressCallback | None = None) -> GenerationResult:
        """Run one request: validate it, load its model, sample its variations and measure their seams."""
        import torch

        request.validate(self.limits)
        request = self.complete(request)
        request.validate(self.limits)
        start = time.perf_counter()
        pipe = self.pipeline(request.model, request.variant)
        assert request.seed is not None and request.steps is not None  # filled by complete()
        n, steps = request.variations, request.steps
        sample = pipe.unet.config.sample_size
        sample = (sample[0] if isinstance(sample, (list, tuple)) else sample) * pipe.vae_scale_factor
        made = []
        # One call per variation, so that each material's seed alone reproduces it (in a batch, the random
        # offsets of features rolling follow the batch's first seed).
        for k in range(n):

            def on_step(_pipe, step: int, _timestep, _tensors: dict, k: int = k) -> None:
                if progress_callback is not None:
                    progress_callback(k * steps + step + 1, n * steps)

            output = pipe(
                prompt=request.prompt.strip() if not request.image else None,
                image=request.image or None,
                negative_prompt=request.negative_prompt.strip() or None,
                height=request.height,
                width=request.width,
                num_inference_steps=steps,
                guidance_scale=float(request.guidance),
                generator=torch.Generator().manual_seed(request.seed + k),
                tileable=request.tileable,
                patched=max(request.height, request.width) > sample,
                callback_on_step_end=on_step,
            )
            made.extend(output.images)
        materials = tuple(made)
        label = f"<image:{Path(request.image).name}>" if request.image else request.prompt.strip()
        for k, material in enumerate(materials):
            material.metadata["prompt"] = label
            material.metadata["name"] = material_name(
                Path(request.image).stem if request.image else request.prompt, request.seed + k
            )
        seconds = time.perf_counter() - start
        logger.info("generated %d material(s) for %r in %.1f s", n, label, seconds)
        return GenerationResult(
            request=request,
            materials=materials,
            seed=request.seed,
            seconds=seconds,
            seam=tuple(seam_scores(m) for m in materials),
        )
