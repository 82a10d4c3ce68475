"""Two trained models side by side: how close each one's materials are to every procedural family's real maps.

    python -m benchmarks.compare_models --a runs/lcm/model --b runs2/lcm/model --data data/procedural \
        --labels "v1,v2" --work runs/bench_compare

For every family (or `--families`), both models generate `--per-family` materials from the family's test-split
captions at the same seeds (teacher UNet, `--steps` DDIM steps, guidance `--guidance`); each set is compared with
the family's test materials by `map_distribution_distance` (per-map 1-D Wasserstein of pixel values, lower is
closer). Prompt adherence shows here: a model that draws wood for "white marble" is far from marble's maps.
Prints a table (per family and map, and the mean over families) and writes WORK/compare_models.json and .md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.family_eval import distance_table, family_distances, write_report

from stablematerials.material import MAP_NAMES
from training.data import discover_materials


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", type=Path, required=True, help="first pipeline folder (the reference)")
    p.add_argument("--b", type=Path, required=True, help="second pipeline folder")
    p.add_argument("--labels", default="A,B", help="names of the two models in the table (comma-separated)")
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (prompts and ground truth)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_compare"), help="where the results are written")
    p.add_argument("--families", default="", help="only these families (comma-separated; default all)")
    p.add_argument("--per-family", type=int, default=6, help="materials per family and model")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--size", type=int, default=64, help="output size (the models' training crop)")
    p.add_argument("--resolution", type=int, default=128, help="ground truth is resized to this")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != 2 or len(set(labels)) != 2:
        raise SystemExit(f"--labels needs two different names, got {args.labels!r}")
    for folder in (args.a, args.b):
        if not (folder / "model_index.json").is_file():
            raise SystemExit(f"{folder} is not a pipeline folder (no model_index.json)")
    split = "test" if (args.data / "test").is_dir() else "val"
    known = sorted({r.family for r in discover_materials(args.data, split) if r.family})
    families = [f for f in args.families.split(",") if f] or known
    missing = sorted(set(families) - set(known))
    if missing:
        raise SystemExit(f"families {missing} have no {split} materials in {args.data} (it has {known})")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = family_distances(dict(zip(labels, (args.a, args.b))), args.data, families, per_family=args.per_family,
                               steps=args.steps, guidance=args.guidance, size=args.size, resolution=args.resolution)  # fmt: skip
    table = distance_table(results, {"test": families}, labels)
    means = {label: {m: float(np.mean([results[f][label][m] for f in families])) for m in MAP_NAMES} for label in labels}
    summary = "\n".join(
        [f"| mean over {len(families)} families | {m} | {means[labels[0]][m]:.4f} | {means[labels[1]][m]:.4f} | "
         f"{100 * (means[labels[1]][m] - means[labels[0]][m]) / max(means[labels[0]][m], 1e-9):+.1f}% |" for m in MAP_NAMES]
    )  # fmt: skip
    budget = (f"{labels[0]} = {args.a}, {labels[1]} = {args.b}; {args.per_family} materials per family, {args.size} px, "
              f"teacher UNet, {args.steps} DDIM steps, guidance {args.guidance}; {time.perf_counter() - t0:.0f} s")  # fmt: skip
    print(write_report(args.work, "compare_models", "Two models, every family", budget, results, table + "\n" + summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
