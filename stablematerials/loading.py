"""Finding and loading a model: the embedded default model, a local folder, or a hub id the user names."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

MODEL_ENV = "STABLEMATERIALS_MODEL"
MIN_DEFAULT_SIZE = 256  # a texture below 256 px is of little use in a scene


def default_output_size(native: int) -> int:
    """The output size used when the user names none: the model's training size, at least 256 px (a smaller
    model generates larger outputs with windowed attention)."""
    return max(int(native), MIN_DEFAULT_SIZE)


def default_model_path() -> Path:
    """The embedded default model: `$STABLEMATERIALS_MODEL`, else `assets/default-model` of this checkout."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "assets" / "default-model"


def resolve_model(model: str | os.PathLike | None) -> Path | str:
    """The model to load: the given folder or hub id, or the default model (a clear error when it is missing)."""
    if model is not None:
        path = Path(model)
        if path.is_dir() or os.path.isabs(str(model)) or str(model).startswith("."):
            if not path.is_dir():
                raise ValueError(f"model folder {str(model)!r} does not exist")
            return path
        return str(model)  # a hub id
    path = default_model_path()
    if not (path / "model_index.json").is_file():
        raise ValueError(
            f"no default model at {path}; pass --model PATH (a folder saved by StableMaterialsPipeline.save_pretrained "
            f"or the published StableMaterials layout) or set {MODEL_ENV}"
        )
    return path


def has_student(path: Path | str) -> bool:
    """True when a model folder ships a latent-consistency student UNet (`unet_lcm/`)."""
    return (Path(path) / "unet_lcm" / "config.json").is_file()


def has_teacher(path: Path | str) -> bool:
    """True when a model folder ships the guided (teacher) UNet (`unet/`)."""
    return (Path(path) / "unet" / "config.json").is_file()


def load_pipeline(
    model: str | os.PathLike | None = None,
    student: bool | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
):
    """Load a `StableMaterialsPipeline`. `student=None` uses the 4-step student when the folder has one."""
    from .pipeline import StableMaterialsPipeline

    where = resolve_model(model)
    use_student = has_student(where) if student is None else student
    if use_student and not has_student(where):
        raise ValueError(f"model {str(where)!r} has no student UNet (unet_lcm/)")
    if not use_student and (Path(where) / "model_index.json").is_file() and not has_teacher(where):
        raise ValueError(f"model {str(where)!r} ships only its 4-step student (unet_lcm/, no unet/): use the student")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch_dtype is None and str(device) == "cpu":
        torch_dtype = torch.float32  # weights may be stored in float16; compute on the CPU in float32
    pipe = StableMaterialsPipeline.from_pretrained(where, student=use_student, torch_dtype=torch_dtype)
    pipe = pipe.to(device)
    if str(device).startswith("cuda") and importlib.util.find_spec("xformers") is not None:
        pipe.enable_xformers_memory_efficient_attention()  # optional extra `cuda`: used when present
    logger.info("loaded %s (student=%s) on %s", where, use_student, device)
    return pipe
