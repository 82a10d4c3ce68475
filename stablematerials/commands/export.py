"""`stablematerials export`: convert a material folder to a registered export format (`stablematerials.export`'s
`EXPORT_FORMATS`): glTF binary, MaterialX, or a texture folder in another naming preset."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert a material folder to .glb, .mtlx or an ambientCG / Poly Haven / plain texture folder"

# The command's options -> the export option each sets; which formats take it is the registry's answer.
OPTIONS = {
    "normal": "normal_convention", "bit_depth": "bit_depth", "orm": "orm", "overwrite": "overwrite",
    "shape": "shape", "tiling": "tiling", "size_m": "size_m", "displacement": "displacement",
    "texture_size": "texture_size",
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..export import EXPORT_FORMATS

    formats = "; ".join(f"{f.name}: {f.label}" for f in EXPORT_FORMATS.values())
    parser.add_argument("material_dir", type=Path, help="a material folder (any known naming layout)")
    parser.add_argument("--to", required=True, choices=list(EXPORT_FORMATS), help=f"output format ({formats})")
    parser.add_argument("--out", required=True, type=Path, help="output file (.glb/.mtlx) or folder")
    folder = parser.add_argument_group("texture folders (ambientcg, polyhaven, plain)")
    folder.add_argument(
        "--normal", choices=("opengl", "directx", "both"), help="normal map convention (default opengl)"
    )
    folder.add_argument("--bit-depth", type=int, choices=(8, 16), help="bit depth of normal and height (default 16)")
    folder.add_argument(
        "--orm", action="store_true", help="also write a packed ORM texture (R AO/white, G rough, B metal)"
    )
    folder.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    glb = parser.add_argument_group("glb")
    glb.add_argument("--shape", choices=("plane", "sphere"), help="geometry wearing the material (default plane)")
    glb.add_argument("--tiling", type=int, help="how many times the material repeats across the shape (default 1)")
    glb.add_argument("--size-m", type=float, help="size of the shape in metres (default 1)")
    glb.add_argument("--displacement", type=float, help="displace a subdivided plane by height, in metres (default 0)")
    glb.add_argument("--texture-size", type=int, help="resize the embedded textures to this many pixels")


def export_options(args: argparse.Namespace, fmt) -> dict:
    """The export options the command line sets; ValueError naming those the format does not take."""
    given = {flag: getattr(args, flag) for flag in OPTIONS if getattr(args, flag) not in (None, False)}
    refused = [flag for flag in given if OPTIONS[flag] not in fmt.options]
    if refused:
        names = ", ".join("--" + flag.replace("_", "-") for flag in refused)
        raise ValueError(f"{names} do(es) not apply to --to {fmt.name}")
    return {OPTIONS[flag]: value for flag, value in given.items()}


def run(args: argparse.Namespace) -> int:
    from ..export import get_format

    fmt = get_format(args.to)
    options = export_options(args, fmt)
    if fmt.suffix is not None and args.out.suffix.lower() != fmt.suffix:
        raise ValueError(f"--out for {fmt.name} must end in {fmt.suffix}, got {str(args.out)!r}")
    print(fmt.write(args.material_dir, args.out, **options))
    return 0
