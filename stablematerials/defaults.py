"""The defaults and machine limits of generation, each in one place: steps, guidance, output size, seeds, sizes this
machine accepts. The pipeline, the typed request (`stablematerials.generation`), the command line and the web UI
read them from here."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_GUIDANCE = 7.5  # the published model's default guidance scale
DEFAULT_IMAGE_WEIGHT = 0.5  # text and image together: the picture's share of the mix (conditioning.mix_embeddings)
STUDENT_STEPS = 4  # a latent-consistency student (LCM) samples in 4 steps, as the published unet_lcm
TEACHER_STEPS = 50  # the guided teacher: 50 DDIM steps, as published
MIN_DEFAULT_SIZE = 256  # a texture below 256 px is of little use in a scene
MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds; 63 bits stay positive in JSON, CSV and every language
MAX_SIZE_ENV = "STABLEMATERIALS_MAX_SIZE"
# Memory grows with the pixel count (windowed attention above the training size): the default model v2 peaked at
# 1.0 / 2.1 / 5.6 GB at 512 / 1024 / 2048 px (README, benchmarks/pipeline_speed.py), so 2048 px fits a 16 GB machine
# and 4096 px (about 4x more) does not.
DEFAULT_MAX_SIZE = 2048
# Procedural materials need far less: bricks peaked at 0.84 GB at 2048 px (about 200 bytes a pixel), so 4096 px
# takes about 3.5 GB.
PROCEDURAL_MAX_SIZE = 4096
# Which of a model's UNets samples: the 4-step latent-consistency student, the guided teacher it was distilled from
# (50 steps, about 15x slower, slightly closer to the training data: benchmarks/results/student.md), or "auto": the
# student when the model ships one.
MODEL_VARIANTS: tuple[str, ...] = ("auto", "student", "teacher")
NORMAL_CONVENTIONS: tuple[str, ...] = ("opengl", "directx", "both")
# Maps read from a photo are the photo's size up to this many pixels per side (issue 15): larger photos are scaled
# down, since few texture photos hold real detail beyond it; `max_size` asks for more (predicted in tiles).
CAPTURE_SIZE = 1024
BIT_DEPTHS: tuple[int, ...] = (8, 16)


def check_teacher_steps(teacher_steps: object) -> int | None:
    """A model's `teacher_steps` setting (model_index.json): None or a positive whole number, else a ValueError."""
    if teacher_steps is not None and (isinstance(teacher_steps, bool) or not isinstance(teacher_steps, int)
                                      or teacher_steps < 1):  # fmt: skip
        raise ValueError(f"teacher_steps must be a positive whole number or None, got {teacher_steps!r}")
    return teacher_steps


def default_steps_for(student: bool, teacher_steps: int | None = None) -> int:
    """Denoising steps by default: 4 for a student; for a teacher, its model's own `teacher_steps`, else 50."""
    return STUDENT_STEPS if student else (check_teacher_steps(teacher_steps) or TEACHER_STEPS)


def default_output_size(native: int) -> int:
    """The output size used when the user names none: the model's training size, at least 256 px (a smaller
    model generates larger outputs with windowed attention)."""
    return max(int(native), MIN_DEFAULT_SIZE)


def native_size(unet_config: Mapping[str, Any], vae_config: Mapping[str, Any]) -> int | None:
    """The output size (pixels) a model was trained at: the UNet's sample size times the VAE's downsampling."""
    sample = unet_config.get("sample_size")
    sample = sample[0] if isinstance(sample, (list, tuple)) and sample else sample
    blocks = vae_config.get("block_out_channels")
    if not isinstance(sample, int) or isinstance(sample, bool) or not isinstance(blocks, (list, tuple)) or not blocks:
        return None
    return sample * 2 ** (len(blocks) - 1)


def folder_native_size(path: str | os.PathLike) -> int | None:
    """`native_size` of a pipeline folder, read from its configs without loading weights (None when unreadable).
    The teacher's `unet/` is read, or the student's `unet_lcm/` when the folder ships only that."""
    folder = Path(path)
    for unet in ("unet", "unet_lcm"):
        try:
            unet_config = json.loads((folder / unet / "config.json").read_text())
            vae_config = json.loads((folder / "vae" / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(unet_config, dict) and isinstance(vae_config, dict):
            return native_size(unet_config, vae_config)
    return None


def max_size_from_env(default: int = DEFAULT_MAX_SIZE) -> int:
    """The largest output side this machine accepts: `$STABLEMATERIALS_MAX_SIZE`, else `default`."""
    text = os.environ.get(MAX_SIZE_ENV, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 8 or int(text) % 8:
        raise ValueError(f"{MAX_SIZE_ENV} must be a positive multiple of 8 (pixels per side), got {text!r}")
    return int(text)


def check_procedural_size(size: int, flag: str = "--size") -> int:
    """A procedural material's size from the command line: a positive multiple of 8 within the machine's limit."""
    limit = max_size_from_env(PROCEDURAL_MAX_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 8 or size % 8:
        raise ValueError(f"{flag} must be a positive multiple of 8 pixels, got {size!r}")
    if size > limit:
        raise ValueError(
            f"{flag} {size} px is over the limit of {limit} px per side; set {MAX_SIZE_ENV}=N to raise it (memory "
            "grows with the pixel count: about 3.5 GB at 4096 px)"
        )
    return size
