"""Does fine-tuning on a few of a user's materials bring a model to their look? Before/after on the same metric.

    python -m benchmarks.finetune --base runs/bench_semi/ldm_annotated/model --data runs/bench_semi/data \
        --family marble --control bricks --n-train 8 --steps 400

Protocol:
1. "The user's materials": `--n-train` materials of `--family` from the dataset's training split, copied into
   WORK/my_materials as a plain folder of material folders with their captions (what `training.finetune` reads).
   Pick a family the base model was not trained on (the semi-supervised benchmark's annotated-only model never saw
   marble or rusty_metal), so the change is the fine-tuning's doing.
2. `training.finetune` with its defaults (LoRA rank 8, EMA), `--steps` teacher steps, at the base's crop size.
3. Base and fine-tuned models generate from the test-split captions of `--family` and of `--control` (a family
   the base knows: it should not get worse) at fixed seeds; each set is compared with the test materials of its
   family by `map_distribution_distance` (per-map 1-D Wasserstein, lower is closer).

Prints a table and the wall time, writes WORK/finetune.json and WORK/finetune.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.family_eval import distance_table, family_distances, write_report

from training.data import discover_materials


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="base pipeline folder with a teacher unet/")
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (user materials, prompts, ground truth)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_finetune"))
    p.add_argument("--family", default="marble", help="the user's materials come from this family")
    p.add_argument("--control", default="bricks", help="a family the base model knows (should not get worse)")
    p.add_argument("--n-train", type=int, default=8, help="how many materials the user has")
    p.add_argument("--steps", type=int, default=400, help="fine-tuning (teacher) steps")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--eval-per-family", type=int, default=8)
    p.add_argument("--eval-steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    return p.parse_args(argv)


def user_folder(data: Path, family: str, n: int, folder: Path) -> int:
    """Copy `n` training materials of `family` into a plain folder with a captions.jsonl."""
    if (folder / "captions.jsonl").is_file():
        return len((folder / "captions.jsonl").read_text().splitlines())
    records = discover_materials(data, "train", families=[family])[:n]
    if len(records) < n:
        raise SystemExit(f"only {len(records)} {family} materials in {data}/train, asked for {n}")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for r in records:
        shutil.copytree(r.folder, tmp / r.name)
    (tmp / "captions.jsonl").write_text("".join(json.dumps({"name": r.name, "caption": r.caption}) + "\n" for r in records))
    tmp.rename(folder)
    return n


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    from training import finetune
    from training.config import FinetuneConfig, parse_config

    args.work.mkdir(parents=True, exist_ok=True)
    n = user_folder(args.data, args.family, args.n_train, args.work / "my_materials")
    cfg = parse_config(FinetuneConfig, [
        f"--model={args.base}", f"--data.root={args.work / 'my_materials'}", f"--output_dir={args.work / 'run'}",
        f"--data.resolution={args.resolution}", f"--data.crop_size={args.crop}", f"--train.max_steps={args.steps}",
        f"--lora.rank={args.lora_rank}", "--resume=latest", "--train.log_every=50",
    ])  # fmt: skip
    t0 = time.perf_counter()
    tuned = finetune.run(cfg)
    seconds = time.perf_counter() - t0
    if tuned is None:
        raise SystemExit("fine-tuning stopped early")
    labels = ["base", "fine-tuned"]
    results = family_distances({"base": args.base, "fine-tuned": tuned}, args.data, [args.family, args.control],
                               per_family=args.eval_per_family, steps=args.eval_steps, guidance=args.guidance,
                               size=args.crop, resolution=args.resolution)  # fmt: skip
    text = distance_table(results, {f"fine-tuned on {n}": [args.family], "control": [args.control]}, labels)
    budget = (f"{n} {args.family} materials, {args.steps} steps, LoRA rank {args.lora_rank}, crop {args.crop}, "
              f"{args.eval_per_family} samples per family; fine-tuning wall time {seconds:.0f} s (incl. packaging)")  # fmt: skip
    report = write_report(args.work, "finetune", "Fine-tuning benchmark", budget, results, text)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
