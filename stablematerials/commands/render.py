"""`stablematerials render`: a preview image of a material folder."""

from __future__ import annotations

import argparse
import io as _bytes_io
import math
from pathlib import Path

HELP = "render a material folder as a preview PNG (sphere and plane, or one of them)"
MODES = ("preview", "plane", "sphere")


def parse_light(text: str) -> tuple[float, float, float]:
    """'x,y,z' -> three finite floats (direction towards the light: x right, y up, z towards the viewer)."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values) or not any(values):
        raise ValueError(f"--light must be three numbers x,y,z, not all zero (e.g. -0.5,0.6,1); got {text!r}")
    return values  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("material", type=Path, metavar="MATERIAL_DIR", help="material folder (any naming preset)")
    parser.add_argument("--out", type=Path, required=True, help="output PNG path")
    parser.add_argument("--size", type=int, default=256, help="height of the image in pixels (default 256)")
    parser.add_argument(
        "--light",
        default=None,
        metavar="X,Y,Z",
        help="direction towards the light, x right, y up, z towards the viewer (default: upper left; "
        "for --mode plane the default is a flash at the camera)",
    )
    parser.add_argument(
        "--mode", choices=MODES, default="preview", help="preview: sphere and plane side by side (default)"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ..io import atomic_write_bytes, load_material
    from ..render import (
        DEFAULT_LIGHT_DIRECTION,
        _light_positions_from_direction,
        render_plane,
        render_preview,
        render_sphere,
    )

    if not 8 <= args.size <= 8192:
        raise ValueError(f"--size must be between 8 and 8192, got {args.size}")
    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {args.out}")
    light = parse_light(args.light) if args.light is not None else None
    material = load_material(args.material)

    if args.mode == "preview":
        image = render_preview(material, args.size, light or DEFAULT_LIGHT_DIRECTION)
    else:
        import torch

        with torch.inference_mode():
            if args.mode == "sphere":
                pixels = render_sphere(material.to_tensors(), args.size, light or DEFAULT_LIGHT_DIRECTION)
            else:
                positions = _light_positions_from_direction(light) if light is not None else None
                pixels = render_plane(material.resize(args.size).to_tensors(), positions)
        image = Image.fromarray(np.round(pixels[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))

    buffer = _bytes_io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(args.out, buffer.getvalue())
    print(args.out)
    return 0
