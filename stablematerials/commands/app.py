"""`stablematerials app`: start the web UI (`app.py` of the source checkout).

The page itself lives in `app.py` at the repository root, beside the package, so that the library never imports
gradio. This module only defines the options (shared with `python app.py`) and loads `app.py` by path when run.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import sys
from pathlib import Path
from types import ModuleType

HELP = "start the web UI for artists (same as `python app.py`)"
APP_FILE = Path(__file__).resolve().parents[2] / "app.py"
MODULE_NAME = "stablematerials_app"  # the name app.py is imported under


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="pipeline folder to offer first (default: the embedded default model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--max-queue", type=int, default=16,
                   help="requests that may wait; later ones are told the server is busy (default 16)")
    p.add_argument("--max-size", type=int, default=1024, help="largest resolution in pixels per side (default 1024)")
    p.add_argument("--max-variations", type=int, default=4, help="most materials per request (default 4)")
    p.add_argument("--max-upload", default="10mb", help="largest image upload, e.g. 10mb (default 10mb)")
    p.add_argument("--model-folders", action=argparse.BooleanOptionalAction, default=None,
                   help="let users load other local model folders (default: only when bound to loopback, no share)")


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this computer."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_app_module(path: Path = APP_FILE) -> ModuleType:
    """Import `app.py` from the checkout by its path (it is not part of the installed package)."""
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    if not path.is_file():
        raise ValueError(
            f"the web UI file {path} is missing; it ships with the source checkout: run `python app.py` there"
        )
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for a path importlib cannot handle
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `import` does: gradio inspects the module of the page's classes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


def run(args: argparse.Namespace) -> int:
    return int(load_app_module().serve(args) or 0)
