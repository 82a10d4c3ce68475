"""Put a trained capture model (photo -> its own maps) into a pipeline folder, beside its text model:

    python -m training.add_capture_model --capture runs/capture/run/model --model assets/default-model

`--capture` is the `model/` folder written by `training/train_capture.py`. It becomes the model's `capture/`
subfolder (weights as float16 by default: half the bytes; the CPU loader computes in float32), where
`stablematerials capture`, the web UI's photo tab and `load_capture_pipeline()` find it. The result is loaded and
run once on a synthetic photo as a check.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stablematerials.capture import add_capture_model

logger = logging.getLogger("training.add_capture_model")


def check(model: Path) -> str:
    """Load the capture model from `model` the way users do and read one photo; a one-line summary."""
    from stablematerials.loading import load_capture_pipeline

    pipe = load_capture_pipeline(model)
    photo = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    start = time.perf_counter()
    material = pipe(photo, max_size=128).images[0]
    seconds = time.perf_counter() - start
    return f"{sum(p.numel() for p in pipe.unet.parameters()) / 1e6:.2f}M parameters; a photo read in {seconds:.2f} s -> {material.size}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capture", required=True, type=Path, help="capture model folder (train_capture's OUTPUT/model)")
    p.add_argument("--model", required=True, type=Path, help="pipeline folder that gets it as capture/")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored weight type")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        add_capture_model(args.model, args.capture, getattr(torch, args.dtype))
        print(f"added the capture model to {args.model}: {check(args.model)}")
    except ValueError as e:
        print(f"add_capture_model: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.add_capture_model"))
