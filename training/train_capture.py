"""Train the capture model (photo -> its own PBR maps) on synthetic photos of procedural materials.

    python -m training.train_capture --output_dir /work/runs/capture/run [--resume latest] [--train.max_steps 3000]

Every step renders a fresh batch (training/capture_data.py): views of procedural materials under random lights,
exposure, white balance, perspective, camera noise and JPEG, with the exact maps as targets. Losses: per-map L1 in
model space (height mean-free), the predicted maps rendered under the photo's own light against the clean photo, and
both maps rendered under a new light. Two optional real streams: texture pairs with their artists' normal maps
(`real.*`: normal and height L1), and photos without maps (`unlabeled.*`: the semi-supervised stream, a patch
discriminator on the predicted maps against the exact maps of the synthetic materials). The data is a function of
(seed, step), so `--resume latest` continues exactly. Outputs in OUTPUT/: `model/` (a StableMaterialsCapturePipeline
folder), `checkpoints/`, `losses.jsonl`, `eval.jsonl` (errors on fixed validation photos), `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from stablematerials.capture import (
    StableMaterialsCapturePipeline,
    build_predictor,
    run_predictor,
)
from stablematerials.io import AtomicFolder
from stablematerials.loading import load_capture_pipeline
from stablematerials.material import Material
from stablematerials.metrics import capture_errors
from stablematerials.render import linear_to_srgb, random_light_positions

from .capture_config import CaptureConfig
from .capture_data import (
    MaterialPool,
    batch_for_step,
    real_batch_for_step,
    shade,
    training_families,
)
from .config import parse_config
from .loop import Bookkeeping, discriminator_step, generator_loss, optimizer_step
from .losses import MAP_CHANNELS, render_l1
from .models import PatchDiscriminator
from .runtime import (
    JsonlLog,
    end_process_group,
    make_lr_scheduler,
    make_optimizer,
    start_run,
)
from .texture_pairs import RealPairs, RealPhotos

logger = logging.getLogger("training.train_capture")


class CaptureNet(torch.nn.Module):
    """The UNet with the pipeline's input/output handling, as one module for the Accelerator (DDP hooks its forward)."""

    def __init__(self, unet: torch.nn.Module, patch_size: int) -> None:
        super().__init__()
        self.unet, self.patch_size = unet, patch_size

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        return run_predictor(self.unet, photos, self.patch_size)


def capture_losses(pred: torch.Tensor, batch: dict, cfg: CaptureConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every loss term (unweighted) of a batch: per-map L1, re-render under the photo's light and under a new one."""
    terms = {name: map_l1(pred, batch["targets"], name) for name in MAP_CHANNELS}
    terms["render"] = (linear_to_srgb(shade(pred, batch["light"])) - batch["clean"]).abs().mean()
    lights = random_light_positions(pred.shape[0], 1, generator=generator)
    terms["render_new"] = render_l1(pred, batch["targets"], lights)
    return terms


def map_l1(pred: torch.Tensor, target: torch.Tensor, name: str) -> torch.Tensor:
    """L1 of one map in model space (B, 9, H, W); heights without their means (a photo shows relief, not its level)."""
    p, t = pred[:, MAP_CHANNELS[name]], target[:, MAP_CHANNELS[name]]
    if name == "height":
        p, t = p - p.mean(dim=(2, 3), keepdim=True), t - t.mean(dim=(2, 3), keepdim=True)
    return (p - t).abs().mean()


REAL_MAPS = ("normal", "height")  # what a texture pair's normal map and its alpha tell


def real_losses(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The real stream's terms (unweighted): `map_l1` of the normal and the height."""
    return {f"real_{name}": map_l1(pred, target, name) for name in REAL_MAPS}


CRITIC_MAPS = ("normal", "height", "roughness", "metallic")  # what the discriminator sees (not the photo's basecolor)
CRITIC_CHANNELS = sum(MAP_CHANNELS[name].stop - MAP_CHANNELS[name].start for name in CRITIC_MAPS)  # 5


def critic_view(maps: torch.Tensor) -> torch.Tensor:
    """The maps (B, 9, H, W) as the unlabeled stream's discriminator sees them: (B, 5, H, W), normal X and Y, height
    without its mean (a photo shows relief, not its level), roughness, metallic."""
    parts = [maps[:, MAP_CHANNELS[name]] for name in CRITIC_MAPS]
    parts[1] = parts[1] - parts[1].mean(dim=(2, 3), keepdim=True)
    return torch.cat(parts, dim=1)


@torch.no_grad()
def evaluate(net: torch.nn.Module, eval_batch: dict) -> dict[str, float]:
    """Mean capture errors on the fixed validation photos."""
    was_training = net.training
    net.eval()
    pred = net(eval_batch["photos"]).float().clamp(-1, 1)
    net.train(was_training)
    rows = [capture_errors(Material.from_model_tensor(p), Material.from_model_tensor(t)) for p, t in zip(pred, eval_batch["targets"])]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main(argv: list[str] | None = None) -> int:
    train(parse_config(CaptureConfig, sys.argv[1:] if argv is None else argv))
    end_process_group()
    return 0


def train(cfg: CaptureConfig) -> Path:
    """Run (or resume) the training `cfg` describes; returns OUTPUT/model (written at the end, not with train.stop_at)."""
    accelerator, out = start_run(cfg, "train_capture")
    run = set_up(cfg, accelerator, out)

    # 3. Resume: weights, optimiser, schedule; the data follows from the step.
    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed, script="train_capture")
    step = book.start
    eval_log = JsonlLog(accelerator, out / "eval.jsonl", step)

    # 4. Train.
    run.net.train()
    while book.running(step):
        totals = book.micro_batch_means(lambda micro: train_micro_step(run, step, micro))
        step += 1
        book.end_step(step, totals, sample=lambda at: validate(run, eval_log, at))

    # 5. Final: validation errors and the pipeline folder.
    book.end(step, save=lambda: save_model(run, eval_log, step, logged=book.sample_due(step)))
    return out / "model"


@dataclasses.dataclass
class CaptureRun:
    """What one run of train_capture works with (built by `set_up`)."""

    cfg: CaptureConfig
    accelerator: Accelerator
    out: Path
    pool: MaterialPool  # the training families' materials; views and photos are made per step
    eval_batch: dict  # fixed validation photos (on the device) and their maps
    net: torch.nn.Module  # the prepared CaptureNet
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    real: RealPairs | None = None  # the real stream's texture pairs (real.textures), or None
    photos: RealPhotos | None = None  # the unlabeled stream's photos (unlabeled.photos), or None
    disc: torch.nn.Module | None = None  # its prepared discriminator ...
    disc_optimizer: torch.optim.Optimizer | None = None  # ... and the discriminator's optimiser


def set_up(cfg: CaptureConfig, accelerator: Accelerator, out: Path) -> CaptureRun:
    """Data and model, prepared (identical initial weights on every process)."""
    # 1. Data: materials of the training families, views and photos made per step; fixed validation photos.
    families = training_families(cfg.data)
    pool = MaterialPool(cfg.data, families, cfg.seed)
    eval_data = dataclasses.replace(cfg.data, crop_size=cfg.eval.size)
    eval_batch = batch_for_step(MaterialPool(eval_data, families, cfg.eval.seed, split="val"), eval_data, cfg.photo,
                                cfg.eval.seed, 0, cfg.eval.count)  # fmt: skip
    eval_batch = {"photos": eval_batch["photos"].to(accelerator.device), "targets": eval_batch["targets"]}
    logger.info("training on %d families (%s held out), %d processes", len(families),
                ", ".join(cfg.data.exclude_families) or "none", accelerator.num_processes)  # fmt: skip

    # 2. Model (fresh, or init_from's), optimiser, and the unlabeled stream's discriminator, prepared together.
    unet, patch_size = initial_predictor(cfg)
    net = CaptureNet(unet, patch_size)
    optimizer = make_optimizer(net.parameters(), cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    logger.info("capture UNet: %.2fM parameters", sum(p.numel() for p in unet.parameters()) / 1e6)
    run = CaptureRun(cfg, accelerator, out, pool, eval_batch, net, optimizer, lr_scheduler)
    if cfg.unlabeled.photos:
        u = cfg.unlabeled
        run.photos = RealPhotos(u.photos, tuple(u.exclude), u.max_side)
        run.disc = PatchDiscriminator(CRITIC_CHANNELS, u.disc_channels)
        run.disc_optimizer = make_optimizer(run.disc.parameters(), cfg.train, lr=u.disc_lr)
        run.net, run.disc, run.optimizer, run.disc_optimizer, run.lr_scheduler = accelerator.prepare(
            net, run.disc, optimizer, run.disc_optimizer, lr_scheduler)  # fmt: skip
        logger.info("unlabeled stream: %d photos from %s, %d a step", len(run.photos), u.photos, u.batch_size)
    else:
        run.net, run.optimizer, run.lr_scheduler = accelerator.prepare(net, optimizer, lr_scheduler)
    if cfg.real.textures:
        run.real = RealPairs(cfg.real.textures, tuple(cfg.real.exclude), cfg.real.max_side)
        logger.info("real stream: %d texture pairs from %s, %d views a step", len(run.real), cfg.real.textures, cfg.real.batch_size)
    return run


def initial_predictor(cfg: CaptureConfig) -> tuple[torch.nn.Module, int]:
    """The UNet to train and its patch size: a fresh one as model.* describes, or init_from's trained one (float32)."""
    if not cfg.init_from:
        m = cfg.model
        return build_predictor(m.block_out_channels, m.layers_per_block, m.patch_size, m.mid_block, m.norm_num_groups), m.patch_size
    base = load_capture_pipeline(cfg.init_from, torch_dtype=torch.float32)
    logger.info("continuing the capture model %s", cfg.init_from)
    return base.unet.train(), base.config.patch_size


def train_micro_step(run: CaptureRun, step: int, micro: int) -> dict[str, torch.Tensor]:
    """Micro-batch `micro` of step `step`: fresh photos (a function of seed, step and offset) and every loss term."""
    cfg, accelerator, device = run.cfg, run.accelerator, run.accelerator.device
    batch_size = cfg.train.batch_size
    offset = (accelerator.process_index * cfg.train.gradient_accumulation_steps + micro) * batch_size
    batch = batch_for_step(run.pool, cfg.data, cfg.photo, cfg.seed, step, batch_size, offset)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    batch["light"] = batch["light"].to(device)
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 131 + offset)
    weights = {k: getattr(cfg.loss, k) for k in (*MAP_CHANNELS, "render", "render_new")}
    weights |= {f"real_{k}": cfg.real.weight * getattr(cfg.loss, k) for k in REAL_MAPS}
    weights["adversarial"] = cfg.unlabeled.weight
    adversarial = run.photos is not None and step >= cfg.unlabeled.start
    with accelerator.accumulate(*([run.net, run.disc] if run.disc is not None else [run.net])):
        pred = run.net(batch["photos"]).float()
        terms = capture_losses(pred, batch, cfg, generator)
        if run.real is not None:
            real = real_batch_for_step(run.real, cfg.data, cfg.photo, cfg.seed, step, cfg.real.batch_size, offset)
            terms |= real_losses(run.net(real["photos"].to(device)).float(), real["targets"].to(device))
        if adversarial:
            photos = real_batch_for_step(run.photos, cfg.data, cfg.photo, cfg.seed, step, cfg.unlabeled.batch_size, offset, stream=29)
            fake = critic_view(run.net(photos["photos"].to(device)).float())
            terms["adversarial"] = generator_loss(accelerator, run.disc, fake)
        loss = sum(weights[k] * v for k, v in terms.items())
        optimizer_step(accelerator, loss, run.net.parameters(), run.optimizer, run.lr_scheduler, cfg.train.max_grad_norm)
        if adversarial:  # real: the exact maps of as many of the step's synthetic materials
            exact = critic_view(batch["targets"][: cfg.unlabeled.batch_size])
            terms["disc"] = discriminator_step(accelerator, run.disc, run.disc_optimizer, exact, fake)
    return {**terms, "loss": loss}


def validate(run: CaptureRun, eval_log: JsonlLog, step: int) -> None:
    """Errors on the validation photos at `step`, to OUTPUT/eval.jsonl and the log."""
    errors = evaluate(run.net, run.eval_batch)
    eval_log.write(step, errors)
    logger.info("step %d validation: %s", step, json.dumps({k: round(v, 4) for k, v in errors.items()}))


def save_model(run: CaptureRun, eval_log: JsonlLog, step: int, logged: bool) -> None:
    """Final validation errors (to eval.jsonl unless the loop `logged` them at this step) and OUTPUT/model."""
    errors = evaluate(run.net, run.eval_batch)
    if not logged:
        eval_log.write(step, errors)
    logger.info("final validation: %s", json.dumps({k: round(v, 4) for k, v in errors.items()}))
    inner = run.accelerator.unwrap_model(run.net).unet.eval()
    with AtomicFolder(run.out / "model", overwrite=True) as tmp:
        StableMaterialsCapturePipeline(unet=inner, patch_size=run.cfg.model.patch_size).save_pretrained(tmp)
    logger.info("saved %s", Path(run.out / "model"))


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_capture"))
