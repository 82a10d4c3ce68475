"""The evaluation's prompt file: one JSON object per line, the prompt and what it asks for.

    {"id": "bricks_yellow_garden", "prompt": "yellow clay bricks stacked in a garden wall", "family": "bricks",
     "colour": "yellow", "metal": "not metal", "gloss": null}

`family`: a procedural family name, or null for a prompt outside the families; `colour`: one of
attributes.COLOURS or null; `metal`: "metal", "not metal" or null; `gloss`: "glossy", "matte" or null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stablematerials.procedural import FAMILIES

from .attributes import COLOURS, GLOSS_WORDS, METAL_WORDS

DEFAULT_PROMPTS = Path(__file__).resolve().parents[1] / "default_model_prompts.jsonl"
_FIELDS = ("id", "prompt", "family", "colour", "metal", "gloss")


@dataclass(frozen=True)
class EvalPrompt:
    """A prompt and its expectations (None: the prompt does not ask)."""

    id: str
    prompt: str
    family: str | None
    colour: str | None
    metal: str | None
    gloss: str | None


def parse_prompt(entry: dict, where: str) -> EvalPrompt:
    """One line's object -> EvalPrompt; ValueError naming `where` and the bad field."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_FIELDS))
    missing = [f for f in _FIELDS if f not in entry]
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {unknown} / missing fields {missing}")
    for key in ("id", "prompt"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ValueError(f"{where}: {key} must be a non-empty string, got {entry[key]!r}")
    allowed = {"family": tuple(FAMILIES), "colour": COLOURS, "metal": METAL_WORDS, "gloss": GLOSS_WORDS}
    for key, options in allowed.items():
        if entry[key] is not None and entry[key] not in options:
            raise ValueError(f"{where}: {key} {entry[key]!r} is not null or one of {', '.join(options)}")
    return EvalPrompt(**{k: entry[k] for k in _FIELDS})


def load_prompts(path: str | Path = DEFAULT_PROMPTS) -> list[EvalPrompt]:
    """Read and check a prompt file (JSON lines; blank lines skipped); ids must be unique."""
    path = Path(path)
    prompts: list[EvalPrompt] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        prompts.append(parse_prompt(entry, f"{path}:{n}"))
    ids = [p.id for p in prompts]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate prompt ids {dupes}")
    if not prompts:
        raise ValueError(f"{path} holds no prompts")
    return prompts
