"""`stablematerials export`: convert a material folder to glTF binary, MaterialX or another naming preset."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert a material folder to .glb, .mtlx or an ambientCG / Poly Haven / plain texture folder"

FOLDER_FORMATS = ("ambientcg", "polyhaven", "plain")
FORMATS = ("glb", "mtlx") + FOLDER_FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("material_dir", type=Path, help="a material folder (any known naming layout)")
    parser.add_argument("--to", required=True, choices=FORMATS, help="output format")
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


def _reject(args: argparse.Namespace, options: tuple[str, ...], fmt: str) -> None:
    """Raise ValueError for options given that do not apply to the chosen format."""
    given = [o for o in options if getattr(args, o) not in (None, False)]
    if given:
        names = ", ".join("--" + o.replace("_", "-") for o in given)
        raise ValueError(f"{names} do(es) not apply to --to {fmt}")


def run(args: argparse.Namespace) -> int:
    from ..export import export_glb, export_mtlx, export_texture_set
    from ..io import load_material

    glb_options = ("shape", "tiling", "size_m", "displacement", "texture_size")
    folder_options = ("normal", "bit_depth", "orm", "overwrite")
    if not args.material_dir.is_dir():
        raise ValueError(f"{str(args.material_dir)!r} is not a material folder")
    if args.to == "mtlx":
        _reject(args, glb_options + folder_options, "mtlx")
        out = export_mtlx(args.material_dir, args.out)
    elif args.to == "glb":
        _reject(args, folder_options, "glb")
        if args.out.suffix.lower() != ".glb":
            raise ValueError(f"--out for glb must end in .glb, got {str(args.out)!r}")
        out = export_glb(
            load_material(args.material_dir),
            args.out,
            shape=args.shape or "plane",
            size_m=1.0 if args.size_m is None else args.size_m,
            tiling=1 if args.tiling is None else args.tiling,
            displacement=0.0 if args.displacement is None else args.displacement,
            texture_size=args.texture_size,
        )
    else:
        _reject(args, glb_options, args.to)
        out = export_texture_set(
            load_material(args.material_dir),
            args.out,
            naming=args.to,
            normal_convention=args.normal or "opengl",
            bit_depth=16 if args.bit_depth is None else args.bit_depth,
            orm=args.orm,
            overwrite=args.overwrite,
        )
    print(out)
    return 0
