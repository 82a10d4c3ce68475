"""Generate every prompt x seed with a model at the settings a user gets, and keep what the evaluation needs.

The defaults are those of `stablematerials generate` (stablematerials/commands/generate.py): the model's default
UNet (the 4-step student when it ships one, unless its model_index.json prefers the teacher) at its default step
count, guidance 7.5, tileable, windowed attention (`patched`) when the
size exceeds the model's training size. The size is the evaluation's (512 px by default, the issue's output size).
Seed k of a prompt is `torch.Generator().manual_seed(k)`, one material per call, as the CLI makes it.

Each material becomes a record RUN/<prompt id>_s<seed>.npz (written atomically, so a stopped run resumes):
`source` (the classifier's 8 x 256 x 256 uint8 view, also the contact sheet's maps), `render` (a lit preview,
uint8) and `meta` (JSON: timing and the measures computed on the full-size maps).
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from stablematerials.io import atomic_write_bytes, atomic_write_text
from stablematerials.loading import load_pipeline
from stablematerials.material import Material
from stablematerials.metrics import normal_height_agreement, seam_scores
from stablematerials.render import render_preview

from .attributes import hsv, mean_colour
from .classifier import source_array
from .prompts import EvalPrompt

logger = logging.getLogger(__name__)
RENDER_SIZE = 160  # the preview is (RENDER_SIZE, 2 * RENDER_SIZE): sphere and lit plane


@dataclass(frozen=True)
class Settings:
    """How materials are generated; None means the pipeline's / CLI's default."""

    size: int = 512
    seeds: int = 4
    steps: int | None = None  # the pipeline's default: 4 for a student; the model's teacher_steps, else 50
    guidance: float = 7.5  # the CLI's default
    student: bool | None = None  # the CLI's default (loading.student_by_default)
    tileable: bool = True
    patched: bool | None = None  # windowed attention; None: the CLI's rule (above the model's training size)


def material_measures(material: Material) -> dict:
    """What the evaluation reads from the full-size maps: seams, normal/height agreement, mean colour, metal, gloss."""
    seams = {name: max(pair) for name, pair in seam_scores(material).items()}
    rgb = mean_colour(material.basecolor)
    return {
        "seam": seams,
        "max_seam": max(seams.values()),
        "normal_height": normal_height_agreement(material),
        "mean_rgb": [float(c) for c in rgb],
        "hsv": list(hsv(rgb)),
        "metallic": float(material.metallic.mean()),
        "roughness": float(material.roughness.mean()),
    }


def record_path(run: Path, prompt: EvalPrompt, seed: int) -> Path:
    return run / f"{prompt.id}_s{seed}.npz"


def save_record(path: Path, material: Material, meta: dict) -> None:
    render = np.asarray(render_preview(material, size=RENDER_SIZE))
    buf = io.BytesIO()
    np.savez_compressed(buf, source=source_array(material), render=render, meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())


def load_record(path: Path) -> dict:
    """{'source': (8, 256, 256) uint8, 'render': (h, w, 3) uint8, 'meta': dict}."""
    with np.load(path) as z:
        return {"source": z["source"], "render": z["render"], "meta": json.loads(str(z["meta"]))}


def generate_all(model: str | Path, prompts: list[EvalPrompt], settings: Settings, run: Path) -> dict:
    """Generate the missing records of RUN for `model` (every prompt x seeds 0 .. settings.seeds - 1); returns the
    run's info (settings, load and warm-up time)."""
    jobs = [(p.prompt, seed, record_path(run, p, seed)) for p in prompts for seed in range(settings.seeds)]
    return generate_records(model, jobs, settings, run)


def generate_records(model: str | Path, jobs: list[tuple[str, int, Path]], settings: Settings, run: Path) -> dict:
    """Generate the missing records of `jobs` ((prompt, seed, record path), ...) with `model` at `settings` (its
    `seeds` aside); returns the run's info, also written to RUN/run_info.json."""
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pipe = load_pipeline(model, student=settings.student)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor
    call = dict(height=settings.size, width=settings.size, num_inference_steps=settings.steps,
                guidance_scale=settings.guidance, tileable=settings.tileable,
                patched=settings.size > native if settings.patched is None else settings.patched,
                output_type="material")  # fmt: skip
    t1 = time.perf_counter()
    pipe(jobs[0][0], generator=torch.Generator().manual_seed(10**6), **call)  # warm-up, not measured
    info = {"model": str(model), "settings": asdict(settings), "student": pipe.is_student, "native_size": native,
            "patched": call["patched"], "load_seconds": load_s, "warmup_seconds": time.perf_counter() - t1,
            "threads": torch.get_num_threads()}  # fmt: skip
    for n, (prompt, seed, path) in enumerate(jobs):
        if not path.is_file():
            t = time.perf_counter()
            material = pipe(prompt, generator=torch.Generator().manual_seed(seed), **call).images[0]
            seconds = time.perf_counter() - t
            save_record(path, material, {"prompt": prompt, "seed": seed, "seconds": seconds} | material_measures(material))
        if (n + 1) % 10 == 0 or n + 1 == len(jobs):
            logger.info("%s: %d/%d materials (%s)", run.name, n + 1, len(jobs), prompt)
    atomic_write_text(run / "run_info.json", json.dumps(info, indent=2))
    return info
