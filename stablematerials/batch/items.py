"""Batch input: prompt files (.txt, .csv, .jsonl) or a folder of images -> typed items and per-material tasks.

An item whose fields are invalid is still returned, with `error` set, so that the batch records it as failed and
goes on. Seeds are fixed per task: an item's own seed (plus the variation number), or a hash of the base seed, the
item's name and the variation, so a task's seed never depends on the order, grouping or number of processes.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..defaults import MAX_SEED
from ..generation import GenerationRequest, Limits, local_limits, variation_seeds
from ..pictures import image_files
from ..values import parse_bool, parse_float, parse_int, parse_size, parse_text, slug

PROMPT_FILE_TYPES = (".txt", ".csv", ".jsonl")
FIELDS = ("prompt", "image", "image_weight", "name", "seed", "steps", "guidance", "size", "tileable", "negative_prompt",
          "variations")  # fmt: skip
_NAME_LENGTH = 48


@dataclass(frozen=True)
class BatchItem:
    """One line of the prompt file (or one image of a folder): its `request` (the command line's template with the
    line's fields), or the `error` that says why it cannot run."""

    index: int
    name: str
    source: str  # where it came from, e.g. "prompts.csv:3"
    request: GenerationRequest | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchTask:
    """One material to make: an item, its variation number (1-based), its fixed seed and output folder name."""

    item: BatchItem
    variation: int
    seed: int
    output_name: str

    @property
    def request(self) -> GenerationRequest:
        """The item's request for this one material: its seed, one variation."""
        assert self.item.request is not None, "a task of an invalid item has no request"
        return replace(self.item.request, seed=self.seed, variations=1)


def _as_name(value: Any) -> str:
    """An item name usable as a folder name (its case kept)."""
    text = parse_text("name", value)
    clean = slug(text, limit=255, lower=False, fallback="")
    if not clean:
        raise ValueError(f"name {value!r} has no letters or digits to name a folder with")
    return clean


# ----------------------------------------------------------------------------------------------
# Records -> items
# ----------------------------------------------------------------------------------------------


def _item_from_record(
    index: int, record: dict[str, Any], template: GenerationRequest, limits: Limits, base_dir: Path, source: str
) -> BatchItem:
    """Validate one raw record (strings from CSV/TXT or JSON values); raises ValueError naming the bad field."""
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    values = {k: v for k, v in record.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    has_prompt, has_image = "prompt" in values, "image" in values
    if not (has_prompt or has_image):
        raise ValueError("give a prompt, an image, or both (mixed by image_weight)")
    image = None
    if has_image:
        image = Path(parse_text("image", values["image"])).expanduser()
        image = image if image.is_absolute() else base_dir / image
    fields: dict[str, Any] = {
        "prompt": parse_text("prompt", values["prompt"]) if has_prompt else "",
        "image": str(image) if image is not None else None,
        "seed": parse_int("seed", values["seed"], 0, MAX_SEED) if "seed" in values else None,
    }
    if "steps" in values:
        fields["steps"] = parse_int("steps", values["steps"], 1, limits.max_steps)
    if "image_weight" in values:
        if not (has_prompt and has_image):
            raise ValueError("image_weight mixes a prompt with an image; give both")
        fields["image_weight"] = parse_float("image_weight", values["image_weight"], 0.0, 1.0)
    if "guidance" in values:
        fields["guidance"] = parse_float("guidance", values["guidance"], 0.0, limits.max_guidance)
    if "size" in values:
        fields["height"], fields["width"] = parse_size("size", values["size"])
    if "tileable" in values:
        fields["tileable"] = parse_bool("tileable", values["tileable"])
    if "negative_prompt" in values:
        fields["negative_prompt"] = parse_text("negative_prompt", values["negative_prompt"])
    if "variations" in values:
        fields["variations"] = parse_int("variations", values["variations"], 1, limits.max_variations)
    request = replace(template, **fields)
    request.validate(limits, check_files=False)  # an unreadable image is found when its turn comes
    name = _as_name(values["name"]) if "name" in values else ""
    return BatchItem(index=index, name=name, source=source, request=request)


def _records(source: Path) -> list[tuple[str, dict[str, Any] | str]]:
    """(location, record or parse error) for every entry of a prompt file or image folder."""
    if source.is_dir():
        return [(p.name, {"image": str(p), "name": p.stem}) for p in image_files(source)]
    if not source.is_file():
        raise ValueError(f"prompt source {str(source)!r} is neither a file nor a folder")
    suffix = source.suffix.lower()
    if suffix not in PROMPT_FILE_TYPES:
        raise ValueError(
            f"prompt file {str(source)!r} must end in {', '.join(PROMPT_FILE_TYPES)}, or be a folder of images"
        )
    text = _read_text(source)
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
        header = [name.strip() for name in reader.fieldnames or []]
        if not set(header) & set(FIELDS):
            first = ",".join(header)[:60]
            raise ValueError(
                f"CSV file {str(source)!r} has no header line (its first line, {first!r}, names no field); "
                f"add one such as 'prompt,seed' (fields: {', '.join(FIELDS)})"
            )
        for row in reader:
            where = f"{source.name}:{reader.line_num}"
            if None in row:
                out.append((where, f"more values than header fields ({', '.join(reader.fieldnames)})"))
                continue
            out.append((where, {k.strip(): v for k, v in row.items() if k is not None}))
    return out


def _read_text(source: Path) -> str:
    """A prompt file's text (UTF-8, with or without a byte-order mark); ValueError naming the line that is not."""
    data = source.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{source.name}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the prompt file as UTF-8"
        ) from None


def read_items(
    source: str | Path, template: GenerationRequest | None = None, limits: Limits | None = None
) -> list[BatchItem]:
    """Items of a prompt file (.txt one prompt a line with # comments, .csv with a header, .jsonl) or image folder.

    Each item's request is `template` (the command line's settings) with the item's own fields. Relative image
    paths are relative to the prompt file's folder. Items without a name are named after their prompt (or image
    file); an explicit name used twice makes the later item invalid.
    """
    template = template or GenerationRequest()
    limits = limits or local_limits()
    source = Path(source)
    base_dir = source if source.is_dir() else source.parent
    items: list[BatchItem] = []
    for index, (where, record) in enumerate(_records(source)):
        if isinstance(record, str):  # a line that could not be parsed
            items.append(BatchItem(index=index, name="", source=where, error=record))
            continue
        try:
            items.append(_item_from_record(index, record, template, limits, base_dir, where))
        except ValueError as e:
            raw = record.get("name", record.get("prompt"))
            name = slug(raw, fallback="") if isinstance(raw, str) else ""
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
        base = it.name or (it.request.base_name if it.request else "item")
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
        count = it.request.variations if it.request is not None and it.error is None else 1
        names = [it.name] if count == 1 else [f"{it.name}_v{k}" for k in range(1, count + 1)]
        clash = next((n for n in names if n in used), None)
        if clash is not None and it.error is None:
            it = replace(it, error=f"output folder {clash!r} is already used by another item")
            names = names[:1]
        used.update(names)
        own = it.request.seed if it.request is not None else None
        if own is not None:
            seeds = variation_seeds(own, count)
        else:
            seeds = [derive_seed(base_seed, it.name, k) for k in range(1, count + 1)]
        for k, (output_name, seed) in enumerate(zip(names, seeds), 1):
            tasks.append(BatchTask(item=it, variation=k, seed=seed, output_name=output_name))
    return tasks
