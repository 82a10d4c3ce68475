"""Helpers shared by the web UI tests: a tiny model folder with a student UNet, and the app on a loopback port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


def save_tiny_student_model(folder: Path) -> Path:
    """A tiny random pipeline saved like the default model: teacher UNet, a 4-step student in `unet_lcm/` and a
    photo-capture model in `capture/`."""
    from stablematerials.tiny import tiny_capture_pipeline, tiny_pipeline, tiny_unet

    tiny_pipeline(seed=0).save_pretrained(folder)
    tiny_unet(seed=1, student=True).save_pretrained(folder / "unet_lcm")
    tiny_capture_pipeline(0).save_pretrained(folder / "capture")
    return folder


def write_photo(path: Path, size: int = 40) -> Path:
    """A small seeded RGB picture to use as an image prompt."""
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(engine, max_queue: int = 4) -> Iterator[str]:
    """Serve `stablematerials.webui.build_demo(engine)` on a free loopback port in this process; yields the page URL."""
    from stablematerials.webui import build_demo

    demo = build_demo(engine)
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
        share=False, max_file_size="2mb", ssr_mode=False,
    )  # fmt: skip
    try:
        yield url
    finally:
        demo.close()
