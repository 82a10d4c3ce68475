"""`stablematerials batch`: many materials from a prompt file or a folder of images, resumable (one process).

For several processes or GPUs use the same options with `accelerate launch ... -m pipelines.batch`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "generate a material for every line of a prompt file (.txt/.csv/.jsonl) or image of a folder; resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompts", type=Path, help="prompt file (.txt one prompt a line, .csv, .jsonl) or folder of images")
    p.add_argument("--out", required=True, type=Path, help="output folder (one material folder per item)")
    p.add_argument("--model", help="pipeline folder or hub id (default: the embedded default model)")
    p.add_argument(
        "--student",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the 4-step student UNet (unet_lcm; default: when the model has one)",
    )
    items = p.add_argument_group("defaults for items that do not set them")
    items.add_argument("--steps", type=int, help="denoising steps (default: 4 for a student, 50 otherwise)")
    items.add_argument("--guidance", type=float, default=7.5, help="guidance scale (default 7.5)")
    items.add_argument("--size", help="N or WxH in pixels, multiples of 8 (default: the model's training size)")
    items.add_argument("--tileable", action=argparse.BooleanOptionalAction, default=True, help="seamless (default on)")
    items.add_argument("--negative", help="negative prompt")
    items.add_argument("--variations", type=int, default=1, help="materials per item (folders <name>_v1, _v2, ...)")
    items.add_argument("--seed", type=int, default=0, help="base seed for items without their own (default 0)")
    out = p.add_argument_group("output")
    out.add_argument(
        "--naming", default="plain", choices=["plain", "ambientcg", "polyhaven"], help="file naming preset"
    )
    out.add_argument("--normal", default="opengl", choices=["opengl", "directx", "both"], help="normal map convention")
    out.add_argument("--bit-depth", type=int, default=16, choices=[8, 16], help="height/normal PNG bit depth")
    out.add_argument("--orm", action="store_true", help="also write a packed ORM texture per material")
    out.add_argument("--glb", action="store_true", help="also write a .glb (material on a plane) per material")
    out.add_argument("--preview-size", type=int, default=256, help="preview.png render size, 0 for none (default 256)")
    run = p.add_argument_group("run")
    run.add_argument("--max-items", type=int, help="generate at most this many materials (per process), then stop")
    run.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is available")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """A `BatchConfig` from parsed arguments; raises ValueError for bad values."""
    from ..batch import BatchConfig, OutputOptions
    from ..generation import MAX_SEED, GenerationRequest, local_limits
    from ..values import parse_int, parse_size

    height, width = parse_size("--size", args.size) if args.size else (None, None)
    template = GenerationRequest(
        negative_prompt=args.negative or "",
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
        tileable=args.tileable,
        variations=args.variations,
        model=args.model,
        variant={None: "auto", True: "student", False: "teacher"}[args.student],
        naming=args.naming,
        normal_convention=args.normal,
        bit_depth=args.bit_depth,
    )
    limits = local_limits()
    template.validate_settings(limits)
    parse_int("--seed", args.seed, 0, MAX_SEED)
    parse_int("--preview-size", args.preview_size, 0, 4096)
    if args.max_items is not None:
        parse_int("--max-items", args.max_items, 0, 2**62)
    if not args.prompts.exists():
        raise ValueError(f"prompt source {str(args.prompts)!r} does not exist")
    return BatchConfig(
        prompts=args.prompts,
        out_dir=args.out,
        template=template,
        base_seed=args.seed,
        output=OutputOptions(orm=args.orm, glb=args.glb, preview_size=args.preview_size),
        limits=limits,
        max_items=args.max_items,
        progress=not args.no_progress,
    )


def report_line(summary: dict, out_dir: Path) -> str:
    """One line for the terminal: counts by status and where the summary is."""
    c = summary["counts"]
    return (
        f"{summary['total']} materials: {c['generated']} generated, {c['skipped']} already done, "
        f"{c['failed']} failed, {c['pending']} pending; summary in {out_dir / 'summary.json'}"
    )


def run(args: argparse.Namespace) -> int:
    from ..batch import exit_code, run_batch

    config = config_from_args(args)
    summary = run_batch(config, device="cpu" if args.cpu else None)
    print(report_line(summary, config.out_dir))
    for row in summary["items"]:
        if row["status"] == "failed":
            print(f"failed: {row['name']}: {row['reason']}")
    return exit_code(summary)
