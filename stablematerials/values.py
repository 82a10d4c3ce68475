"""Values people type: whole numbers, numbers, switches, sizes and names, each checked with one message that names
the field and the bad value. The CLI, the web UI's form, batch prompt files and the typed request all use these."""

from __future__ import annotations

import math
import re
from typing import Any

_WHOLE = re.compile(r"\s*[+-]?\d+\s*")
_SIZE = re.compile(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


def parse_int(field: str, value: Any, low: int | None = None, high: int | None = None, strict: bool = False) -> int:
    """A whole number in [low, high] (unbounded where None) from an int, a whole float (a form's 4.0) or a decimal
    string; `strict`: from an int only (a typed API, where 4.0 or "4" is a mistake)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif strict:
        number = None
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value):
        number = int(value)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        bounds = f" from {low} to {high}" if low is not None and high is not None else ""
        bounds = bounds or (f" >= {low}" if low is not None else f" <= {high}" if high is not None else "")
        raise ValueError(f"{field} must be a whole number{bounds}, got {_shown(value)}")
    return number


def parse_float(
    field: str, value: Any, low: float = -math.inf, high: float = math.inf, strict: bool = False
) -> float:
    """A finite number in [low, high] from a number or a string; `strict`: from a number only."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and not strict:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        bounds = f" from {low:g} to {high:g}" if math.isfinite(low) and math.isfinite(high) else ""
        raise ValueError(f"{field} must be a number{bounds}, got {_shown(value)}")
    return number


def parse_bool(field: str, value: Any) -> bool:
    """true/false, yes/no, 1/0, on/off (any case) or a boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{field} must be true or false, got {_shown(value)}")


def parse_text(field: str, value: Any) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty text, got {_shown(value)}")
    return value.strip()


def parse_size(field: str, value: Any, multiple: int = 8) -> tuple[int, int]:
    """A size in pixels, N (square) or WxH ('768x512'), each side a positive multiple of `multiple` -> (height, width).

    The upper bound is the caller's (`Limits.max_size`): it depends on the machine, not on the syntax."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{field} must be N or WxH in pixels (e.g. 512 or 768x512), got {_shown(value)}")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) else width
    for label, side in (("width", width), ("height", height)):
        if side <= 0 or side % multiple:
            raise ValueError(f"{field}: {label} must be a positive multiple of {multiple} pixels, got {side}")
    return height, width


def slug(text: str, limit: int = 48, lower: bool = True, fallback: str = "material") -> str:
    """A name that is safe as a file or folder name on every system: letters, digits, '.', '_' and '-', other runs
    of characters as one '_', no leading or trailing '.', '_' or '-' (never hidden), at most `limit` characters.

    `lower=True` for names made from prompts ('Mossy Cobblestone' -> 'mossy_cobblestone'); `lower=False` for names a
    user chose ('Bricks076' stays as it is, as ambientCG spells its files)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text.lower() if lower else text).strip("._-")
    return clean[:limit].rstrip("._-") or fallback


def _shown(value: Any) -> str:
    """A value as the message shows it: short, quoted like Python's repr."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
