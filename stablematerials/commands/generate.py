"""`stablematerials generate`: a material from a text or image prompt."""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

HELP = "generate a tileable PBR material from a text or image prompt"


def parse_size(text: str) -> tuple[int, int]:
    """'512' or '768x512' (width x height) -> (height, width)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise ValueError(f"--size must be N or WxH, got {text!r}")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    return h, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help='text prompt, e.g. "mossy cobblestone path"')
    p.add_argument("--image", help="image prompt (a photo or texture file) instead of text")
    p.add_argument("--out", required=True, help="output folder (with -n > 1: a folder of material folders)")
    p.add_argument("--model", help="pipeline folder or hub id (default: the embedded default model)")
    p.add_argument("--student", action=argparse.BooleanOptionalAction, default=None,
                   help="use the 4-step student UNet (default: when the model has one)")
    p.add_argument("--steps", type=int, help="denoising steps (default: 4 for a student, 50 otherwise)")
    p.add_argument("--guidance", type=float, default=7.5, help="guidance scale (default 7.5)")
    p.add_argument("--negative", help="negative prompt")
    p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    p.add_argument("--size", default=None,
                   help="N or WxH in pixels, multiples of 8 (default: the model's training size, at least 256)")
    p.add_argument("--tileable", action=argparse.BooleanOptionalAction, default=True, help="seamless output (default on)")
    p.add_argument("--patched", action=argparse.BooleanOptionalAction, default=None,
                   help="windowed attention for sizes above the training size (default: automatic)")
    p.add_argument("-n", "--num", type=int, default=1, help="number of materials (seeds seed, seed+1, ...)")
    p.add_argument("--naming", default="plain", choices=["plain", "ambientcg", "polyhaven"], help="file naming preset")
    p.add_argument("--normal", default="opengl", choices=["opengl", "directx", "both"], help="normal map convention")
    p.add_argument("--bit-depth", type=int, default=16, choices=[8, 16], help="height/normal PNG bit depth")
    p.add_argument("--overwrite", action="store_true", help="replace existing output folders")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..io import save_material
    from ..loading import default_output_size, load_pipeline
    from ..metrics import max_seam_score

    if not args.prompt and not args.image:
        raise ValueError("give a text prompt or --image PATH")
    if args.prompt and args.image:
        raise ValueError("give either a text prompt or --image, not both")
    if args.num < 1:
        raise ValueError(f"-n must be at least 1, got {args.num}")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    targets = [out] if args.num == 1 else [out / f"{k:02d}" for k in range(args.num)]
    if not args.overwrite:
        for t in targets:
            if t.exists():
                raise FileExistsError(f"{t} already exists (use --overwrite to replace it)")
    if args.image and not Path(args.image).is_file():
        raise ValueError(f"--image {args.image!r} is not a file")
    size = parse_size(args.size) if args.size else None
    for label, value in zip(("height", "width"), size or ()):
        if value <= 0 or value % 8:
            raise ValueError(f"{label} must be a positive multiple of 8, got {value}")

    pipe = load_pipeline(args.model, student=args.student)
    sample = pipe.unet.config.sample_size * pipe.vae_scale_factor
    default = default_output_size(sample)
    height, width = size if size else (default, default)
    patched = args.patched if args.patched is not None else max(height, width) > sample
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    generators = [torch.Generator().manual_seed(seed + k) for k in range(args.num)]
    prompt = [args.prompt] * args.num if args.prompt else None
    image = [args.image] * args.num if args.image else None
    result = pipe(
        prompt=prompt,
        image=image,
        negative_prompt=args.negative,
        height=height,
        width=width,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        generator=generators,
        tileable=args.tileable,
        patched=patched,
    )
    for k, (material, target) in enumerate(zip(result.images, targets)):
        if args.image:
            material.metadata["prompt"] = f"<image:{Path(args.image).name}>"
        save_material(
            material, target, naming=args.naming, normal_convention=args.normal, bit_depth=args.bit_depth,
            overwrite=args.overwrite, name=_slug(args.prompt or Path(args.image).stem),
        )  # fmt: skip
        print(f"wrote {target}  (seed {seed + k}, worst seam score {max_seam_score(material):.2f})")
    return 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "material"
