"""Finding and loading a model: the embedded default model, a local folder, or a hub id the user names."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import torch

from .defaults import default_steps_for

logger = logging.getLogger(__name__)

MODEL_ENV = "STABLEMATERIALS_MODEL"
PACKAGED_MODEL = Path(__file__).resolve().parent / "default_model"  # where an installed wheel holds it
CHECKOUT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "default-model"  # in a source checkout
# What each model variant (`generation.MODEL_VARIANTS`) asks `load_pipeline` for.
_VARIANT_STUDENT = {"auto": None, "student": True, "teacher": False}


def default_model_path() -> Path:
    """The embedded default model: `$STABLEMATERIALS_MODEL`, else the copy installed with the package, else
    `assets/default-model` of this source checkout."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    if (PACKAGED_MODEL / "model_index.json").is_file():
        return PACKAGED_MODEL
    return CHECKOUT_MODEL


def variant_student(variant: str) -> bool | None:
    """The `student` argument of `load_pipeline` for a model variant ("auto", "student", "teacher")."""
    if variant not in _VARIANT_STUDENT:
        raise ValueError(f"model variant must be one of {', '.join(_VARIANT_STUDENT)}, got {variant!r}")
    return _VARIANT_STUDENT[variant]


def check_model_folder(path: str | os.PathLike) -> Path:
    """Raise ValueError unless `path` is a readable pipeline folder (one with a valid model_index.json)."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"model {str(path)!r} is a file, not a model folder (the folder holding model_index.json)")
    if not folder.is_dir():
        raise ValueError(f"model folder {str(path)!r} does not exist")
    index = folder / "model_index.json"
    try:
        json.loads(index.read_text())
    except FileNotFoundError:
        raise ValueError(f"model folder {str(path)!r} is not a pipeline folder: it has no model_index.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"model folder {str(path)!r} is unreadable: {index.name}: {e}") from e
    return folder


def resolve_model(model: str | os.PathLike | None) -> Path | str:
    """The model to load: the given folder or hub id, or the default model (a clear error when it is missing)."""
    if model is not None:
        path = Path(model).expanduser()
        if path.exists() or path.is_absolute() or str(model).startswith("."):
            return check_model_folder(path)
        return str(model)  # a hub id ("owner/name"): from_pretrained downloads it unless the hub is off
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


def model_settings(path: Path | str) -> dict:
    """The settings a local model folder's model_index.json holds ({} for a hub id or an unreadable file)."""
    try:
        index = json.loads((Path(path) / "model_index.json").read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def student_by_default(path: Path | str) -> bool:
    """Whether "auto" samples with the 4-step student: when the folder ships one, unless its model_index.json says
    `prefer_teacher` (a model whose student is worse than its teacher at a few steps)."""
    return has_student(path) and not model_settings(path).get("prefer_teacher", False)


def default_steps(path: Path | str, student: bool) -> int:
    """Denoising steps by default: 4 for a student, the folder's `teacher_steps` for its teacher, else 50."""
    return default_steps_for(student, model_settings(path).get("teacher_steps"))


def _uses_student(where: Path | str, student: bool | None) -> bool:
    """Whether `load_pipeline(where, student)` loads the student; ValueError when the folder lacks that UNet."""
    local = (Path(where) / "model_index.json").is_file()
    if local and not has_student(where) and not has_teacher(where):
        raise ValueError(f"model {str(where)!r} has no UNet: neither unet/ nor unet_lcm/ holds a config.json")
    use_student = student_by_default(where) if student is None else student
    if use_student and not has_student(where):
        raise ValueError(f"model {str(where)!r} has no student UNet (unet_lcm/)")
    if not use_student and local and not has_teacher(where):
        raise ValueError(f"model {str(where)!r} ships only its 4-step student (unet_lcm/, no unet/): use the student")
    return use_student


def check_model_steps(model: Path | str, student: bool | None, steps: int) -> None:
    """ValueError unless the scheduler of a local model folder can take `steps` denoising steps (read from its
    scheduler config, without loading weights); hub ids are checked when loaded."""
    import diffusers
    from diffusers import LCMScheduler

    from .pipeline import max_inference_steps

    folder = Path(model)
    config_file = folder / "scheduler" / "scheduler_config.json"
    if not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{config_file} is unreadable: {e}") from e
    cls = getattr(diffusers, str(config.get("_class_name")), None)
    if cls is None:
        return
    scheduler = (LCMScheduler if _uses_student(folder, student) else cls).from_config(config)
    limit = max_inference_steps(scheduler)
    if steps > limit:
        raise ValueError(
            f"steps must be from 1 to {limit} for this model ({type(scheduler).__name__} over "
            f"{scheduler.config.num_train_timesteps} training timesteps), got {steps}"
        )


def _device_and_dtype(device, torch_dtype) -> tuple[str | torch.device, torch.dtype | None]:
    """Where a loaded model runs (a GPU when there is one) and in which precision: float32 on the CPU, where weights
    may be stored in float16."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch_dtype is None and str(device) == "cpu":
        torch_dtype = torch.float32
    return device, torch_dtype


def load_pipeline(
    model: str | os.PathLike | None = None,
    student: bool | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
):
    """Load a `StableMaterialsPipeline`. `student=None` uses the 4-step student when the folder has one."""
    from .pipeline import StableMaterialsPipeline

    where = resolve_model(model)
    use_student = _uses_student(where, student)
    device, torch_dtype = _device_and_dtype(device, torch_dtype)
    pipe = StableMaterialsPipeline.from_pretrained(where, student=use_student, torch_dtype=torch_dtype)
    pipe = pipe.to(device)
    if str(device).startswith("cuda") and importlib.util.find_spec("xformers") is not None:
        pipe.enable_xformers_memory_efficient_attention()  # optional extra `cuda`: used when present
    logger.info("loaded %s (student=%s) on %s", where, use_student, device)
    return pipe


# ----------------------------------------------------------------------------------------------
# The capture model (photo -> its own maps)
# ----------------------------------------------------------------------------------------------

CAPTURE_SUBFOLDER = "capture"  # where a model folder (the embedded default model) holds its capture model
_CAPTURE_CLASS = "StableMaterialsCapturePipeline"


def _is_capture_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / "model_index.json").read_text()).get("_class_name") == _CAPTURE_CLASS
    except (OSError, ValueError, AttributeError):
        return False


def capture_model_path(model: str | os.PathLike | None = None) -> Path:
    """The capture model a user means: a capture pipeline folder, or the `capture/` folder of a model folder (by
    default the embedded default model's); one clear ValueError when there is none."""
    folder = Path(model).expanduser() if model is not None else default_model_path()
    if model is not None and not folder.is_dir():
        raise ValueError(f"capture model folder {str(model)!r} does not exist")
    for candidate in (folder, folder / CAPTURE_SUBFOLDER):
        if _is_capture_folder(candidate):
            return candidate
    where = f"model folder {str(model)!r}" if model is not None else f"the default model ({folder})"
    raise ValueError(
        f"{where} has no photo-capture model (a folder with a StableMaterialsCapturePipeline model_index.json, or "
        f"its {CAPTURE_SUBFOLDER}/ subfolder); train one with `stablematerials train capture`"
    )


def load_capture_pipeline(
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
):
    """Load a `StableMaterialsCapturePipeline` (see `capture_model_path`), in float32 on the CPU."""
    from .capture import StableMaterialsCapturePipeline

    where = capture_model_path(model)
    device, torch_dtype = _device_and_dtype(device, torch_dtype)
    pipe = StableMaterialsCapturePipeline.from_pretrained(where, torch_dtype=torch_dtype).to(device)
    logger.info("loaded capture model %s on %s", where, device)
    return pipe
