"""`stablematerials app`: start the web UI (`stablematerials.webui`, which needs the `app` extra: gradio).

The options are the server's (`stablematerials.studio.options`, shared with `python app.py`); the page is imported
only when the command runs, so that the rest of the library never imports gradio.
"""

from __future__ import annotations

import argparse
import importlib.util

from ..studio.options import add_server_arguments, check_server_options

HELP = "start the web UI for artists (same as `python app.py` in a checkout)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_server_arguments(p)


def run(args: argparse.Namespace) -> int:
    check_server_options(args)
    if importlib.util.find_spec("gradio") is None:
        raise ValueError('the web UI needs gradio: pip install "stablematerials[app]"')
    from ..webui import serve

    return int(serve(args) or 0)
