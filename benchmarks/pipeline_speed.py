"""Generation speed and memory, measured side by side in one run (this machine is noisy: read the ratios).

Prints:
  1. 4-step student vs 50-step guided teacher, same resolution: seconds each and the time ratio; and the teacher
     at the model's own default steps (`teacher_steps` in model_index.json) when it names them.
  2. tileable vs non-tileable, same steps: the time ratio (the cost of features rolling).
  3. peak resident memory at 512, 1024 and 2048 px in patched mode (each size in a fresh process), and at
     512/1024 px without patches, to show growth with pixels rather than pixels squared.

Model: --model PATH (a pipeline folder with unet_lcm/ for the student part), else the embedded default model when
present, else a mid-size random-weight model of the published architecture family built in code (the numbers then
measure the code path, not a trained model).

    python -m benchmarks.pipeline_speed [--model PATH] [--size 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_model(path: Path) -> Path:
    """A random-weight model of moderate size (UNet ~20M parameters, VAE factor 8), with a student UNet."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_text_encoder

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=9, out_channels=9, latent_channels=8, block_out_channels=(32, 64, 128, 128),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=16, sample_size=256,
    )  # fmt: skip

    def unet(student: bool) -> UNet2DConditionModel:
        return UNet2DConditionModel(
            sample_size=32, in_channels=8, out_channels=8, block_out_channels=(96, 192, 384),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1, attention_head_dim=8, cross_attention_dim=32, norm_num_groups=32,
            time_cond_proj_dim=64 if student else None,
        )  # fmt: skip

    text_encoder, tokenizer = tiny_text_encoder()
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    pipe = StableMaterialsPipeline(vae=vae, unet=unet(False), scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)
    pipe.save_pretrained(path)
    unet(True).save_pretrained(path / "unet_lcm")
    return path


def timed_pair(a, b, repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` seconds of two generation calls, interleaved so both see the same machine load."""
    import torch

    best = [float("inf"), float("inf")]
    for r in range(repeats):
        for k, (pipe, kwargs) in enumerate((a, b)):
            t = time.perf_counter()
            pipe("mossy cobblestone path", generator=torch.Generator().manual_seed(r), **kwargs)
            best[k] = min(best[k], time.perf_counter() - t)
    return best[0], best[1]


def memory_child(model: str, size: int, patched: bool) -> None:
    """Runs in a fresh process: one generation, then prints the peak resident set size."""
    import resource

    import torch

    from stablematerials.loading import load_pipeline

    pipe = load_pipeline(model, student=True)
    pipe.set_progress_bar_config(disable=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    pipe("bricks", height=size, width=size, num_inference_steps=2, tileable=True, patched=patched,
         generator=torch.Generator().manual_seed(0), output_type="np")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"size": size, "patched": patched, "peak_mb": peak / 1024, "load_mb": base / 1024,
                      "seconds": time.perf_counter() - t}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-sizes", default="512,1024,2048", help="comma-separated sizes; empty: skip memory")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        memory_child(args._child[0], int(args._child[1]), args._child[2] == "1")
        return

    from stablematerials.loading import default_model_path, load_pipeline

    model = args.model
    if model is None:
        model = str(default_model_path()) if (default_model_path() / "unet_lcm").is_dir() else None
    if model is None:
        model = str(build_model(Path("/tmp/stablematerials-bench-model")))
        print(f"model: random-weight mid-size model at {model}")
    else:
        print(f"model: {model}")

    teacher = load_pipeline(model, student=False)
    student = load_pipeline(model, student=True)
    for p in (teacher, student):
        p.set_progress_bar_config(disable=True)
    s = args.size
    print(f"\n== student vs teacher at {s}x{s} (best of {args.repeats}) ==")
    t_teacher, t_student = timed_pair(
        (teacher, dict(height=s, width=s, num_inference_steps=50, guidance_scale=7.5)),
        (student, dict(height=s, width=s, num_inference_steps=4, guidance_scale=7.5)),
        args.repeats,
    )
    print(f"teacher 50 steps + CFG: {t_teacher:.2f} s   student 4 steps: {t_student:.2f} s   "
          f"speed-up x{t_teacher / t_student:.1f}")  # fmt: skip
    own = teacher.default_num_inference_steps
    if own != 50:  # a model that names its teacher's steps (model_index.json teacher_steps), e.g. default model v3
        print(f"\n== teacher at the model's own {own} steps vs student at {s}x{s} (best of {args.repeats}) ==")
        t_own, t_student = timed_pair(
            (teacher, dict(height=s, width=s, num_inference_steps=own, guidance_scale=7.5)),
            (student, dict(height=s, width=s, num_inference_steps=4, guidance_scale=7.5)),
            args.repeats,
        )
        print(f"teacher {own} steps + CFG: {t_own:.2f} s   student 4 steps: {t_student:.2f} s   "
              f"ratio x{t_own / t_student:.2f}")  # fmt: skip

    print(f"\n== tileable vs plain at {s}x{s}, teacher 20 steps ==")
    t_plain, t_tile = timed_pair(
        (teacher, dict(height=s, width=s, num_inference_steps=20, tileable=False)),
        (teacher, dict(height=s, width=s, num_inference_steps=20, tileable=True)),
        args.repeats,
    )
    print(f"plain: {t_plain:.2f} s   tileable: {t_tile:.2f} s   ratio {t_tile / t_plain:.3f}")

    if not args.memory_sizes:
        return
    print("\n== peak memory, student 2 steps, tileable (fresh process per row) ==")
    rows = [(int(x), True) for x in args.memory_sizes.split(",")] + [(512, False), (1024, False)]
    print(f"{'size':>6} {'patched':>8} {'peak MB':>9} {'after load MB':>14} {'seconds':>8}")
    for size, patched in rows:
        cmd = [sys.executable, __file__, "--_child", model, str(size), "1" if patched else "0"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{size:>6} {str(patched):>8}  failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{size:>6} {str(patched):>8} {r['peak_mb']:>9.0f} {r['load_mb']:>14.0f} {r['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
