"""The 4-step latent-consistency student against the 50-step guided teacher: speed ratio and quality gap.

    python -m benchmarks.student --model runs/lcm/model --data data/procedural --size 64 --count 16

`--model` is a pipeline folder with `unet/` (teacher) and `unet_lcm/` (student), as written by training.distill_lcm.
Without `unet_lcm/`, `--distill-steps N` first distils one into WORK (from `--model` as the teacher).
Both generate the same prompts (captions of the dataset's test split) at the same seeds and size; the time is the
wall time per material (after one warm-up call each); the quality is `map_distribution_distance` of each set to
the ground-truth test materials of those prompts (lower is closer) and the student-minus-teacher gap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stablematerials.io import load_material
from stablematerials.material import MAP_NAMES, Material
from stablematerials.metrics import map_distribution_distance
from stablematerials.pipeline import STUDENT_SUBFOLDER, StableMaterialsPipeline
from training.data import discover_materials


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="pipeline folder with unet/ and unet_lcm/")
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (prompts and ground truth)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_student"), help="results (and a distilled student)")
    p.add_argument("--families", default="", help="only these families (comma-separated; default all)")
    p.add_argument("--count", type=int, default=16, help="materials per model")
    p.add_argument("--size", type=int, default=64, help="output size in pixels")
    p.add_argument("--teacher-steps", type=int, default=50)
    p.add_argument("--student-steps", type=int, default=4)
    p.add_argument("--guidance", type=float, default=7.5, help="the teacher's CFG scale; the student embeds it")
    p.add_argument("--distill-steps", type=int, default=0, help="distil a student first when the model has none")
    p.add_argument("--crop", type=int, default=64, help="training crop when distilling")
    p.add_argument("--resolution", type=int, default=128, help="material resolution when distilling")
    return p.parse_args(argv)


def ensure_student(args: argparse.Namespace) -> Path:
    """The model folder with a student: `--model` itself, or a fresh distillation of it into WORK/lcm."""
    if (args.model / STUDENT_SUBFOLDER).is_dir():
        return args.model
    if args.distill_steps <= 0:
        raise SystemExit(f"{args.model} has no {STUDENT_SUBFOLDER}/; pass --distill-steps N to distil one first")
    from training import distill_lcm

    out = args.work / "lcm"
    distill_lcm.main([f"--output_dir={out}", f"--teacher={args.model}", f"--data.root={args.data}",
                      f"--data.crop_size={args.crop}", f"--data.resolution={args.resolution}",
                      f"--train.max_steps={args.distill_steps}", "--train.log_every=25", "--sample.count=1"])  # fmt: skip
    return out / "model"


def generate(pipe: StableMaterialsPipeline, prompts: list[str], steps: int, guidance: float, size: int) -> tuple[list[Material], float]:
    """Materials for the prompts (seed i for prompt i) and the mean seconds per material after a warm-up call."""
    pipe.set_progress_bar_config(disable=True)
    pipe(prompts[0], num_inference_steps=steps, guidance_scale=guidance, height=size, width=size,
         generator=torch.Generator().manual_seed(0))  # fmt: skip
    out, t0 = [], time.perf_counter()
    for i, prompt in enumerate(prompts):
        g = torch.Generator().manual_seed(20_000 + i)
        out += pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, height=size, width=size, generator=g,
                    output_type="material").images
    return out, (time.perf_counter() - t0) / len(prompts)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model = ensure_student(args)
    families = [f for f in args.families.split(",") if f] or None
    split = "test" if (args.data / "test").is_dir() else "val"
    refs = discover_materials(args.data, split, families=families)
    prompts = [refs[i % len(refs)].caption for i in range(args.count)]
    reference = [load_material(r.folder).resize(args.size) for r in refs[: max(args.count, 8)]]

    torch.set_num_threads(max(1, torch.get_num_threads()))
    teacher = StableMaterialsPipeline.from_pretrained(model)
    student = StableMaterialsPipeline.from_pretrained(model, student=True)
    t_mats, t_sec = generate(teacher, prompts, args.teacher_steps, args.guidance, args.size)
    s_mats, s_sec = generate(student, prompts, args.student_steps, args.guidance, args.size)
    t_dist = map_distribution_distance(t_mats, reference)
    s_dist = map_distribution_distance(s_mats, reference)

    rows = [f"| map | teacher ({args.teacher_steps} steps, CFG {args.guidance}) | student ({args.student_steps} steps) | gap |",
            "|---|---|---|---|"]  # fmt: skip
    for name in MAP_NAMES:
        rows.append(f"| {name} | {t_dist[name]:.4f} | {s_dist[name]:.4f} | {s_dist[name] - t_dist[name]:+.4f} |")
    t_mean, s_mean = float(np.mean(list(t_dist.values()))), float(np.mean(list(s_dist.values())))
    rows.append(f"| mean | {t_mean:.4f} | {s_mean:.4f} | {s_mean - t_mean:+.4f} |")
    speed = (f"{args.size} px, {len(prompts)} materials: teacher {t_sec:.3f} s, student {s_sec:.3f} s per material; "
             f"student is {t_sec / s_sec:.1f}x faster")  # fmt: skip
    report = f"# Student benchmark ({model})\n\n{speed}\n\nMap distribution distance to ground truth (lower is better)\n\n" + "\n".join(rows) + "\n"
    (args.work / "student.md").write_text(report)
    (args.work / "student.json").write_text(json.dumps(
        {"model": str(model), "size": args.size, "count": len(prompts), "teacher_seconds": t_sec, "student_seconds": s_sec,
         "speedup": t_sec / s_sec, "teacher": t_dist, "student": s_dist}, indent=2))  # fmt: skip
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
