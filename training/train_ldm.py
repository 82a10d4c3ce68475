"""Train the latent diffusion UNet on material latents, optionally with unannotated images (semi-supervised).

    python -m training.train_ldm --config training/configs/ldm_small.yaml --vae runs/vae/vae
    accelerate launch --num_processes 2 --cpu -m training.train_ldm --config ...

The UNet (diffusers UNet2DConditionModel) is conditioned on one caption embedding as a single cross-attention token
(StableMaterials, arXiv 2406.09293). Caption embeddings are fixed, so they are computed once at start-up. A share
`diffusion.cond_dropout` of the prompts is replaced by the empty caption for classifier-free guidance; an EMA of
the weights is kept and saved as the final UNet. With `--semi.images PATH`, a second stream of captioned RGB images
adds an adversarial loss (see training/semi.py for the design and why). Outputs in OUTPUT/: `model/` (a pipeline
folder for StableMaterialsPipeline.from_pretrained), `samples/`, `checkpoints/`, `losses.jsonl`, `config.json`.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel

from stablematerials.conditioning import embedding_dim
from stablematerials.io import AtomicFolder
from stablematerials.latents import denormalize_latents
from stablematerials.pipeline import StableMaterialsPipeline, apply_guidance

from .checkpoint import resume_or_seed, save_checkpoint
from .config import LDMConfig, parse_config
from .data import (
    ImageDataset,
    ShardedBatchSampler,
    batch_latents,
    batch_stream,
    default_sample_prompts,
    open_image_source,
    training_set,
)  # fmt: skip
from .losses import (
    diffusion_target,
    hinge_d_loss,
    hinge_g_loss,
    min_snr_weights,
    predicted_x0,
)
from .models import (
    ProjectionDiscriminator,
    add_lora,
    build_train_scheduler,
    build_unet,
    inference_scheduler,
    load_teacher_pipeline,
    load_text_encoder,
    load_vae,
    merge_lora,
    vae_scale_factor,
)  # fmt: skip
from .runtime import (
    JsonlLog,
    Progress,
    embed_captions,
    end_process_group,
    end_trackers,
    ensure_finite,
    generate_materials,
    log_sample_names,
    lookup,
    make_lr_scheduler,
    make_optimizer,
    save_samples,
    start_run,
)  # fmt: skip
from .semi import (
    FrozenSnapshot,
    anchor_loss,
    anchor_maps_for,
    discriminator_view,
    downsample,
    guided_output,
    own_trajectory_inputs,
)

logger = logging.getLogger("training.train_ldm")


def main(argv: list[str] | None = None) -> int:
    train(parse_config(LDMConfig, sys.argv[1:] if argv is None else argv))
    end_process_group()
    return 0


def train(cfg: LDMConfig) -> Path:
    """Run (or resume) the training `cfg` describes; returns OUTPUT/model (written at the end, not with train.stop_at)."""
    accelerator, out = start_run(cfg, "train_ldm")
    device = accelerator.device

    # 1. Frozen parts: the VAE and the text encoder (from the base pipeline when continuing from one).
    base = load_teacher_pipeline(cfg.init_from) if cfg.init_from else None
    vae = base.vae if base is not None else load_vae(cfg.vae)
    vae = vae.to(device).eval().requires_grad_(False)
    factor = vae_scale_factor(vae)
    if cfg.data.crop_size % factor:
        raise ValueError(f"data.crop_size {cfg.data.crop_size} is not a multiple of the VAE's factor {factor}")
    text_encoder, tokenizer = (base.text_encoder, base.tokenizer) if base is not None else load_text_encoder(cfg.text_encoder)

    # 2. Data: materials, optional unannotated images, and every caption's embedding computed once.
    dataset, material_captions, source = training_set(cfg.data, factor, cfg.init_from or cfg.vae)
    images = None
    if cfg.semi.images:
        source = open_image_source(cfg.semi.images, cfg.semi.image_column, cfg.semi.caption_column)
        images = ImageDataset(source, cfg.data.crop_size, cfg.semi.resolution or cfg.data.resolution, cfg.data.flips, cfg.data.rotations)
    prompts = cfg.sample.prompts or default_sample_prompts(cfg.data, dataset, cfg.sample.count)
    captions = material_captions + list(prompts)
    if images is not None:
        captions += [images.source.caption(i) for i in range(len(images))]
    embed_dim = embedding_dim(text_encoder, None)
    if base is not None:
        embedding_scale = base.config.embedding_scale
    else:
        embedding_scale = cfg.embedding_scale or math.sqrt(embed_dim)
    embeds = embed_captions(text_encoder, tokenizer, captions, device, embedding_scale)
    logger.info(
        "%d materials from %s, %s images, %d captions (%d-d, x %.2f), %d processes", len(dataset),
        source, len(images) if images else "no", len(embeds), embed_dim,
        embedding_scale, accelerator.num_processes,
    )  # fmt: skip

    # 3. Models: UNet (+ EMA of what is trained), discriminator for the semi-supervised stream; the same initial
    #    weights everywhere. From a base pipeline: its UNet and its noise schedule, optionally with LoRA adapters.
    latent_size = cfg.data.crop_size // factor
    if base is not None:
        unet, noise_scheduler = base.unet, DDPMScheduler.from_config(base.scheduler.config)
        if unet.config.cross_attention_dim != embed_dim:
            raise ValueError(f"{cfg.init_from}: UNet expects {unet.config.cross_attention_dim}-d embeddings, text encoder gives {embed_dim}")
    else:
        unet, noise_scheduler = build_unet(cfg.model, vae.config.latent_channels, embed_dim, latent_size), build_train_scheduler(cfg.diffusion)
    if cfg.lora.rank:
        add_lora(unet, cfg.lora)
    trained = [p for p in unet.parameters() if p.requires_grad]
    logger.info("UNet: %.2fM parameters (%.2fM trained), latents %dx%dx%d", sum(p.numel() for p in unet.parameters()) / 1e6,
                sum(p.numel() for p in trained) / 1e6, vae.config.latent_channels, latent_size, latent_size)  # fmt: skip
    ema = EMAModel(
        trained, decay=cfg.diffusion.ema_decay, use_ema_warmup=cfg.diffusion.ema_warmup,
        model_cls=UNet2DConditionModel, model_config=unet.config,
    )  # fmt: skip
    optimizer = make_optimizer(trained, cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    if images is not None:
        disc = ProjectionDiscriminator(3, embed_dim, cfg.semi.disc_channels)
        disc_optimizer = make_optimizer(disc.parameters(), cfg.train, lr=cfg.semi.disc_lr)
        unet, disc, optimizer, disc_optimizer, lr_scheduler = accelerator.prepare(unet, disc, optimizer, disc_optimizer, lr_scheduler)
    else:
        unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    ema.to(device)
    accelerator.register_for_checkpointing(ema)

    def ema_unet() -> UNet2DConditionModel:
        """A copy of the UNet with the EMA weights, adapters merged (the training modules stay untouched)."""
        unet_copy = copy.deepcopy(accelerator.unwrap_model(unet)).eval()
        ema.copy_to([p for p in unet_copy.parameters() if p.requires_grad])
        return merge_lora(unet_copy).requires_grad_(False)

    # The semi-supervised anchor (training/semi.py): a frozen EMA snapshot, taken when the image stream starts and
    # kept in checkpoints, holds the maps the discriminator does not see.
    anchor_maps = anchor_maps_for(cfg.semi.view, cfg.semi.anchor_maps) if images is not None and cfg.semi.anchor_weight else []
    snapshot = FrozenSnapshot(ema_unet)
    if anchor_maps:
        accelerator.register_for_checkpointing(snapshot)

    # 4. Resume: weights, optimisers, schedule, EMA, RNG of every process; the data order follows from the step.
    step = resume_or_seed(accelerator, out / "checkpoints", cfg.resume, cfg.seed)
    if step:
        ema.to(device)
    accum = cfg.train.gradient_accumulation_steps
    rank, world = accelerator.process_index, accelerator.num_processes
    batches = batch_stream(
        dataset, ShardedBatchSampler(len(dataset), cfg.train.batch_size, cfg.seed, rank, world, step * accum), cfg.data.num_workers
    )
    if images is not None:
        image_start = max(0, step - cfg.semi.start_step) * accum  # image batches are drawn from semi.start_step on
        image_batches = batch_stream(
            images, ShardedBatchSampler(len(images), cfg.semi.batch_size, cfg.seed + 1, rank, world, image_start), cfg.data.num_workers
        )
        light = torch.tensor(cfg.semi.light, device=device)
    progress = Progress(accelerator, cfg.train.max_steps, step)
    loss_log = JsonlLog(accelerator, out / "losses.jsonl", step)
    num_t = noise_scheduler.config.num_train_timesteps
    ptype = cfg.diffusion.prediction_type
    empty = embeds[""].to(device)
    guidance = cfg.semi.guidance_scale

    def ema_pipeline() -> StableMaterialsPipeline:
        """A pipeline with a copy of the EMA weights (the training modules stay untouched)."""
        return StableMaterialsPipeline(
            vae=copy.deepcopy(vae), unet=ema_unet(), scheduler=inference_scheduler(noise_scheduler),
            text_encoder=text_encoder, tokenizer=tokenizer, embedding_scale=embedding_scale,
        )  # fmt: skip

    def decode_prediction(pred: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet's output for noisy latents at t -> the predicted clean material, decoded (B, 9, H, W)."""
        x0 = predicted_x0(noise_scheduler, pred, noisy.float(), t, ptype)
        return vae.decode(denormalize_latents(vae.config, x0)).sample.float()

    def write_samples(pipe: StableMaterialsPipeline, at_step: int) -> None:
        s = cfg.sample
        materials = generate_materials(pipe, prompts, s.seed, s.steps, s.guidance_scale, s.size or cfg.data.crop_size, s.tileable)
        save_samples(materials, out / "samples" / f"step_{at_step:08d}", prompts)

    # 5. Train.
    unet.train()
    while step < cfg.train.max_steps and not (cfg.train.stop_at and step >= cfg.train.stop_at):
        totals: dict[str, float] = {}
        semi_active = images is not None and step >= cfg.semi.start_step
        if semi_active and anchor_maps and snapshot.module is None:
            snapshot.take(ema_unet())
            logger.info("step %d: image stream on; %s held to the EMA snapshot", step, ", ".join(anchor_maps))
        for _ in range(accum):
            batch = next(batches)
            if cfg.train.debug_log_samples:
                log_sample_names(accelerator, out, step + 1, batch["name"])
            latents = batch_latents(vae, batch, device)
            b = latents.shape[0]
            noise = torch.randn_like(latents)
            t = torch.randint(0, num_t, (b,), device=device)
            noisy = noise_scheduler.add_noise(latents, noise, t)
            cond = lookup(embeds, batch["caption"]).to(device)
            drop = torch.rand(b, device=device) < cfg.diffusion.cond_dropout
            cond = torch.where(drop[:, None, None], empty.view(1, 1, -1), cond)
            target = diffusion_target(noise_scheduler, latents, noise, t, ptype)
            model_in, t_in, cond_in = noisy, t, cond
            if semi_active:  # fakes for the image captions ride along in the same UNet call (one DDP forward)
                ib = next(image_batches)
                real = ib["image"].to(device)
                n_img = real.shape[0]
                cond_img = lookup(embeds, ib["caption"]).to(device)
                uncond_img = empty.view(1, 1, -1).expand_as(cond_img)
                # Fakes start from pure noise at t = T, a share of them one (guided) step along the model's own
                # trajectory (training/semi.py: a noised image would hand the generator its colours).
                noisy_img, t_img = own_trajectory_inputs(
                    accelerator.unwrap_model(unet), noise_scheduler, torch.randn(n_img, *latents.shape[1:], device=device),
                    torch.full((n_img,), num_t - 1, device=device), cond_img, ptype, cfg.semi.trajectory_share, cfg.semi.t_min,
                    uncond_img, guidance,
                )  # fmt: skip
                copies = 2 if guidance != 1 else 1  # the unconditional branch rides along when guided
                model_in = torch.cat([noisy] + [noisy_img] * copies)
                t_in = torch.cat([t] + [t_img] * copies)
                cond_in = torch.cat([cond, cond_img] + [uncond_img] * (copies - 1))
            with accelerator.accumulate(*([unet, disc] if images is not None else [unet])):
                pred = unet(model_in, t_in, encoder_hidden_states=cond_in).sample.float()
                per_sample = ((pred[:b] - target.float()) ** 2).mean(dim=(1, 2, 3))
                if cfg.diffusion.snr_gamma > 0:
                    per_sample = per_sample * min_snr_weights(noise_scheduler, t, cfg.diffusion.snr_gamma, ptype)
                loss = per_sample.mean()
                parts = {"diffusion": loss}
                if semi_active:
                    pred_img = pred[b : b + n_img]
                    if guidance != 1:  # judged as sampled; the unconditional branch is not pulled towards the images
                        pred_img = apply_guidance(pred_img, pred[b + n_img :].detach(), guidance)
                    decoded = decode_prediction(pred_img, noisy_img, t_img)
                    fake = discriminator_view(decoded, cfg.semi.view, light, cfg.semi.render_size)
                    d_inner = accelerator.unwrap_model(disc)
                    d_inner.requires_grad_(False)  # the generator's loss must not train the discriminator
                    g_adv = hinge_g_loss(d_inner(fake, cond_img))
                    d_inner.requires_grad_(True)
                    loss = loss + cfg.semi.weight * g_adv
                    parts["g_adv"] = g_adv
                    if anchor_maps:
                        with torch.no_grad():
                            ref = guided_output(snapshot.module, noisy_img, t_img, cond_img, uncond_img, guidance)
                            ref_decoded = decode_prediction(ref, noisy_img, t_img)
                        anchor = anchor_loss(decoded, ref_decoded, anchor_maps)
                        loss = loss + cfg.semi.anchor_weight * anchor
                        parts["anchor"] = anchor
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trained, cfg.train.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if semi_active:
                    real_small = downsample(real, cfg.semi.render_size)
                    logits = disc(torch.cat([real_small, fake.detach()]), torch.cat([cond_img, cond_img]))
                    d_loss = hinge_d_loss(*logits.chunk(2))
                    accelerator.backward(d_loss)
                    disc_optimizer.step()
                    disc_optimizer.zero_grad(set_to_none=True)
                    parts["disc"] = d_loss
            parts["loss"] = loss
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + float(accelerator.reduce(v.detach().float(), "mean")) / accum
        ema.step(trained)
        step += 1
        ensure_finite(step, totals)
        loss_log.write(step, totals)
        if step % cfg.train.log_every == 0 or step == 1:
            progress.log(step, totals)
        if step % cfg.train.checkpoint_every == 0:
            save_checkpoint(accelerator, out / "checkpoints", step, {"script": "train_ldm"}, cfg.train.keep_checkpoints)
        if cfg.train.sample_every and step % cfg.train.sample_every == 0 and accelerator.is_main_process:
            write_samples(ema_pipeline(), step)
    if step < cfg.train.max_steps:
        logger.info("stopped at step %d (train.stop_at); resume with --resume latest", step)
        end_trackers(accelerator)
        return out / "model"

    # 6. Final: the pipeline folder with the EMA UNet, and samples at fixed seeds.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        pipe = ema_pipeline()
        with AtomicFolder(out / "model", overwrite=True) as tmp:
            pipe.save_pretrained(tmp)
        logger.info("saved %s", out / "model")
        write_samples(pipe, step)
    accelerator.wait_for_everyone()
    end_trackers(accelerator)
    return out / "model"


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_ldm"))
