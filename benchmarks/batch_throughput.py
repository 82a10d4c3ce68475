"""Batch throughput: materials per minute with 1 and with 2 processes on this machine, side by side.

    python -m benchmarks.batch_throughput [--model PATH] [--items 8] [--size N] [--steps N]

Default model: the embedded default model when present, else a tiny random-weight pipeline (64 px, 8 steps).
Three runs: 1 process with torch's default thread count, 1 process with one thread, and 2 processes with one thread
each, started by `accelerate launch --multi_gpu` (CPU processes with gloo when there is no GPU). Two figures
per run: wall clock (start-up, model loading and the summary included) and generation only (the slowest process's
summed per-material time, preview and file writing included).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(processes: int, threads: int | None, prompts: Path, out: Path, model: Path, extra: list[str]) -> dict:
    """Run one batch (`threads`: OMP_NUM_THREADS per process, None for torch's default) and return its timings."""
    batch = ["-m", "pipelines.batch", str(prompts), "--out", str(out), "--model", str(model), "--no-progress", *extra]
    if processes == 1:
        cmd = [sys.executable, *batch]
    else:
        cmd = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), *batch,
        ]  # fmt: skip
    env = os.environ | {"HF_HUB_OFFLINE": "1"}  # cwd: the checkout, importable by -m
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        raise RuntimeError(
            f"the {processes}-process run wrote no summary:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    rows = json.loads(summary_path.read_text())["items"]
    done = [r for r in rows if r["status"] == "generated"]
    per_process: dict[int, float] = {}
    for r in done:
        per_process[r["process_index"]] = per_process.get(r["process_index"], 0.0) + r["seconds"]
    busy = max(per_process.values()) if per_process else float("nan")
    return {
        "processes": processes,
        "threads": threads or "default",
        "materials": len(done),
        "failed": sum(r["status"] == "failed" for r in rows),
        "wall_s": wall,
        "per_min_wall": 60 * len(done) / wall,
        "per_min_generation": 60 * len(done) / busy,
        "mean_s_per_material": sum(r["seconds"] for r in done) / max(1, len(done)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="pipeline folder (default: the default model, else a tiny one)")
    parser.add_argument("--items", type=int, default=8, help="materials per run (default 8)")
    parser.add_argument("--size", type=int, help="material size in pixels (default: the model's; 64 for tiny)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's; 8 for tiny)")
    args = parser.parse_args()
    if args.items < 1:
        parser.error(f"--items must be >= 1, got {args.items}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stablematerials.loading import default_model_path

    with tempfile.TemporaryDirectory(prefix="batch-throughput-") as tmp:
        tmp_dir = Path(tmp)
        model, label = args.model, str(args.model)
        size, steps = args.size, args.steps
        if model is None and (default_model_path() / "model_index.json").is_file():
            model, label = default_model_path(), f"default model ({default_model_path()})"
        elif model is None:
            from stablematerials.tiny import tiny_pipeline

            model, label = tmp_dir / "tiny", "tiny random-weight pipeline"
            tiny_pipeline().save_pretrained(model)
            size, steps = size or 64, steps or 8
        extra = (["--size", str(size)] if size else []) + (["--steps", str(steps)] if steps else [])
        prompts = tmp_dir / "prompts.txt"
        prompts.write_text("\n".join(f"benchmark material {k}" for k in range(args.items)) + "\n")

        layouts = [(1, None), (1, 1), (2, 1)]  # (processes, threads per process)
        results = [_run(n, t, prompts, tmp_dir / f"out{n}-{t}", model, extra) for n, t in layouts]

    print(f"model: {label}; {args.items} materials; size {size or 'default'}; steps {steps or 'default'}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (the CPU may be shared)")
    header = f"{'processes':>9} {'threads':>8} {'materials':>9} {'wall s':>8} {'/min wall':>10} {'/min generation':>16}"
    print(header + f" {'s/material':>11}")
    for r in results:
        print(
            f"{r['processes']:>9} {r['threads']:>8} {r['materials']:>9} {r['wall_s']:>8.1f} {r['per_min_wall']:>10.1f} "
            f"{r['per_min_generation']:>16.1f} {r['mean_s_per_material']:>11.2f}"
        )
    base, two = results[0], results[-1]
    print(f"2 processes vs 1 process (default threads): {two['per_min_wall'] / base['per_min_wall']:.2f}x wall, "
          f"{two['per_min_generation'] / base['per_min_generation']:.2f}x generation")  # fmt: skip
    return 0 if all(r["failed"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
