"""`--help` for the training scripts, and their one-line errors.

The help is read from the config dataclasses themselves: every key (`section.key`), its type, the default the script
uses and the comment that gives the reason for it, so it never drifts from the code. `run_main` runs a script's
`main` and turns a config or data error into one line on stderr (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import os
import sys
import textwrap
import tokenize
from collections.abc import Callable
from typing import Any, get_type_hints

HELP_FLAGS = ("-h", "--help")
DEBUG_ENV = "STABLEMATERIALS_DEBUG"  # set to 1 to see the traceback of a config or data error


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


# The console commands that run each script (`stablematerials train ...`), beside `python -m training.<script>`.
COMMANDS = {
    "training.train_vae": "stablematerials train vae",
    "training.encode_latents": "stablematerials train latents",
    "training.train_ldm": "stablematerials train ldm",
    "training.distill_lcm": "stablematerials train lcm",
    "training.train_capture": "stablematerials train capture",
    "training.train_image_encoder": "stablematerials train image-encoder",
    "training.finetune": "stablematerials finetune",
}


def config_help(cls: type) -> str:
    """The help text of a script whose options are the config dataclass `cls` (its docstring names the script as
    "`python -m training.X`", optionally followed by ": what it does"; else the script is the class's module)."""
    doc = inspect.getdoc(cls) or ""
    module = doc.split("python -m ", 1)[1].split("`", 1)[0] if "python -m " in doc else cls.__module__
    about = doc.split("`:", 1)[1].strip() if "`:" in doc else ""
    options = "[--config FILE] [--KEY VALUE | --KEY=VALUE | --SECTION.KEY VALUE ...]"
    lines = [f"usage: {COMMANDS[module]} {options}"] if module in COMMANDS else []
    lines += [f"   or: python -m {module} {options}" if lines else f"usage: python -m {module} {options}"]
    lines += ["", about] if about else []
    lines += [
        "",
        "Options are the keys of the config below, on the command line or in a YAML, JSON or TOML file (--config FILE;",
        "command-line values win). Lists: a,b,c or a JSON list; optional values: none. Under `accelerate launch` the",
        "same options run on several processes or GPUs.",
        "",
        "  --config FILE  a config file (a run's config.json works too)",
    ]
    lines += _section_lines(cls, cls(), prefix="")
    return "\n".join(lines) + "\n"


def _section_lines(cls: type, instance: Any, prefix: str) -> list[str]:
    """One line per key of a config section (with its reason), then each nested section under a header."""
    hints = get_type_hints(cls)
    comments = _field_comments(cls)
    keys, sections = [], []
    for field in dataclasses.fields(cls):
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(hints[field.name]):
            sections.append((field, value))
            continue
        reason = comments.get(field.name, "")
        keys.append(f"  --{prefix}{field.name} {_type_name(hints[field.name])} = {value!r}" + (f"  # {reason}" if reason else ""))
    out = keys
    for field, value in sections:
        title = (inspect.getdoc(type(value)) or "").splitlines()[0] if inspect.getdoc(type(value)) else ""
        reason = comments.get(field.name, "")
        out += ["", f"{prefix}{field.name}: {title}" + (f" ({reason})" if reason else "")]
        out += _section_lines(type(value), value, f"{prefix}{field.name}.")
    return out


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not getattr(tp, "__args__", None) else None
    return text or str(tp).replace("typing.", "")


def _field_comments(cls: type) -> dict[str, str]:
    """Each field's reason as the source gives it: the comment after it on its line, else the comment lines just
    above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen or compiled install): keys and defaults still show
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    out: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        end = node.end_lineno or node.lineno
        trailing = [comments[n] for n in range(node.lineno, end + 1) if n in comments and n != node.lineno - 1]
        above, n = [], node.lineno - 1
        while n >= 1 and n in comments and lines[n - 1].lstrip().startswith("#"):
            above.insert(0, comments[n])
            n -= 1
        text = " ".join(c for c in trailing if c and not c.startswith("fmt:")) or " ".join(above)
        if text:
            out[node.target.id] = text
    return out


def run_main(main: Callable[[list[str] | None], int], prog: str, argv: list[str] | None = None) -> int:
    """Run a training script's `main`: a config or data error (ValueError, a missing or unreadable file) is one line
    on stderr and exit code 2; `STABLEMATERIALS_DEBUG=1` shows the traceback instead."""
    try:
        return int(main(argv) or 0)
    except (ValueError, OSError) as e:
        if os.environ.get(DEBUG_ENV):
            raise
        message = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (resume with --resume latest)", file=sys.stderr)
        return 130
