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

import logging
import sys

import torch

from stablematerials.io import AtomicFolder
from stablematerials.material import MODEL_CHANNELS, Material
from stablematerials.render import random_light_positions

from .checkpoint import resume_or_seed, save_checkpoint
from .config import VAEConfig, parse_config
from .data import (
    MaterialDataset,
    ShardedBatchSampler,
    batch_stream,
    discover_materials,
    material_root,
    preview_records,
)
from .losses import MAP_CHANNELS, hinge_d_loss, hinge_g_loss, kl_per_element, lowpass_l1, map_l1, render_l1
from .models import AutoencoderStep, PatchDiscriminator, build_vae, load_vae, vae_scale_factor
from .runtime import (
    JsonlLog,
    Progress,
    ensure_finite,
    log_sample_names,
    make_lr_scheduler,
    make_optimizer,
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
    cfg = parse_config(VAEConfig, sys.argv[1:] if argv is None else argv)
    accelerator, out = start_run(cfg, "train_vae")
    device = accelerator.device

    # 1. Data: augmented crops of annotated materials.
    records = discover_materials(cfg.data.root, cfg.data.split, cfg.data.families, cfg.data.exclude_families)
    dataset = MaterialDataset(
        records, cfg.data.crop_size, cfg.data.resolution, cfg.data.wrap, cfg.data.flips, cfg.data.rotations, cfg.data.cache
    )
    logger.info("%d materials from %s, %d processes", len(dataset), material_root(cfg.data.root, cfg.data.split), accelerator.num_processes)

    # 2. Models and optimisers (identical initial weights on every process: the seed is shared until here).
    vae = load_vae(cfg.init_from) if cfg.init_from else build_vae(cfg.model, cfg.data.crop_size)
    if cfg.decoder_only:
        for part in (vae.encoder, vae.quant_conv):
            if part is not None:
                part.requires_grad_(False)
    model = AutoencoderStep(vae)
    use_disc = cfg.loss.disc > 0
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    logger.info("VAE: %.2fM parameters (%.2fM trained), latent %d channels at 1/%d", sum(p.numel() for p in vae.parameters()) / 1e6,
                sum(p.numel() for p in vae.parameters() if p.requires_grad) / 1e6, vae.config.latent_channels,
                vae_scale_factor(vae))  # fmt: skip
    if use_disc:
        disc = PatchDiscriminator(MODEL_CHANNELS)
        disc_optimizer = make_optimizer(disc.parameters(), cfg.train, lr=cfg.loss.disc_lr)
        model, disc, optimizer, disc_optimizer, lr_scheduler = accelerator.prepare(model, disc, optimizer, disc_optimizer, lr_scheduler)
    else:
        model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)

    # 3. Resume: weights, optimisers, schedule, RNG of every process; the data order follows from the step.
    step = resume_or_seed(accelerator, out / "checkpoints", cfg.resume, cfg.seed)
    accum = cfg.train.gradient_accumulation_steps
    sampler = ShardedBatchSampler(
        len(dataset), cfg.train.batch_size, cfg.seed, accelerator.process_index, accelerator.num_processes, step * accum
    )
    batches = batch_stream(dataset, sampler, cfg.data.num_workers)
    progress = Progress(accelerator, cfg.train.max_steps, step)
    loss_log = JsonlLog(accelerator, out / "losses.jsonl", step)
    weights = {"basecolor": cfg.loss.basecolor, "normal": cfg.loss.normal, "height": cfg.loss.height,
               "roughness": cfg.loss.roughness, "metallic": cfg.loss.metallic, "unused": 1.0}  # fmt: skip

    sample_records = preview_records(cfg.data.root, cfg.sample.split, cfg.data.split, cfg.sample.count)
    sample_set = MaterialDataset(sample_records, cfg.data.crop_size, cfg.data.resolution, cache=False)

    def write_samples(at_step: int) -> None:
        if not accelerator.is_main_process:
            return
        inner = accelerator.unwrap_model(model).vae
        recon = reconstruct(inner, [sample_set.load(i) for i in range(len(sample_set))], device)
        save_samples(recon, out / "samples" / f"step_{at_step:08d}", [r.name for r in sample_records])
        inner.train()

    # 4. Train.
    model.train()
    while step < cfg.train.max_steps and not (cfg.train.stop_at and step >= cfg.train.stop_at):
        totals: dict[str, float] = {}
        for _ in range(accum):
            batch = next(batches)
            if cfg.train.debug_log_samples:
                log_sample_names(accelerator, out, step + 1, batch["name"])
            x = batch["x"].to(device)
            adversarial = use_disc and step >= cfg.loss.disc_start
            with accelerator.accumulate(*([model, disc] if use_disc else [model])):
                recon, mean, logvar = model(x)
                recon = recon.float()
                terms = map_l1(recon, x)
                loss = sum(weights[k] * v for k, v in terms.items())
                kl = kl_per_element(mean.float(), logvar.float())
                lights = random_light_positions(x.shape[0], cfg.loss.render_lights, device=device)
                rend = render_l1(recon, x, lights)
                loss = loss + cfg.loss.kl * kl + cfg.loss.render * rend
                parts = {"rec": sum(terms.values()), "kl": kl, "render": rend}
                if cfg.loss.color:
                    color = lowpass_l1(recon, x, MAP_CHANNELS["basecolor"], cfg.loss.color_pool)
                    loss = loss + cfg.loss.color * color
                    parts["color"] = color
                if adversarial:
                    d_inner = accelerator.unwrap_model(disc)
                    d_inner.requires_grad_(False)  # the generator's loss must not train the discriminator
                    g_adv = hinge_g_loss(d_inner(recon))
                    d_inner.requires_grad_(True)
                    loss = loss + cfg.loss.disc * g_adv
                    parts["g_adv"] = g_adv
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if adversarial:
                    logits = disc(torch.cat([x, recon.detach()]))
                    d_loss = hinge_d_loss(*logits.chunk(2))
                    accelerator.backward(d_loss)
                    disc_optimizer.step()
                    disc_optimizer.zero_grad(set_to_none=True)
                    parts["disc"] = d_loss
            parts["loss"] = loss
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + float(accelerator.reduce(v.detach().float(), "mean")) / accum
        step += 1
        ensure_finite(step, totals)
        loss_log.write(step, totals)
        if step % cfg.train.log_every == 0 or step == 1:
            progress.log(step, totals)
        if step % cfg.train.checkpoint_every == 0:
            save_checkpoint(accelerator, out / "checkpoints", step, {"script": "train_vae"}, cfg.train.keep_checkpoints)
        if cfg.train.sample_every and step % cfg.train.sample_every == 0:
            write_samples(step)
    if step < cfg.train.max_steps:
        logger.info("stopped at step %d (train.stop_at); resume with --resume latest", step)
        accelerator.end_training()
        return 0

    # 5. Final: scaling factor, the VAE folder, reconstructions.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        vae = accelerator.unwrap_model(model).vae.eval()
        if not cfg.decoder_only:  # a fixed encoder keeps its latents, and so their normalisation
            mean, std = latent_statistics(vae, dataset, cfg.seed, device)
            set_latent_normalization(vae, mean, std, cfg.model.latent_norm)
        with AtomicFolder(out / "vae", overwrite=True) as tmp:
            vae.save_pretrained(tmp)
        logger.info("saved %s (latent mean %s, std %s)", out / "vae", vae.config.latents_mean, vae.config.latents_std)
        write_samples(step)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_vae"))
