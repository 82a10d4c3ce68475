"""The web UI server's options, shared by `stablematerials app` and `python app.py`, and the loopback check that
decides what a server reachable from other computers may do."""

from __future__ import annotations

import argparse
import ipaddress


def add_server_arguments(p: argparse.ArgumentParser) -> None:
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


def check_server_options(args: argparse.Namespace) -> None:
    """ValueError naming the first bad option (checked before the page and gradio load)."""
    if args.max_queue < 1:
        raise ValueError(f"--max-queue must be at least 1, got {args.max_queue}")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}")
    if args.max_size < 8 or args.max_size % 8:
        raise ValueError(f"--max-size must be a positive multiple of 8, got {args.max_size}")
    if args.max_variations < 1:
        raise ValueError(f"--max-variations must be at least 1, got {args.max_variations}")


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this computer."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
