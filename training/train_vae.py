"""Train the material autoencoder: 9 model-space channels in and out (StableMaterials, arXiv 2406.09293, Sec. 3.1).

    python -m training.train_vae --config training/configs/vae_small.yaml
    accelerate launch -m training.train_vae --config ... --train.mixed_precision bf16

Losses: per-map L1 reconstruction, a small KL, an L1 between renders of the reconstruction and of the input under the
same random point lights (the maps as a renderer combines them), and an optional patch discriminator. The model is
fully convolutional: it trains on small crops and runs at any size. Outputs in OUTPUT/: `vae/` (AutoencoderKL
folder, with the latent normalisation measured at the end), `samples/` (reconstructions), `checkpoints/`,
`losses.jsonl`, `config.json`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from stablematerials.io import AtomicFolder
from stablematerials.material import MODEL_CHANNELS, Material
from stablematerials.render import random_light_positions

from .config import VAEConfig, VAELossConfig, parse_config
from .data import (
    MaterialDataset,
    ShardedBatchSampler,
    discover_materials,
    material_root,
    preview_records,
)
from .losses import MAP_CHANNELS, kl_per_element, lowpass_l1, map_l1, render_l1
from .loop import Bookkeeping, discriminator_step, generator_loss, optimizer_step
from .models import AutoencoderStep, PatchDiscriminator, build_vae, load_vae, vae_scale_factor
from .runtime import (
    end_process_group,
    make_lr_scheduler,
    make_optimizer,
    sample_folder,
    save_samples,
    start_run,
)  # fmt: skip

logger = logging.getLogger("training.train_vae")


@torch.no_grad()
def reconstruct(vae, materials: list[torch.Tensor], device: torch.device) -> list[Material]:
    """Encode (posterior mean) and decode whole materials."""
    vae.eval()
    out = []
    for x in materials:
        z = vae.encode(x[None].to(device)).latent_dist.mean
        out.append(Material.from_model_tensor(vae.decode(z).sample[0].float().cpu()))
    return out


@torch.no_grad()
def latent_statistics(vae, dataset: MaterialDataset, seed: int, device: torch.device, batches: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (C,) of the latents over some training crops."""
    sampler = ShardedBatchSampler(len(dataset), 8, seed + 17)
    zs = []
    for k in range(batches):
        x = torch.stack([dataset[key]["x"] for key in sampler.batch(k)]).to(device)
        zs.append(vae.encode(x).latent_dist.mean.float())
    z = torch.cat(zs).transpose(0, 1).flatten(1)  # (C, N*h*w)
    return z.mean(dim=1), z.std(dim=1).clamp_min(1e-6)


def set_latent_normalization(vae, mean: torch.Tensor, std: torch.Tensor, mode: str) -> None:
    """Record in the VAE config how latents become unit-scale model latents (see stablematerials.latents)."""
    if mode == "per_channel":
        vae.register_to_config(scaling_factor=1.0, latents_mean=mean.tolist(), latents_std=std.tolist())
    else:  # one scale for all channels (Stable Diffusion's convention): 1 / overall std
        overall = torch.sqrt((std**2 + (mean - mean.mean()) ** 2).mean())
        vae.register_to_config(scaling_factor=float(1.0 / overall), latents_mean=None, latents_std=None)


def main(argv: list[str] | None = None) -> int:
    train(parse_config(VAEConfig, sys.argv[1:] if argv is None else argv))
    end_process_group()
    return 0


def train(cfg: VAEConfig) -> Path:
    """Run (or resume) the training `cfg` describes; returns OUTPUT/vae (written at the end, not with train.stop_at)."""
    accelerator, out = start_run(cfg, "train_vae")
    run = set_up(cfg, accelerator, out)

    # 3. Resume: weights, optimisers, schedule, RNG of every process; the data order follows from the step.
    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed, script="train_vae")
    step = book.start
    batches = book.batches(run.dataset, cfg.seed, cfg.data.num_workers)
    samples = SampleSet(cfg)

    # 4. Train.
    run.model.train()
    while book.running(step):
        totals = book.micro_batch_means(lambda _: train_micro_step(run, book.next_batch(batches, step), step))
        step += 1
        book.end_step(step, totals, sample=lambda at: samples.write(run, at))

    # 5. Final: scaling factor, the VAE folder, reconstructions.
    book.end(step, save=lambda: save_vae(run, samples, step))
    return out / "vae"


@dataclasses.dataclass
class VAERun:
    """What one run of train_vae works with (built by `set_up`)."""

    cfg: VAEConfig
    accelerator: Accelerator
    out: Path
    dataset: MaterialDataset  # augmented crops of the annotated materials
    model: torch.nn.Module  # the prepared AutoencoderStep around the VAE
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    disc: torch.nn.Module | None = None  # with loss.disc > 0
    disc_optimizer: torch.optim.Optimizer | None = None


def set_up(cfg: VAEConfig, accelerator: Accelerator, out: Path) -> VAERun:
    """Data, model and optimisers, prepared (identical initial weights on every process: the seed is shared until here)."""
    # 1. Data: augmented crops of annotated materials.
    records = discover_materials(cfg.data.root, cfg.data.split, cfg.data.families, cfg.data.exclude_families)
    dataset = MaterialDataset(
        records, cfg.data.crop_size, cfg.data.resolution, cfg.data.wrap, cfg.data.flips, cfg.data.rotations, cfg.data.cache
    )
    logger.info("%d materials from %s, %d processes", len(dataset), material_root(cfg.data.root, cfg.data.split), accelerator.num_processes)

    # 2. Models and optimisers.
    vae = load_vae(cfg.init_from) if cfg.init_from else build_vae(cfg.model, cfg.data.crop_size)
    if cfg.decoder_only:
        for part in (vae.encoder, vae.quant_conv):
            if part is not None:
                part.requires_grad_(False)
    model = AutoencoderStep(vae)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    logger.info("VAE: %.2fM parameters (%.2fM trained), latent %d channels at 1/%d", sum(p.numel() for p in vae.parameters()) / 1e6,
                sum(p.numel() for p in vae.parameters() if p.requires_grad) / 1e6, vae.config.latent_channels,
                vae_scale_factor(vae))  # fmt: skip
    if cfg.loss.disc <= 0:
        model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
        return VAERun(cfg, accelerator, out, dataset, model, optimizer, lr_scheduler)
    disc = PatchDiscriminator(MODEL_CHANNELS)
    disc_optimizer = make_optimizer(disc.parameters(), cfg.train, lr=cfg.loss.disc_lr)
    model, disc, optimizer, disc_optimizer, lr_scheduler = accelerator.prepare(model, disc, optimizer, disc_optimizer, lr_scheduler)
    return VAERun(cfg, accelerator, out, dataset, model, optimizer, lr_scheduler, disc, disc_optimizer)


def train_micro_step(run: VAERun, batch: dict, step: int) -> dict[str, torch.Tensor]:
    """One micro-batch: reconstruction, KL, render (and colour) losses, the adversarial term from loss.disc_start on
    with its discriminator step. Returns the loss terms."""
    cfg, accelerator = run.cfg, run.accelerator
    x = batch["x"].to(accelerator.device)
    adversarial = run.disc is not None and step >= cfg.loss.disc_start
    with accelerator.accumulate(*([run.model, run.disc] if run.disc is not None else [run.model])):
        recon, mean, logvar = run.model(x)
        recon = recon.float()
        loss, parts = reconstruction_loss(cfg.loss, recon, x, mean, logvar)
        if adversarial:
            g_adv = generator_loss(accelerator, run.disc, recon)
            loss = loss + cfg.loss.disc * g_adv
            parts["g_adv"] = g_adv
        optimizer_step(accelerator, loss, run.model.parameters(), run.optimizer, run.lr_scheduler, cfg.train.max_grad_norm)
        if adversarial:
            parts["disc"] = discriminator_step(accelerator, run.disc, run.disc_optimizer, x, recon)
    parts["loss"] = loss
    return parts


def reconstruction_loss(
    w: VAELossConfig, recon: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted non-adversarial loss of a reconstruction (B, 9, H, W) of x, and its terms: per-map L1 ("rec"),
    KL, L1 between renders under the same random lights and, with loss.color, a low-pass basecolor L1."""
    weights = {"basecolor": w.basecolor, "normal": w.normal, "height": w.height, "roughness": w.roughness,
               "metallic": w.metallic, "unused": 1.0}  # fmt: skip
    terms = map_l1(recon, x)
    loss = sum(weights[k] * v for k, v in terms.items())
    kl = kl_per_element(mean.float(), logvar.float())
    lights = random_light_positions(x.shape[0], w.render_lights, device=x.device)
    rend = render_l1(recon, x, lights)
    loss = loss + w.kl * kl + w.render * rend
    parts = {"rec": sum(terms.values()), "kl": kl, "render": rend}
    if w.color:
        color = lowpass_l1(recon, x, MAP_CHANNELS["basecolor"], w.color_pool)
        loss = loss + w.color * color
        parts["color"] = color
    return loss, parts


class SampleSet:
    """The materials whose reconstructions are the samples (whole materials of sample.split)."""

    def __init__(self, cfg: VAEConfig) -> None:
        self.records = preview_records(cfg.data.root, cfg.sample.split, cfg.data.split, cfg.sample.count)
        self.materials = MaterialDataset(self.records, cfg.data.crop_size, cfg.data.resolution, cache=False)

    def write(self, run: VAERun, step: int) -> None:
        """Their reconstructions by the current VAE, as OUTPUT/samples/step_NNNNNNNN (on the main process)."""
        if not run.accelerator.is_main_process:
            return
        inner = run.accelerator.unwrap_model(run.model).vae
        recon = reconstruct(inner, [self.materials.load(i) for i in range(len(self.materials))], run.accelerator.device)
        save_samples(recon, sample_folder(run.out, step), [r.name for r in self.records])
        inner.train()


def save_vae(run: VAERun, samples: SampleSet, step: int) -> None:
    """OUTPUT/vae with the latent normalisation measured on training crops (kept when the encoder was fixed), and
    reconstructions by it."""
    cfg = run.cfg
    vae = run.accelerator.unwrap_model(run.model).vae.eval()
    if not cfg.decoder_only:  # a fixed encoder keeps its latents, and so their normalisation
        mean, std = latent_statistics(vae, run.dataset, cfg.seed, run.accelerator.device)
        set_latent_normalization(vae, mean, std, cfg.model.latent_norm)
    with AtomicFolder(run.out / "vae", overwrite=True) as tmp:
        vae.save_pretrained(tmp)
    logger.info("saved %s (latent mean %s, std %s)", run.out / "vae", vae.config.latents_mean, vae.config.latents_std)
    samples.write(run, step)


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_vae"))
