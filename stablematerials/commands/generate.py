"""`stablematerials generate`: a material from a text or image prompt."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._request import add_request_arguments
from ._request import request_from_args as shared_request

HELP = "generate a tileable PBR material from a text or image prompt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help='text prompt, e.g. "mossy cobblestone path"')
    p.add_argument("--image", help="image prompt (a photo or texture file): instead of text, or with it ('this "
                   "picture, but blue')")
    p.add_argument("--image-weight", type=float, default=None,
                   help="with both a text prompt and --image: the picture's share of the mix, 0-1 (default 0.5)")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (with -n > 1: a folder of material folders)")
    p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    p.add_argument("-n", "--num", type=int, default=1, help="number of materials (seeds seed, seed+1, ...)")
    add_request_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing material folders (never a folder of other files)")  # fmt: skip


def request_from_args(args: argparse.Namespace):
    """The `GenerationRequest` the options describe (not yet validated)."""
    from ..generation import local_limits
    from ..values import parse_int

    if not args.prompt and not args.image:
        raise ValueError("give a text prompt or --image PATH")
    if args.image_weight is not None and not (args.prompt and args.image):
        raise ValueError("--image-weight mixes a text prompt with --image; give both")
    parse_int("-n", args.num, 1, local_limits().max_variations)
    mix = {} if args.image_weight is None else {"image_weight": args.image_weight}
    return shared_request(args, prompt=args.prompt or "", image=args.image, seed=args.seed, variations=args.num, **mix)


def run(args: argparse.Namespace) -> int:
    from ..generation import generate, local_limits
    from ..io import check_output_folder, save_material
    from ..loading import check_model_steps, load_pipeline, resolve_model, variant_student

    # 1. Everything that can be checked before the model loads: the request, the model, the output folders.
    request = request_from_args(args)
    limits = local_limits()
    request.validate(limits)
    if request.steps is not None:
        check_model_steps(resolve_model(request.model), variant_student(request.variant), request.steps)
    out = Path(args.out)
    targets = [out] if request.variations == 1 else [out / f"{k:02d}" for k in range(request.variations)]
    for target in targets:
        check_output_folder(target, args.overwrite)

    # 2. Generate, then write each material folder atomically.
    pipe = load_pipeline(request.model, student=variant_student(request.variant))
    result = generate(pipe, request, limits=limits)
    for material, seed, seam, target in zip(result.materials, result.seeds, result.seam, targets):
        save_material(
            material, target, naming=request.naming, normal_convention=request.normal_convention,
            bit_depth=request.bit_depth, overwrite=args.overwrite, name=request.base_name,
        )  # fmt: skip
        worst = max(max(pair) for pair in seam.values())
        print(f"wrote {target}  (seed {seed}, worst seam score {worst:.2f})")
    return 0
