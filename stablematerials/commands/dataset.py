"""`stablematerials dataset`: write a split, captioned dataset of procedural materials (resumable, multi-process)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write N procedural materials as a train/val/test dataset with captions (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset root folder")
    parser.add_argument("-n", type=int, required=True, help="number of materials (seeds SEED .. SEED+N-1)")
    parser.add_argument("--size", type=int, default=256, help="width and height in pixels (default 256)")
    parser.add_argument("--families", default="", help="comma-separated families (default: all)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of seeds for validation (0.05)")
    parser.add_argument("--test-fraction", type=float, default=0.05, help="share of seeds for test (0.05)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2: one per core)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from ..defaults import check_procedural_size
    from ..procedural.dataset import write_dataset

    check_procedural_size(args.size)

    families = [f.strip() for f in args.families.split(",") if f.strip()] or None
    step = max(1, args.n // 10)

    def progress(done: int, total: int) -> None:
        if done == total or done % step == 0:
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    report = write_dataset(
        args.out,
        args.n,
        size=args.size,
        families=families,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        workers=args.workers,
        seed=args.seed,
        progress=progress,
    )
    counts = ", ".join(f"{split} {n}" for split, n in report.counts.items())
    print(
        f"wrote {report.written} materials ({report.skipped} already done) in {report.seconds:.1f} s: "
        f"{report.rate:.1f} materials/s; {counts} -> {report.root}"
    )
    return 0
