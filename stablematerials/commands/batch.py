"""`stablematerials batch`: many materials from a prompt file or a folder of images, resumable (one process).

For several processes or GPUs use the same options with `accelerate launch ... -m pipelines.batch`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._request import add_request_arguments, request_from_args

HELP = "generate a material for every line of a prompt file (.txt/.csv/.jsonl) or image of a folder; resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompts", type=Path, help="prompt file (.txt one prompt a line, .csv, .jsonl) or folder of images")
    p.add_argument("--out", required=True, type=Path, help="output folder (one material folder per item)")
    items = p.add_argument_group("defaults for items that do not set them")
    out = p.add_argument_group("output")
    add_request_arguments(p, sampling=items, output=out)
    items.add_argument("--variations", type=int, default=1, help="materials per item (folders <name>_v1, _v2, ...)")
    items.add_argument("--seed", type=int, default=0, help="base seed for items without their own (default 0)")
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
    from ..defaults import MAX_SEED
    from ..generation import local_limits
    from ..values import parse_int

    template = request_from_args(args, variations=args.variations)
    limits = local_limits()
    template.validate_settings(limits)
    parse_int("--seed", args.seed, 0, MAX_SEED)
    parse_int("--preview-size", args.preview_size, 0, 4096)
    if args.max_items is not None:
        parse_int("--max-items", args.max_items, 0)
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
