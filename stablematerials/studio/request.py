"""What a front end asks the engine for (`GenerationRequest`, checked by `validate`) and what it gets back."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..io import NAMING_PRESETS
from ..material import Material

NORMAL_CONVENTIONS: tuple[str, ...] = ("opengl", "directx", "both")
BIT_DEPTHS: tuple[int, ...] = (8, 16)
# Which of a model's UNets samples: the 4-step latent-consistency student, the guided teacher it was distilled
# from (50 steps, about 15x slower, slightly closer to the training data: benchmarks/results/student.md), or
# "auto": the student when the model ships one.
MODEL_VARIANTS: tuple[str, ...] = ("auto", "student", "teacher")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """What one server accepts: bounds on the work a single request may ask for."""

    max_resolution: int = 1024
    max_variations: int = 4
    max_steps: int = 100
    max_guidance: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_resolution", "max_variations", "max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_resolution % 8:
            raise ValueError(f"max_resolution must be a multiple of 8, got {self.max_resolution}")


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: the prompt (text or an image file), sampling settings and how downloads are written.

    `seed=None` draws a random seed (the result reports the seed used); `steps=None`, `width=None` and
    `height=None` take the model's defaults; `model=None` is the engine's default model, otherwise a local
    pipeline folder; `variant` picks its UNet (see MODEL_VARIANTS). `naming`, `normal_convention` and `bit_depth`
    (of height and normal PNGs) shape the zip.
    """

    prompt: str = ""
    image: str | None = None
    negative_prompt: str = ""
    steps: int | None = None
    guidance: float = 7.5
    seed: int | None = None
    tileable: bool = True
    width: int | None = None
    height: int | None = None
    variations: int = 1
    model: str | None = None
    variant: str = "auto"
    naming: str = "plain"
    normal_convention: str = "opengl"
    bit_depth: int = 16

    def validate(self, limits: Limits = Limits()) -> None:
        """Raise ValueError naming the first bad value; return None when the request can run."""
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise ValueError("prompt and negative prompt must be text")
        has_text = bool(self.prompt.strip())
        if not has_text and not self.image:
            raise ValueError("give a text prompt (for example 'mossy cobblestone path') or an image prompt")
        if has_text and self.image:
            raise ValueError("give either a text prompt or an image prompt, not both: clear one of them")
        if self.image:
            check_image_file(self.image)
        if self.steps is not None and not _int_in(self.steps, 1, limits.max_steps):
            raise ValueError(f"steps must be a whole number from 1 to {limits.max_steps}, got {self.steps!r}")
        if not _number_in(self.guidance, 0.0, limits.max_guidance):
            raise ValueError(f"guidance must be a number from 0 to {limits.max_guidance:g}, got {self.guidance!r}")
        if self.seed is not None and not _int_in(self.seed, 0, MAX_SEED):
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        if not isinstance(self.tileable, bool):
            raise ValueError(f"tileable must be true or false, got {self.tileable!r}")
        for label, value in (("width", self.width), ("height", self.height)):
            if value is None:
                continue
            if not _int_in(value, 8, 10**9) or value % 8:
                raise ValueError(f"{label} must be a positive multiple of 8 pixels, got {value!r}")
            if value > limits.max_resolution:
                raise ValueError(
                    f"{label} {value} px is over this server's maximum of {limits.max_resolution} px per side"
                )
        if not _int_in(self.variations, 1, limits.max_variations):
            raise ValueError(
                f"variations must be a whole number from 1 to {limits.max_variations}, got {self.variations!r}"
            )
        if self.model is not None:
            check_model_folder(self.model)
        if self.variant not in MODEL_VARIANTS:
            raise ValueError(f"model variant must be one of {', '.join(MODEL_VARIANTS)}, got {self.variant!r}")
        if self.naming not in NAMING_PRESETS:
            raise ValueError(f"naming must be one of {', '.join(NAMING_PRESETS)}, got {self.naming!r}")
        if self.normal_convention not in NORMAL_CONVENTIONS:
            raise ValueError(
                f"normal convention must be one of {', '.join(NORMAL_CONVENTIONS)}, got {self.normal_convention!r}"
            )
        if self.bit_depth not in BIT_DEPTHS or isinstance(self.bit_depth, bool):
            raise ValueError(f"bit depth must be 8 or 16, got {self.bit_depth!r}")


@dataclass(frozen=True)
class GenerationResult:
    """What one request made: its materials, the time taken and each one's seam scores.

    Variation k was made with seed `seed + k`; a request for that seed alone makes the same material again."""

    request: GenerationRequest
    materials: tuple[Material, ...]
    seed: int
    seconds: float
    seam: tuple[dict[str, tuple[float, float]], ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seed of each variation."""
        return tuple(self.seed + k for k in range(len(self.materials)))


def check_image_file(path: str | os.PathLike) -> None:
    """Raise ValueError unless `path` is a file that PIL can decode as an image."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"image prompt {p.name!r} is not a file")
    try:
        with Image.open(p) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"image prompt {p.name!r} is not an image this app can read; use a PNG, JPEG or WebP file") from e


def check_model_folder(path: str | os.PathLike) -> Path:
    """Raise ValueError unless `path` is a readable pipeline folder (one with a valid model_index.json)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"model folder {str(path)!r} does not exist or is not a folder")
    index = folder / "model_index.json"
    try:
        json.loads(index.read_text())
    except FileNotFoundError:
        raise ValueError(f"model folder {str(path)!r} is not a pipeline folder: it has no model_index.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"model folder {str(path)!r} is unreadable: {index.name}: {e}") from e
    return folder


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number_in(value: object, low: float, high: float) -> bool:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok_type and math.isfinite(value) and low <= value <= high
