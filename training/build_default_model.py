"""Reproduce the embedded default model (v3) from nothing, one resumable stage after another.

    python -m training.build_default_model --work runs/v3                 # all stages; rerun to resume
    python -m training.build_default_model --work runs/v3 --until ldm     # stop after a stage
    python -m training.build_default_model --work runs/v3 --package assets/default-model --card CARD.md

Stages (each skipped when its result exists, resumed from its last checkpoint or shard otherwise):
1. data     512 px procedural materials for the autoencoder (`stablematerials dataset`, seeds 0..1999)
2. vae      training/configs/vae_v3.yaml                       -> WORK/vae/vae
3. latents  training/configs/latents_v3.yaml (seeds 100000..)   -> WORK/latents/shard_*.safetensors
4. ldm      training/configs/ldm_v3.yaml                       -> WORK/ldm/model
5. lcm      training/configs/lcm_v3.yaml                       -> WORK/lcm/model (teacher + unet_lcm)
6. package  (only with --package) float16 weights, linked MiniLM, the teacher's colour cap and colour smoothing,
            model card -> the given folder

Wall time on a 2-core CPU is in the model card (assets/default-model/README.md). Each stage runs as its own
process, as a user would run it, so an interruption anywhere loses at most one checkpoint interval.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger("training.build_default_model")

CONFIGS = Path(__file__).resolve().parent / "configs"
STAGES = ("data", "vae", "latents", "ldm", "lcm", "package")
NATIVE_SIZE = 512  # the default output: the scale the UNet learned whole materials at (latents_v3.yaml size)
# v3's student speckles the basecolor; its teacher at 8 steps is clean at twice the student's time, so it is the default
# (benchmarks/results/default_model_eval_v3_teacher8_512.md). None once a student matches its teacher.
TEACHER_DEFAULT_STEPS: int | None = 8
# How the teacher samples its colour latents (benchmarks/results/default_model_v3_diagnosis.md, section 6): their
# guidance capped at 1.5 (distilled at 2; at 1.5 greys lose a blue cast and colour words gain 6 points), their chroma
# blurred by one cell before decoding (the teacher leaves hue noise between cells that the data does not have).
TEACHER_COLOR_CAP = 1.5
COLOR_SMOOTHING = 1.0
DATA_MATERIALS = 2000  # the autoencoder's materials: it trains on 128 px crops, 16 per material, so 2000 suffice


def stage_commands(work: Path) -> dict[str, tuple[Path, list[str]]]:
    """Each stage's finished marker and its command (a module and its arguments) for the work folder."""
    py = [sys.executable, "-m"]
    return {
        "data": (work / "data512" / "dataset.json", [*py, "stablematerials.cli", "dataset", "--out", str(work / "data512"),
                                                    "-n", str(DATA_MATERIALS), "--size", "512"]),
        "vae": (work / "vae" / "vae" / "config.json", [*py, "training.train_vae", "--config", str(CONFIGS / "vae_v3.yaml"),
                "--output_dir", str(work / "vae"), "--data.root", str(work / "data512"), "--resume", "latest"]),
        "latents": (None, [*py, "training.encode_latents", "--config", str(CONFIGS / "latents_v3.yaml"),
                           "--output_dir", str(work / "latents"), "--vae", str(work / "vae" / "vae")]),
        "ldm": (work / "ldm" / "model" / "model_index.json", [*py, "training.train_ldm", "--config", str(CONFIGS / "ldm_v3.yaml"),
                "--output_dir", str(work / "ldm"), "--vae", str(work / "vae" / "vae"), "--data.latents", str(work / "latents"),
                "--resume", "latest"]),
        "lcm": (work / "lcm" / "model" / "unet_lcm" / "config.json", [*py, "training.distill_lcm", "--config",
                str(CONFIGS / "lcm_v3.yaml"), "--output_dir", str(work / "lcm"), "--teacher", str(work / "ldm" / "model"),
                "--data.latents", str(work / "latents"), "--resume", "latest"]),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("runs/v3"), help="folder for data, runs and checkpoints (default runs/v3)")
    p.add_argument("--until", choices=STAGES, default="lcm", help="last stage to run (default lcm)")
    p.add_argument("--package", type=Path, help="package the result into this model folder (e.g. assets/default-model)")
    p.add_argument("--card", type=Path, help="model card (Markdown) for --package")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.package and not (args.card and args.card.is_file()):
        print("build_default_model: --package needs --card FILE (the model card)", file=sys.stderr)
        return 2
    last = STAGES.index("package" if args.package else args.until)
    for name, (done, cmd) in stage_commands(args.work).items():
        if STAGES.index(name) > last:
            break
        if done is not None and done.is_file():
            logger.info("stage %s: done (%s)", name, done)
            continue
        logger.info("stage %s: %s", name, " ".join(cmd[2:]))
        start = time.time()
        if subprocess.run(cmd, check=False).returncode != 0:
            print(f"build_default_model: stage {name} failed; fix the cause and rerun the same command to resume", file=sys.stderr)
            return 1
        logger.info("stage %s: finished in %.1f min", name, (time.time() - start) / 60)
    if args.package:
        from .package_model import package

        package(args.work / "lcm" / "model", args.package, args.card.read_text(), overwrite=True, native_size=NATIVE_SIZE,
                teacher_default=TEACHER_DEFAULT_STEPS, color_guidance_max=TEACHER_COLOR_CAP,
                color_smoothing=COLOR_SMOOTHING)  # fmt: skip
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.build_default_model"))
