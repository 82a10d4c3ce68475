"""The engine behind the web UI: model choices, a cache of loaded pipelines, and `generate(request)`.

It holds no UI code, so it is tested without gradio. Pipelines are loaded once per model folder (under a lock,
so two requests never load the same model twice) and kept in a small least-recently-used cache. A pipeline is
safe to call from several threads (features rolling keeps its state in context variables), but on a small CPU
the front end should run one generation at a time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import default_steps_for, folder_native_size
from ..generation import GenerationRequest, GenerationResult, Limits, ProgressCallback, complete
from ..loading import check_model_folder, default_model_path, default_steps, has_student, has_teacher, student_by_default

if TYPE_CHECKING:
    from ..capture import StableMaterialsCapturePipeline
    from ..capture_request import CaptureRequest, CaptureResult
    from ..pipeline import StableMaterialsPipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    """A model the user can pick by name: a pipeline folder (fine-tuned adapters will be further choices)."""

    label: str
    path: Path


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
        self._capture: tuple[Path, StableMaterialsCapturePipeline] | None = None  # the last capture model used
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
            return student_by_default(folder)
        if variant == "student" and not has_student(folder):
            raise ValueError(f"model {folder.name!r} has no fast 4-step student (unet_lcm/): choose the full model")
        if variant == "teacher" and not has_teacher(folder):
            raise ValueError(f"model {folder.name!r} ships only its fast 4-step student (no unet/): choose the fast model")
        return variant == "student"

    def default_variant(self, model: str | os.PathLike | None = None) -> str:
        """What "auto" means for `model`: "student" when it ships one and does not prefer its teacher, else "teacher"
        ("student" without a model)."""
        try:
            return "student" if self.uses_student(model) else "teacher"
        except ValueError:
            return "student"

    def default_steps(self, model: str | os.PathLike | None = None, variant: str = "auto") -> int:
        """Denoising steps a model needs by default: 4 with the latent-consistency student, else its teacher's own
        default (`teacher_steps` in model_index.json) or 50."""
        try:
            return default_steps(self.resolve_model(model), self.uses_student(model, variant))
        except ValueError:
            return default_steps_for(variant != "teacher")

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
        """The request with the model's defaults filled in (steps, size within the limits, windowed attention) and a
        seed drawn when it has none, read from the model folder without loading it."""
        return complete(
            request,
            self.native_size(request.model),
            self.default_steps(request.model, request.variant),
            self.limits.max_resolution,
        )

    def generate(
        self, request: GenerationRequest, progress_callback: ProgressCallback | None = None
    ) -> GenerationResult:
        """Run one request: validate it (before loading anything), load its model, and make its variations in one
        batched call (`stablematerials.generation.generate`)."""
        from ..generation import generate

        request.validate(self.limits)
        pipe = self.pipeline(request.model, request.variant)
        result = generate(pipe, request, limits=self.limits, progress=progress_callback)
        logger.info("generated %d material(s) for %r in %.1f s", len(result.materials), request.label, result.seconds)
        return result

    # -- photo capture -----------------------------------------------------------------------------
    def capture_pipeline(self, model: str | os.PathLike | None = None) -> "StableMaterialsCapturePipeline":
        """The capture model of `model` (see `resolve_model`; its `capture/` folder), loaded on first use. One is kept
        loaded: it is small (a few MB) and loads in well under a second."""
        from ..loading import capture_model_path, load_capture_pipeline

        folder = capture_model_path(self.resolve_model(model))
        with self._lock:
            if self._capture is None or self._capture[0] != folder:
                logger.info("loading capture model %s", folder)
                self._capture = (folder, load_capture_pipeline(folder, device=self.device))
            return self._capture[1]

    def capture(self, request: "CaptureRequest") -> "CaptureResult":
        """Read one photo's maps: validate the request (before loading anything), load the capture model of the
        request's model, and run it (`stablematerials.capture_request.capture`)."""
        from ..capture_request import capture

        request.validate(self.limits)
        result = capture(self.capture_pipeline(request.model), request, limits=self.limits)
        logger.info("captured %s in %.1f s", request.photo, result.seconds)
        return result
