"""Batch input: prompt files (.txt, .csv, .jsonl) or a folder of images -> typed items and per-material tasks.

An item whose fields are invalid is still returned, with `error` set, so that the batch records it as failed and
goes on. Seeds are fixed per task: an item's own seed (plus the variation number), or a hash of the base seed, the
item's name and the variation, so a task's seed never depends on the order, grouping or number of processes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PROMPT_FILE_TYPES = (".txt", ".csv", ".jsonl")
IMAGE_FILE_TYPES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".exr")
FIELDS = ("prompt", "image", "name", "seed", "steps", "guidance", "size", "tileable", "negative_prompt", "variations")
MAX_SEED = 2**63 - 1
MAX_VARIATIONS = 64
MAX_SIZE = 4096
_NAME_LENGTH = 48


@dataclass(frozen=True)
class BatchDefaults:
    """Values for fields an item leaves out (from the command line). `seed` is the base seed for derived seeds."""

    steps: int | None = None  # None: the pipeline's default (4 for a student, 50 otherwise)
    guidance: float = 7.5
    size: int | None = None  # None: the model's training size
    tileable: bool = True
    negative_prompt: str | None = None
    variations: int = 1
    seed: int = 0


@dataclass(frozen=True)
class BatchItem:
    """One line of the prompt file (or one image of a folder), validated; `error` says why it cannot run."""

    index: int
    name: str
    source: str  # where it came from, e.g. "prompts.csv:3"
    prompt: str | None = None
    image: Path | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float = 7.5
    size: int | None = None
    tileable: bool = True
    negative_prompt: str | None = None
    variations: int = 1
    error: str | None = None


@dataclass(frozen=True)
class BatchTask:
    """One material to make: an item, its variation number (1-based), its fixed seed and output folder name."""

    item: BatchItem
    variation: int
    seed: int
    output_name: str


# ----------------------------------------------------------------------------------------------
# Field values
# ----------------------------------------------------------------------------------------------


def _as_int(field: str, value: Any, low: int, high: int) -> int:
    """An integer in [low, high] from an int or a decimal string."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise ValueError(f"{field} must be an integer from {low} to {high}, got {value!r}")
    return number


def _as_float(field: str, value: Any, low: float, high: float) -> float:
    """A finite number in [low, high] from a number or a string."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{field} must be a number from {low:g} to {high:g}, got {value!r}")
    return number


def _as_bool(field: str, value: Any) -> bool:
    """true/false, yes/no, 1/0 (any case) or a JSON boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"{field} must be true or false, got {value!r}")


def _as_text(field: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return value.strip()


def _as_size(value: Any) -> int:
    """A square size in pixels: a positive multiple of 8."""
    size = _as_int("size", value, 8, MAX_SIZE)
    if size % 8:
        raise ValueError(f"size must be a multiple of 8, got {value!r}")
    return size


def slug(text: str) -> str:
    """A folder-safe name from free text: lower case, [a-z0-9_-], at most 48 characters."""
    clean = re.sub(r"[^a-z0-9-]+", "_", text.lower()).strip("_-")
    return clean[:_NAME_LENGTH].rstrip("_-")


def _as_name(value: Any) -> str:
    """An item name usable as a folder name."""
    text = _as_text("name", value)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    if not clean:
        raise ValueError(f"name {value!r} has no letters or digits to name a folder with")
    return clean


# ----------------------------------------------------------------------------------------------
# Records -> items
# ----------------------------------------------------------------------------------------------


def _item_from_record(
    index: int, record: dict[str, Any], defaults: BatchDefaults, base_dir: Path, source: str
) -> BatchItem:
    """Validate one raw record (strings from CSV/TXT or JSON values); raises ValueError naming the bad field."""
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    values = {k: v for k, v in record.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    has_prompt, has_image = "prompt" in values, "image" in values
    if has_prompt == has_image:
        raise ValueError("give exactly one of prompt or image")
    prompt = _as_text("prompt", values["prompt"]) if has_prompt else None
    image = None
    if has_image:
        image = Path(_as_text("image", values["image"])).expanduser()
        image = image if image.is_absolute() else base_dir / image
    name = _as_name(values["name"]) if "name" in values else None
    return BatchItem(
        index=index,
        name=name or "",
        source=source,
        prompt=prompt,
        image=image,
        seed=_as_int("seed", values["seed"], 0, MAX_SEED) if "seed" in values else None,
        steps=_as_int("steps", values["steps"], 1, 1000) if "steps" in values else defaults.steps,
        guidance=_as_float("guidance", values["guidance"], 0.0, 100.0) if "guidance" in values else defaults.guidance,
        size=_as_size(values["size"]) if "size" in values else defaults.size,
        tileable=_as_bool("tileable", values["tileable"]) if "tileable" in values else defaults.tileable,
        negative_prompt=(
            _as_text("negative_prompt", values["negative_prompt"])
            if "negative_prompt" in values
            else defaults.negative_prompt
        ),
        variations=(
            _as_int("variations", values["variations"], 1, MAX_VARIATIONS)
            if "variations" in values
            else defaults.variations
        ),
    )


def _records(source: Path) -> list[tuple[str, dict[str, Any] | str]]:
    """(location, record or parse error) for every entry of a prompt file or image folder."""
    if source.is_dir():
        images = sorted(
            p for p in source.iterdir() if p.suffix.lower() in IMAGE_FILE_TYPES and not p.name.startswith(".")
        )
        if not images:
            raise ValueError(f"folder {str(source)!r} has no image files ({', '.join(IMAGE_FILE_TYPES)})")
        return [(p.name, {"image": str(p), "name": p.stem}) for p in images]
    if not source.is_file():
        raise ValueError(f"prompt source {str(source)!r} is neither a file nor a folder")
    suffix = source.suffix.lower()
    if suffix not in PROMPT_FILE_TYPES:
        raise ValueError(
            f"prompt file {str(source)!r} must end in {', '.join(PROMPT_FILE_TYPES)}, or be a folder of images"
        )
    text = source.read_text(encoding="utf-8-sig")
    out: list[tuple[str, dict[str, Any] | str]] = []
    if suffix == ".txt":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((f"{source.name}:{n}", {"prompt": line.strip()}))
    elif suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{source.name}:{n}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                out.append((where, f"not valid JSON: {e.msg}"))
                continue
            out.append(
                (where, record if isinstance(record, dict) else f"expected a JSON object, got {type(record).__name__}")
            )
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise ValueError(f"CSV file {str(source)!r} has no header line")
        for row in reader:
            where = f"{source.name}:{reader.line_num}"
            if None in row:
                out.append((where, f"more values than header fields ({', '.join(reader.fieldnames)})"))
                continue
            out.append((where, {k.strip(): v for k, v in row.items() if k is not None}))
    return out


def read_items(source: str | Path, defaults: BatchDefaults | None = None) -> list[BatchItem]:
    """Items of a prompt file (.txt one prompt a line with # comments, .csv with a header, .jsonl) or image folder.

    Relative image paths are relative to the prompt file's folder. Items without a name are named after their
    prompt (or image file); an explicit name used twice makes the later item invalid.
    """
    defaults = defaults or BatchDefaults()
    source = Path(source)
    base_dir = source if source.is_dir() else source.parent
    items: list[BatchItem] = []
    for index, (where, record) in enumerate(_records(source)):
        if isinstance(record, str):  # a line that could not be parsed
            items.append(BatchItem(index=index, name="", source=where, error=record))
            continue
        try:
            items.append(_item_from_record(index, record, defaults, base_dir, where))
        except ValueError as e:
            raw = record.get("name", record.get("prompt"))
            name = slug(raw) if isinstance(raw, str) else ""
            items.append(BatchItem(index=index, name=name, source=where, error=str(e)))
    return _assign_names(items)


def _assign_names(items: list[BatchItem]) -> list[BatchItem]:
    """Give every item a unique name: explicit names must be unique; derived ones get `_<index>` on a clash."""
    explicit = [it.name for it in items if it.name and it.error is None]
    taken: set[str] = set()
    out: list[BatchItem] = []
    for it in items:
        if it.name and it.error is None:
            if it.name in taken:
                it = replace(it, error=f"duplicate name {it.name!r}")
            taken.add(it.name)
            out.append(it)
            continue
        base = it.name or slug(it.prompt or (it.image.stem if it.image else "")) or "item"
        name = base if base not in taken and base not in explicit else f"{base}_{it.index}"
        taken.add(name)
        out.append(replace(it, name=name))
    return out


# ----------------------------------------------------------------------------------------------
# Items -> tasks
# ----------------------------------------------------------------------------------------------


def derive_seed(base_seed: int, name: str, variation: int) -> int:
    """A 63-bit seed from (base seed, item name, variation): the first 8 bytes of their SHA-256."""
    digest = hashlib.sha256(f"{base_seed}\x00{name}\x00{variation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def expand_tasks(items: list[BatchItem], base_seed: int = 0) -> list[BatchTask]:
    """One task per item and variation, in item order. Output folders are `<name>` or `<name>_v<k>`.

    Seeds: an item's own seed s gives s, s + 1, ... for its variations; otherwise `derive_seed`. An invalid item
    gives one task (recorded as failed). A folder name produced twice makes the later item invalid.
    """
    tasks: list[BatchTask] = []
    used: set[str] = set()
    for it in items:
        count = it.variations if it.error is None else 1
        names = [it.name] if count == 1 else [f"{it.name}_v{k}" for k in range(1, count + 1)]
        clash = next((n for n in names if n in used), None)
        if clash is not None and it.error is None:
            it = replace(it, error=f"output folder {clash!r} is already used by another item")
            names = names[:1]
        used.update(names)
        for k, output_name in enumerate(names, 1):
            seed = (it.seed + k - 1) & MAX_SEED if it.seed is not None else derive_seed(base_seed, it.name, k)
            tasks.append(BatchTask(item=it, variation=k, seed=seed, output_name=output_name))
    return tasks
