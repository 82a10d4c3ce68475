"""Train the capture model (photo -> its own PBR maps) on synthetic photos of procedural materials.

    python -m training.train_capture --output_dir /work/runs/capture/run [--resume latest] [--train.max_steps 3000]

Every step renders a fresh batch (training/capture_data.py): views of procedural materials under random lights,
exposure, white balance, perspective, camera noise and JPEG, with the exact maps as targets. Losses: per-map L1 in
model space (height mean-free), the predicted maps rendered under the photo's own light against the clean photo, and
both maps rendered under a new light. The data is a function of (seed, step), so `--resume latest` continues
exactly. Outputs in OUTPUT/: `model/` (a StableMaterialsCapturePipeline folder), `checkpoints/`, `losses.jsonl`,
`eval.jsonl` (errors on fixed validation photos), `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from stablematerials.capture import (
    StableMaterialsCapturePipeline,
    build_predictor,
    run_predictor,
)
from stablematerials.io import AtomicFolder
from stablematerials.material import Material
from stablematerials.metrics import capture_errors
from stablematerials.render import linear_to_srgb, random_light_positions

from .capture_config import CaptureConfig
from .capture_data import MaterialPool, batch_for_step, shade, training_families
from .checkpoint import resume_or_seed, save_checkpoint
from .config import parse_config
from .losses import MAP_CHANNELS, render_l1
from .runtime import (
    JsonlLog,
    Progress,
    ensure_finite,
    make_lr_scheduler,
    make_optimizer,
    start_run,
)

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
    target = batch["targets"]
    terms = {}
    for name, sl in MAP_CHANNELS.items():
        p, t = pred[:, sl], target[:, sl]
        if name == "height":  # a photo shows relief, not its absolute level
            p, t = p - p.mean(dim=(2, 3), keepdim=True), t - t.mean(dim=(2, 3), keepdim=True)
        terms[name] = (p - t).abs().mean()
    terms["render"] = (linear_to_srgb(shade(pred, batch["light"])) - batch["clean"]).abs().mean()
    lights = random_light_positions(pred.shape[0], 1, generator=generator)
    terms["render_new"] = render_l1(pred, target, lights)
    return terms


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
    cfg = parse_config(CaptureConfig, sys.argv[1:] if argv is None else argv)
    accelerator, out = start_run(cfg, "train_capture")
    device = accelerator.device

    # 1. Data: materials of the training families, views and photos made per step; fixed validation photos.
    families = training_families(cfg.data)
    pool = MaterialPool(cfg.data, families, cfg.seed)
    eval_data = dataclasses.replace(cfg.data, crop_size=cfg.eval.size)
    eval_batch = batch_for_step(MaterialPool(eval_data, families, cfg.eval.seed, split="val"), eval_data, cfg.photo,
                                cfg.eval.seed, 0, cfg.eval.count)  # fmt: skip
    eval_batch = {"photos": eval_batch["photos"].to(device), "targets": eval_batch["targets"]}
    logger.info("training on %d families (%s held out), %d processes", len(families),
                ", ".join(cfg.data.exclude_families) or "none", accelerator.num_processes)  # fmt: skip

    # 2. Model and optimiser (identical initial weights on every process).
    m = cfg.model
    unet = build_predictor(m.block_out_channels, m.layers_per_block, m.patch_size, m.mid_block, m.norm_num_groups)
    net = CaptureNet(unet, m.patch_size)
    optimizer = make_optimizer(net.parameters(), cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    logger.info("capture UNet: %.2fM parameters", sum(p.numel() for p in unet.parameters()) / 1e6)
    net, optimizer, lr_scheduler = accelerator.prepare(net, optimizer, lr_scheduler)

    # 3. Resume: weights, optimiser, schedule; the data follows from the step.
    step = resume_or_seed(accelerator, out / "checkpoints", cfg.resume, cfg.seed)
    progress = Progress(accelerator, cfg.train.max_steps, step)
    loss_log = JsonlLog(accelerator, out / "losses.jsonl", step)
    eval_log = JsonlLog(accelerator, out / "eval.jsonl", step)
    weights = {k: getattr(cfg.loss, k) for k in (*MAP_CHANNELS, "render", "render_new")}
    accum = cfg.train.gradient_accumulation_steps
    batch_size = cfg.train.batch_size

    # 4. Train.
    net.train()
    while step < cfg.train.max_steps and not (cfg.train.stop_at and step >= cfg.train.stop_at):
        totals: dict[str, float] = {}
        for micro in range(accum):
            offset = (accelerator.process_index * accum + micro) * batch_size
            batch = batch_for_step(pool, cfg.data, cfg.photo, cfg.seed, step, batch_size, offset)
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            batch["light"] = batch["light"].to(device)
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 131 + offset)
            with accelerator.accumulate(net):
                pred = net(batch["photos"]).float()
                terms = capture_losses(pred, batch, cfg, generator)
                loss = sum(weights[k] * v for k, v in terms.items())
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(net.parameters(), cfg.train.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            for k, v in {**terms, "loss": loss}.items():
                totals[k] = totals.get(k, 0.0) + float(accelerator.reduce(v.detach().float(), "mean")) / accum
        step += 1
        ensure_finite(step, totals)
        loss_log.write(step, totals)
        if step % cfg.train.log_every == 0 or step == 1:
            progress.log(step, totals)
        if step % cfg.train.checkpoint_every == 0:
            save_checkpoint(accelerator, out / "checkpoints", step, {"script": "train_capture"}, cfg.train.keep_checkpoints)
        if cfg.train.sample_every and step % cfg.train.sample_every == 0 and accelerator.is_main_process:
            errors = evaluate(net, eval_batch)
            eval_log.write(step, errors)
            logger.info("step %d validation: %s", step, json.dumps({k: round(v, 4) for k, v in errors.items()}))
    if step < cfg.train.max_steps:
        logger.info("stopped at step %d (train.stop_at); resume with --resume latest", step)
        accelerator.end_training()
        return 0

    # 5. Final: validation errors and the pipeline folder.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        errors = evaluate(net, eval_batch)
        if not (cfg.train.sample_every and step % cfg.train.sample_every == 0):  # else logged in the loop already
            eval_log.write(step, errors)
        logger.info("final validation: %s", json.dumps({k: round(v, 4) for k, v in errors.items()}))
        inner = accelerator.unwrap_model(net).unet.eval()
        with AtomicFolder(out / "model", overwrite=True) as tmp:
            StableMaterialsCapturePipeline(unet=inner, patch_size=m.patch_size).save_pretrained(tmp)
        logger.info("saved %s", Path(out / "model"))
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_capture"))
