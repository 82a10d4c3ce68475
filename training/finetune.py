"""Fine-tune a trained model on your own materials: a new model folder that generates in their style.

    python -m training.finetune --data.root my_materials/ --output_dir runs/my_style
    python -m training.finetune --model path/to/base --data.root my_materials/ --train.max_steps 800 --lora.rank 16
    accelerate launch --multi_gpu --num_processes 2 -m training.finetune --data.root ...   (same code, data parallel)
    stablematerials generate "oak parquet, herringbone" --model runs/my_style/model

`data.root` is a folder of material folders in any layout the loader reads (MatSynth / plain, ambientCG, Poly Haven),
with an optional captions.jsonl ({"name", "caption"} per line); without one a folder's name is its caption
("Oak_Parquet_2K" -> "Oak Parquet"). A handful of materials is enough: crops, rolls, flips and quarter turns multiply
them, and low-rank adapters (LoRA) keep the base model's knowledge instead of memorising the few examples.

Stages (each resumable with `--resume latest`; a finished stage is not run again):
1. teacher: the base teacher UNet with LoRA adapters, trained with the denoising loss (training.train_ldm with
   `init_from`), adapters merged into the weights at the end -> OUTPUT/teacher/model.
2. student: when the base model has a 4-step student (unet_lcm/), it is re-distilled from the fine-tuned teacher,
   starting from the base student (training.distill_lcm with `init_student`) -> OUTPUT/student/model.
3. OUTPUT/model: the result packaged like the default model (float16, MiniLM linked, a model card).

The base must contain the teacher UNet: a student alone has lost the denoising model that fine-tuning adapts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

from accelerate import PartialState

from stablematerials.lora_student import is_lora_student, lora_student_rank

from .config import DiffusionConfig, FinetuneConfig, LCMConfig, LDMConfig, parse_config, save_config, validate
from .data import discover_materials
from .runtime import end_process_group

logger = logging.getLogger("training.finetune")


def base_model(cfg: FinetuneConfig) -> Path:
    """The base pipeline folder: `model`, or the default model."""
    from stablematerials.loading import default_model_path

    path = Path(cfg.model) if cfg.model else default_model_path()
    if not (path / "model_index.json").is_file():
        raise ValueError(f"model {str(path)!r} is not a pipeline folder (no model_index.json)")
    return path


def teacher_config(cfg: FinetuneConfig, base: Path) -> LDMConfig:
    """Stage 1: train_ldm from the base pipeline, with adapters."""
    d = cfg.diffusion
    ldm = LDMConfig(
        output_dir=str(Path(cfg.output_dir) / "teacher"), seed=cfg.seed, resume=cfg.resume, init_from=str(base),
        data=cfg.data, lora=cfg.lora, train=cfg.train, sample=cfg.sample,
        diffusion=DiffusionConfig(cond_dropout=d.cond_dropout, snr_gamma=d.snr_gamma, ema_decay=d.ema_decay),
    )  # fmt: skip
    validate(ldm)
    return ldm


def student_config(cfg: FinetuneConfig, base: Path, teacher: Path) -> LCMConfig:
    """Stage 2: distill_lcm from the fine-tuned teacher, starting from the base student (a low-rank one is
    distilled anew, of the same rank, from the fine-tuned teacher)."""
    low_rank = is_lora_student(base / "unet_lcm")
    settings = cfg.distill.lcm
    if low_rank:
        settings = dataclasses.replace(settings, lora_rank=lora_student_rank(base / "unet_lcm"))
    lcm = LCMConfig(
        output_dir=str(Path(cfg.output_dir) / "student"), seed=cfg.seed, resume=cfg.resume, teacher=str(teacher),
        init_student=None if low_rank else str(base), data=cfg.data, lcm=settings,
        train=dataclasses.replace(cfg.train, max_steps=cfg.distill.max_steps, lr=cfg.distill.lr),
        sample=dataclasses.replace(cfg.sample, steps=4),
    )  # fmt: skip
    validate(lcm)
    return lcm


def model_card(cfg: FinetuneConfig, base: Path, n_materials: int, student: bool) -> str:
    """The fine-tuned model's README: where it comes from and how it was made."""
    how = f"LoRA rank {cfg.lora.rank} merged into the weights" if cfg.lora.rank else "all UNet weights trained"
    student_line = (
        f"The 4-step student (unet_lcm/) was re-distilled from the fine-tuned teacher for {cfg.distill.max_steps} steps."
        if student
        else "No student: the base model has none (or distill.max_steps is 0); sample with the teacher (25-50 steps)."
    )
    return (
        f"# Fine-tuned StableMaterials model\n\nBase model: `{base}`.\n\nFine-tuned on {n_materials} materials from "
        f"`{cfg.data.root}` for {cfg.train.max_steps} steps (batch {cfg.train.batch_size}, lr {cfg.train.lr}, {how}). "
        f"{student_line}\n\nThe resolved configs are in training/. Made with `python -m training.finetune`.\n"
    )


def run(cfg: FinetuneConfig) -> Path | None:
    """All stages; returns OUTPUT/model, or None when stopped early by train.stop_at."""
    from .package_model import package

    base = base_model(cfg)
    out = Path(cfg.output_dir)
    records = discover_materials(cfg.data.root, cfg.data.split, cfg.data.families, cfg.data.exclude_families)
    has_student = (base / "unet_lcm" / "config.json").is_file() and cfg.distill.max_steps > 0
    logger.info("fine-tuning %s on %d materials from %s (student: %s)", base, len(records), cfg.data.root, has_student)
    if _rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.json")

    teacher = out / "teacher" / "model"
    if not (teacher / "model_index.json").is_file():
        from . import train_ldm

        train_ldm.train(teacher_config(cfg, base))
        if not (teacher / "model_index.json").is_file():
            return None  # stopped by train.stop_at; --resume latest continues
    final = teacher
    if has_student:
        final = out / "student" / "model"
        if not (final / "model_index.json").is_file():
            from . import distill_lcm

            distill_lcm.distill(student_config(cfg, base, teacher))
            if not (final / "model_index.json").is_file():
                return None

    state = PartialState()
    if state.is_main_process:
        package(final, out / "model", model_card(cfg, base, len(records), has_student), overwrite=True)
    state.wait_for_everyone()
    return out / "model"


def _rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (0 when run directly)."""
    return int(os.environ.get("RANK", "0"))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO if _rank() == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {_rank()}] %(levelname)s %(name)s: %(message)s",
    )
    cfg = parse_config(FinetuneConfig, sys.argv[1:] if argv is None else argv)
    model = run(cfg)
    end_process_group()
    if model is not None and _rank() == 0:
        print(f"fine-tuned model: {model}\n  stablematerials generate \"your prompt\" --model {model}")
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.finetune"))
