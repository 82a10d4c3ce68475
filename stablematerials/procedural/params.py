"""Typed, validated parameters for procedural families: frozen dataclasses whose fields declare their ranges.

Declare a field with `number(default, lo, hi)` or `choice(default, options)`; `Params.__post_init__` then checks
types and ranges and raises a ValueError naming the field. `sample(cls, rng)` draws a random valid instance and
`from_strings(cls, {...})` parses command-line values by the field's type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

import numpy as np

from ..values import parse_bool, parse_float, parse_int

P = TypeVar("P", bound="Params")


def number(default: float, lo: float, hi: float, *, sample: tuple[float, float] | None = None, step: int = 1, doc: str = "") -> Any:
    """A numeric field in [lo, hi]; `sample` narrows the range random draws use; ints must be multiples of `step`."""
    return field(default=default, metadata={"range": (lo, hi), "sample": sample or (lo, hi), "step": step, "doc": doc})


def choice(default: str, options: tuple[str, ...], *, doc: str = "") -> Any:
    """A string field restricted to `options`."""
    return field(default=default, metadata={"choices": tuple(options), "doc": doc})


def flag(default: bool, *, doc: str = "") -> Any:
    """A boolean field."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Params:
    """Base class of every family's parameters (subclasses are frozen dataclasses built from the helpers above)."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = hints[f.name]
            object.__setattr__(self, f.name, _check_value(type(self).__name__, f, kind, value))
        self.check()

    def check(self) -> None:
        """Cross-field rules of a family (override; raise ValueError naming the fields)."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the parameters, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def create(cls: type[P], **values: Any) -> P:
        """Like the constructor, but an unknown parameter name is a ValueError naming it and the valid ones."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
                f"valid: {', '.join(cls.field_names())}"
            )
        return cls(**values)

    @classmethod
    def from_strings(cls: type[P], values: dict[str, str]) -> P:
        """Parse command-line strings ("8", "0.1", "true", "running") by each field's type."""
        hints = get_type_hints(cls)
        names = set(cls.field_names())
        parsed: dict[str, Any] = {}
        for key, text in values.items():
            if key not in names:
                return cls.create(**values)  # raises the unknown-name error
            parsed[key] = _parse(key, hints[key], text)
        return cls.create(**parsed)

    @classmethod
    def sample(cls: type[P], rng: np.random.Generator) -> P:
        """A random valid instance: choices uniform, numbers uniform in their sample range (floats to 3 decimals)."""
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if "choices" in f.metadata:
                values[f.name] = str(f.metadata["choices"][int(rng.integers(len(f.metadata["choices"])))])
            elif kind is bool:
                values[f.name] = bool(rng.random() < 0.5)
            elif kind is int:
                lo, hi = f.metadata["sample"]
                step = f.metadata["step"]
                k = int(rng.integers(-(-int(lo) // step), int(hi) // step + 1))
                values[f.name] = k * step
            else:
                lo, hi = f.metadata["sample"]
                values[f.name] = round(float(rng.uniform(lo, hi)), 3)
        return cls(**cls.adjust_sample(values, rng))

    @classmethod
    def adjust_sample(cls, values: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Make independently drawn values plausible together (override; the default keeps them)."""
        return values

    @classmethod
    def describe(cls) -> list[str]:
        """One line per parameter: name, type, default and range or choices (for `--list`)."""
        hints = get_type_hints(cls)
        lines = []
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if "choices" in f.metadata:
                allowed = "|".join(f.metadata["choices"])
            elif kind is bool:
                allowed = "true|false"
            else:
                lo, hi = f.metadata["range"]
                allowed = f"{lo}..{hi}" + (f" (multiple of {f.metadata['step']})" if f.metadata["step"] > 1 else "")
            doc = f"  {f.metadata['doc']}" if f.metadata.get("doc") else ""
            lines.append(f"{f.name}: {kind.__name__} = {f.default!r}  [{allowed}]{doc}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _check_value(owner: str, f: dataclasses.Field, kind: type, value: Any) -> Any:
    """Validate one field value (and coerce ints to float for float fields); ValueError naming the field."""
    name = f"{owner}.{f.name}"
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if kind is str:
        choices = f.metadata.get("choices")
        if not isinstance(value, str) or (choices and value not in choices):
            raise ValueError(f"{name} must be one of {', '.join(choices or ())}, got {value!r}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
        step = f.metadata.get("step", 1)
        if value % step:
            raise ValueError(f"{name} must be a multiple of {step}, got {value}")
    else:
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    lo, hi = f.metadata["range"]
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _parse(key: str, kind: type, text: str) -> Any:
    """Parse one command-line value by type; ValueError naming the key."""
    field = f"parameter {key}"
    if kind is bool:
        return parse_bool(field, text)
    if kind is int:
        return parse_int(field, text)
    if kind is float:
        return parse_float(field, text)
    return text