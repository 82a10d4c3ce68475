"""What every training script shares: the Accelerator, optimiser and LR schedule, progress lines, loss and debug
logs, the caption-embedding cache, and writing sample materials."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed

from stablematerials.io import AtomicFolder, save_material
from stablematerials.material import Material
from stablematerials.values import slug

from .config import TrainConfig, save_config

logger = logging.getLogger(__name__)


def _cpu_only_group() -> bool:
    """Several processes (torchrun / `accelerate launch --multi_gpu`) on a machine without an accelerator.

    Accelerate's own `--cpu` launcher starts one process unless MPI is set up; under torchrun without a GPU it would
    otherwise run every process as a separate single-process job. Forcing the CPU here makes it a gloo group.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    probe = getattr(torch, "accelerator", None)
    has_device = probe.is_available() if probe is not None else torch.cuda.is_available()
    return not has_device


def make_accelerator(train: TrainConfig, output_dir: str | Path, seed: int) -> Accelerator:
    """The Accelerator for this run (mixed precision, accumulation, TensorBoard), with every process seeded.

    The model initialisation uses `seed` on every process (identical weights); afterwards each process reseeds
    with seed + rank (`reseed_per_process`) so their noise differs.
    """
    accelerator = Accelerator(
        mixed_precision=train.mixed_precision,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        cpu=train.cpu or _cpu_only_group(),
        log_with="tensorboard" if train.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(Path(output_dir) / "logs")),
    )
    if not logging.getLogger().handlers:  # a script run; leave a host's (e.g. pytest's) logging alone
        logging.basicConfig(
            level=logging.INFO if accelerator.is_main_process else logging.WARNING,
            format=f"%(asctime)s [rank {accelerator.process_index}] %(levelname)s %(name)s: %(message)s",
        )
    set_seed(seed)
    return accelerator


def end_trackers(accelerator: Accelerator) -> None:
    """Flush and close the trackers (TensorBoard) but keep the process group: a following stage in the same
    processes (training.finetune runs train_ldm, then distill_lcm) still needs it. `end_process_group` ends it."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.wait_for_everyone()


def end_process_group() -> None:
    """The end of a script run: take down the process group of a multi-process launch (no-op in one process)."""
    from accelerate import PartialState

    PartialState().destroy_process_group()


def reseed_per_process(accelerator: Accelerator, seed: int) -> None:
    """Different random streams per process (noise, timesteps, dropout), reproducible from the seed."""
    set_seed(seed + 1_000_003 * (accelerator.process_index + 1))


def start_run(cfg, project: str) -> tuple[Accelerator, Path]:
    """The start of a training script's run (`cfg` has output_dir, seed and train): its Accelerator
    (`make_accelerator`), the output folder with the resolved config saved in it, TensorBoard when asked."""
    accelerator = make_accelerator(cfg.train, cfg.output_dir, cfg.seed)
    out = Path(cfg.output_dir)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.json")
    accelerator.wait_for_everyone()
    if cfg.train.tensorboard:
        accelerator.init_trackers(project)
    return accelerator, out


def make_optimizer(params: Iterable[torch.nn.Parameter], train: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """AdamW with the run's rates."""
    return torch.optim.AdamW(
        params, lr=lr or train.lr, betas=(train.adam_beta1, train.adam_beta2), weight_decay=train.weight_decay,
        foreach=True,  # one fused update over all tensors; torch's CPU default updates them one by one
    )


def make_lr_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig, num_processes: int):
    """The LR schedule. Accelerate steps a prepared scheduler once per process per step, hence the scaling."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        train.lr_schedule,
        optimizer=optimizer,
        num_warmup_steps=train.warmup_steps * num_processes,
        num_training_steps=train.max_steps * num_processes,
    )


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Progress lines on the main process: step, losses, steps/s since the previous line, and the ETA at that rate."""

    def __init__(self, accelerator: Accelerator, total: int, start: int) -> None:
        self.accelerator, self.total = accelerator, total
        self.last_step, self.last_time = start, time.perf_counter()

    def line(self, step: int, values: dict[str, float]) -> str:
        now = time.perf_counter()
        elapsed = now - self.last_time
        rate = (step - self.last_step) / elapsed if elapsed > 0 else 0.0
        self.last_step, self.last_time = step, now
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        parts = " | ".join(f"{k} {v:.4f}" for k, v in values.items())
        eta_text = _format_duration(eta) if math.isfinite(eta) else "?"
        return f"step {step}/{self.total} | {parts} | {rate:.2f} step/s | ETA {eta_text}"

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.accelerator.is_main_process:
            print(self.line(step, values), flush=True)


def _record_step(line: str) -> float:
    """The step of a losses.jsonl line; a line cut short by a kill counts as past any checkpoint (dropped)."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")


class JsonlLog:
    """Per-step records appended to OUTPUT/losses.jsonl by the main process; a resumed run first drops the
    records after its checkpoint, so the file always shows one trajectory."""

    def __init__(self, accelerator: Accelerator, path: Path, resume_step: int) -> None:
        self.accelerator, self.path = accelerator, path
        if accelerator.is_main_process and path.exists():
            keep = [line for line in path.read_text().splitlines() if _record_step(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in keep))

    def write(self, step: int, values: dict[str, float]) -> None:
        if self.accelerator.is_main_process:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")
        if self.accelerator.trackers:
            self.accelerator.log(values, step=step)


def ensure_finite(step: int, values: dict[str, float]) -> None:
    """Stop with a clear error when a loss became NaN or infinite (every process sees the same reduced values)."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(
            f"step {step}: {', '.join(bad)} became non-finite; lower train.lr or resume from an earlier checkpoint"
        )


def log_sample_names(accelerator: Accelerator, output_dir: Path, step: int, names: list[str]) -> None:
    """Debug: each process appends the sample names it trained on (to check that processes see different data)."""
    folder = output_dir / "debug"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"rank{accelerator.process_index}.txt").open("a") as f:
        f.write(f"{step}\t" + "\t".join(names) + "\n")


@torch.no_grad()
def embed_captions(
    text_encoder, tokenizer, captions: Iterable[str], device: torch.device, scale: float, batch: int = 64
) -> dict[str, torch.Tensor]:
    """Each distinct caption (and "") -> its (D,) embedding times `scale` (the pipeline's embedding_scale).
    Captions are fixed, so they are encoded once, not per step."""
    from stablematerials.conditioning import encode_text

    unique = sorted(set(captions) | {""})
    out: dict[str, torch.Tensor] = {}
    text_encoder.to(device)
    for i in range(0, len(unique), batch):
        chunk = unique[i : i + batch]
        for text, emb in zip(chunk, encode_text(text_encoder, tokenizer, chunk, device)):
            out[text] = emb.float() * scale
    return out


@torch.no_grad()
def embed_pictures(
    vision_encoder, processor, pictures: Iterable[tuple[str, torch.Tensor]], device: torch.device, scale: float,
    normalize: bool,
) -> dict[str, torch.Tensor]:
    """Each (key, (3, H, W) picture in [0, 1]) -> its (D,) image-encoder embedding times `scale`, as an image prompt
    is embedded (`normalize`: unit length, in a sentence encoder's space). Computed once, like the captions'."""
    from PIL import Image

    from stablematerials.conditioning import encode_images

    vision_encoder.to(device)
    out: dict[str, torch.Tensor] = {}
    for key, picture in pictures:
        pil = Image.fromarray((picture.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy())
        out[key] = encode_images(vision_encoder, processor, [pil], device, normalize=normalize)[0].float() * scale
    return out


def lookup(embeddings: dict[str, torch.Tensor], captions: list[str]) -> torch.Tensor:
    """Cached caption embeddings as a (B, 1, D) cross-attention batch."""
    return torch.stack([embeddings[c] for c in captions]).unsqueeze(1)


def save_samples(materials: list[Material], folder: Path, labels: list[str]) -> Path:
    """Write sample materials as plain material folders `NN_label` inside `folder` (replaced atomically)."""
    with AtomicFolder(folder, overwrite=True) as tmp:
        for i, (material, label) in enumerate(zip(materials, labels)):
            name = slug(label, limit=40, lower=False, fallback="sample")
            save_material(material, tmp / f"{i:02d}_{name}", naming="plain")
    return folder


def sample_folder(output_dir: Path, step: int) -> Path:
    """Where the samples of step `step` go: OUTPUT/samples/step_NNNNNNNN."""
    return output_dir / "samples" / f"step_{step:08d}"


def sample_materials(pipe, sample, prompts: list[str], default_size: int, output_dir: Path, step: int) -> Path:
    """The sample materials of a diffusion run at `step` (`sample`: a config.SampleConfig), one per prompt, written
    to `sample_folder`."""
    materials = generate_materials(pipe, prompts, sample.seed, sample.steps, sample.guidance_scale,
                                   sample.size or default_size, sample.tileable)  # fmt: skip
    return save_samples(materials, sample_folder(output_dir, step), prompts)


def world_info() -> str:
    """A one-line description of the process group (for the start-up log)."""
    return f"world size {os.environ.get('WORLD_SIZE', '1')}, rank {os.environ.get('RANK', '0')}"


@torch.no_grad()
def generate_materials(pipe, prompts: list[str], seed: int, steps: int, guidance_scale: float, size: int, tileable: bool) -> list[Material]:
    """One material per prompt, prompt i with seed + i (so every run and step draws the same noise), made as every
    front end makes them (`stablematerials.generation.generate`)."""
    from stablematerials.generation import GenerationRequest, Limits, generate

    pipe.set_progress_bar_config(disable=True)
    limits = Limits(max_resolution=max(size, 8), max_variations=1, max_steps=10**4, max_guidance=1e3)
    requests = [
        GenerationRequest(prompt=prompt, seed=seed + i, steps=steps, guidance=guidance_scale, width=size, height=size,
                          tileable=tileable)
        for i, prompt in enumerate(prompts)
    ]  # fmt: skip
    return [generate(pipe, request, limits=limits).materials[0] for request in requests]
