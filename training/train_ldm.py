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
import dataclasses
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel

from stablematerials.attributes import attribute_width, drop_attributes
from stablematerials.conditioning import embedding_dim, is_sentence_encoder
from stablematerials.image_encoder import load_image_encoder
from stablematerials.guidance import guide_latents
from stablematerials.io import AtomicFolder
from stablematerials.latents import decode_model_latents
from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.procedural import FAMILIES

from .config import LDMConfig, SemiConfig, parse_config
from .data import ImageDataset, batch_attributes, batch_latents, default_sample_prompts, image_key, open_image_source, training_set
from .losses import channel_mean, color_channel_weights, diffusion_target, min_snr_weights, predicted_x0
from .loop import Bookkeeping, discriminator_step, generator_loss, optimizer_step, sharded_batches
from .models import (
    ProjectionDiscriminator,
    add_attribute_embedding,
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
    embed_captions,
    embed_pictures,
    end_process_group,
    lookup,
    make_lr_scheduler,
    make_optimizer,
    sample_materials,
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
    run = set_up(cfg, accelerator, out)

    # 4. Resume: weights, optimisers, schedule, EMA, RNG of every process; the data order follows from the step.
    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed, script="train_ldm")
    step = book.start
    if step:
        run.ema.to(accelerator.device)
    batches = book.batches(run.dataset, cfg.seed, cfg.data.num_workers)
    if run.semi is not None:
        run.semi.start_batches(accelerator, step, cfg.train.gradient_accumulation_steps, cfg.seed + 1, cfg.data.num_workers)

    # 5. Train.
    run.unet.train()
    while book.running(step):
        with_images = semi_active(run, step)
        totals = book.micro_batch_means(lambda _: train_micro_step(run, book.next_batch(batches, step), with_images))
        run.ema.step(run.trained)
        step += 1
        book.end_step(step, totals, sample=lambda at: write_samples(run, ema_pipeline(run), at))

    # 6. Final: the pipeline folder with the EMA UNet, and samples at fixed seeds.
    book.end(step, save=lambda: save_model(run, step))
    return out / "model"


@dataclasses.dataclass
class SemiStream:
    """The semi-supervised stream (training/semi.py): captioned images without maps, judged by a discriminator,
    with the maps it cannot judge held to a frozen snapshot of the EMA UNet (`anchor_maps`, may be empty)."""

    cfg: SemiConfig
    images: ImageDataset
    disc: torch.nn.Module
    disc_optimizer: torch.optim.Optimizer
    anchor_maps: list[str]
    snapshot: FrozenSnapshot  # taken when the stream starts; kept in checkpoints when there are anchor maps
    light: torch.Tensor
    batches: Iterator[dict] | None = None

    def start_batches(self, accelerator: Accelerator, step: int, accum: int, seed: int, num_workers: int) -> None:
        """The image batches of a run at `step`: they are drawn from semi.start_step on."""
        first = max(0, step - self.cfg.start_step) * accum
        self.batches = sharded_batches(accelerator, self.images, self.cfg.batch_size, seed, first, num_workers)


@dataclasses.dataclass
class LDMRun:
    """What one run of train_ldm works with (built by `set_up`)."""

    cfg: LDMConfig
    accelerator: Accelerator
    out: Path
    vae: torch.nn.Module  # frozen
    text_encoder: torch.nn.Module  # frozen
    tokenizer: object
    embedding_scale: float
    embeds: dict[str, torch.Tensor]  # every caption's embedding (times embedding_scale), computed once
    prompts: list[str]  # what the samples show
    dataset: object  # the materials (or their cached latents)
    unet: torch.nn.Module  # prepared
    noise_scheduler: DDPMScheduler
    trained: list[torch.nn.Parameter]  # all UNet weights, or the LoRA adapters
    ema: EMAModel  # of `trained`
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    semi: SemiStream | None = None
    color_latents: bool = False  # the model's latents end with 3 colour channels (stablematerials.color_latents)
    color_guidance_max: float | None = None  # kept from init_from's teacher: how its colour latents are guided
    channel_weight: torch.Tensor | None = None  # (C,) denoising-loss weights (diffusion.color_weight); None: plain mean
    # kept from init_from's teacher: which UNet samples by default and its steps (prefer_teacher, teacher_steps)
    default_sampling: dict = dataclasses.field(default_factory=dict)
    attribute_families: list[str] | None = None  # the UNet also takes attributes over these (`attributes`)

    @property
    def prediction_type(self) -> str:
        """What the UNet predicts: the noise schedule's (diffusion.*, or init_from's: a continued v-prediction model
        must not be trained on epsilon targets, which is what reading diffusion.prediction_type's default did)."""
        return self.noise_scheduler.config.prediction_type


def set_up(cfg: LDMConfig, accelerator: Accelerator, out: Path) -> LDMRun:
    """Frozen parts, data and models, prepared for training (the same initial weights on every process)."""
    # 1. Frozen parts: the VAE and the text encoder (from the base pipeline when continuing from one).
    base = load_teacher_pipeline(cfg.init_from) if cfg.init_from else None
    vae = base.vae if base is not None else load_vae(cfg.vae)
    vae = vae.to(accelerator.device).eval().requires_grad_(False)
    factor = vae_scale_factor(vae)
    if cfg.data.crop_size % factor:
        raise ValueError(f"data.crop_size {cfg.data.crop_size} is not a multiple of the VAE's factor {factor}")
    text_encoder, tokenizer = (base.text_encoder, base.tokenizer) if base is not None else load_text_encoder(cfg.text_encoder)

    # 2. Data: materials, optional unannotated images, and every caption's embedding computed once.
    dataset, material_captions, source = training_set(cfg.data, factor, cfg.init_from or cfg.vae)
    images = open_images(cfg)
    prompts = cfg.sample.prompts or default_sample_prompts(cfg.data, dataset, cfg.sample.count)
    captions = material_captions + list(prompts)
    if images is not None and not images.by_image:
        captions += [images.condition(i) for i in range(len(images))]
    embed_dim = embedding_dim(text_encoder, None)
    embedding_scale = base.config.embedding_scale if base is not None else cfg.embedding_scale or math.sqrt(embed_dim)
    embeds = embed_captions(text_encoder, tokenizer, captions, accelerator.device, embedding_scale)
    if images is not None and images.by_image:
        embeds |= image_embeddings(cfg, base, images, text_encoder, accelerator.device, embedding_scale)
    logger.info(
        "%d materials from %s, %s images, %d captions (%d-d, x %.2f), %d processes", len(dataset),
        source, len(images) if images else "no", len(embeds), embed_dim,
        embedding_scale, accelerator.num_processes,
    )  # fmt: skip

    # 3. Models (UNet, its EMA, the stream's discriminator), optimisers and schedule, prepared.
    families = attribute_families(cfg, base)
    if families is not None and images is not None:
        raise ValueError("the semi-supervised stream (semi.images) does not yet give its fakes attributes; train "
                         "with attributes false, or without semi.images")  # fmt: skip
    unet, noise_scheduler = make_unet(cfg, base, vae, embed_dim, cfg.data.crop_size // factor, families)
    trained, ema, optimizer, lr_scheduler = make_trainer(cfg, unet, accelerator.num_processes)
    color = base.config.color_latents if base is not None else cfg.model.color_latents
    if cfg.diffusion.color_weight != 1 and not color:
        raise ValueError(f"diffusion.color_weight is {cfg.diffusion.color_weight}, but the model has no colour latents")
    weights = color_channel_weights(unet.config.in_channels, cfg.diffusion.color_weight) if color else None
    color_guidance = base.config.color_guidance_max if base is not None else None
    base_config = base.config if base is not None else {}
    sampling = {k: base_config[k] for k in ("prefer_teacher", "teacher_steps") if base_config.get(k)}
    run = LDMRun(cfg, accelerator, out, vae, text_encoder, tokenizer, embedding_scale, embeds, list(prompts), dataset,
                 unet, noise_scheduler, trained, ema, optimizer, lr_scheduler, color_latents=color,
                 color_guidance_max=color_guidance, default_sampling=sampling, attribute_families=families,
                 channel_weight=None if weights is None else weights.to(accelerator.device))  # fmt: skip
    prepare_training(run, images, embed_dim)
    return run


def attribute_families(cfg: LDMConfig, base) -> list[str] | None:
    """The families the UNet's attributes range over: the base model's if it takes attributes, else the procedural
    families with `attributes`, else None (no attributes)."""
    if base is not None and base.config.get("attribute_families"):
        return list(base.config.attribute_families)
    return list(FAMILIES) if cfg.attributes else None


def open_images(cfg: LDMConfig) -> ImageDataset | None:
    """The semi-supervised stream's images (None without `semi.images`)."""
    if not cfg.semi.images:
        return None
    source = open_image_source(cfg.semi.images, cfg.semi.image_column, cfg.semi.caption_column)
    return ImageDataset(source, cfg.data.crop_size, cfg.semi.resolution or cfg.data.resolution, cfg.data.flips,
                        cfg.data.rotations, by_image=cfg.semi.condition == "image")  # fmt: skip


def image_embeddings(cfg: LDMConfig, base, images: ImageDataset, text_encoder, device, scale: float) -> dict:
    """Each readable image's own embedding by the image encoder (semi.condition "image"), keyed by `image_key`:
    the whole image as an image prompt of it would be embedded."""
    if cfg.semi.image_encoder:
        encoder, processor = load_image_encoder(cfg.semi.image_encoder)
    elif base is not None and base.vision_encoder is not None:
        encoder, processor = base.vision_encoder, base.processor
    else:
        raise ValueError("semi.condition image needs an image encoder: set semi.image_encoder (a folder with "
                         "vision_encoder/ and processor/) or init_from a model that has one")  # fmt: skip

    def pictures() -> Iterator[tuple[str, torch.Tensor]]:
        for i in range(len(images)):
            try:
                yield image_key(i), images.load(i)
            except Exception as e:  # noqa: BLE001 - an unreadable image is skipped, as the stream skips it
                logger.warning("not embedding unreadable image %s: %s", images.source.name(i), e)

    return embed_pictures(encoder, processor, pictures(), device, scale, normalize=is_sentence_encoder(text_encoder))


def make_unet(cfg: LDMConfig, base, vae, embed_dim: int, latent_size: int,
              families: list[str] | None) -> tuple[UNet2DConditionModel, DDPMScheduler]:  # fmt: skip
    """A new UNet and noise schedule, or the base pipeline's (optionally with LoRA adapters), taking attributes over
    `families` unless None."""
    if base is not None:
        unet, noise_scheduler = base.unet, DDPMScheduler.from_config(base.scheduler.config)
        if unet.config.cross_attention_dim != embed_dim:
            raise ValueError(f"{cfg.init_from}: UNet expects {unet.config.cross_attention_dim}-d embeddings, text encoder gives {embed_dim}")
    else:
        unet, noise_scheduler = build_unet(cfg.model, vae.config.latent_channels, embed_dim, latent_size), build_train_scheduler(cfg.diffusion)
    if families is not None:
        unet = add_attribute_embedding(unet, attribute_width(families))
    if cfg.lora.rank:
        add_lora(unet, cfg.lora)
    logger.info("UNet: %.2fM parameters (%.2fM trained), latents %dx%dx%d", sum(p.numel() for p in unet.parameters()) / 1e6,
                sum(p.numel() for p in unet.parameters() if p.requires_grad) / 1e6, unet.config.in_channels,
                latent_size, latent_size)  # fmt: skip
    return unet, noise_scheduler


def make_trainer(cfg: LDMConfig, unet: UNet2DConditionModel, num_processes: int) -> tuple:
    """What trains the UNet: its trained weights, their EMA, the optimiser and its LR schedule."""
    trained = [p for p in unet.parameters() if p.requires_grad]
    ema = EMAModel(
        trained, decay=cfg.diffusion.ema_decay, use_ema_warmup=cfg.diffusion.ema_warmup,
        model_cls=UNet2DConditionModel, model_config=unet.config,
    )  # fmt: skip
    optimizer = make_optimizer(trained, cfg.train)
    return trained, ema, optimizer, make_lr_scheduler(optimizer, cfg.train, num_processes)


def prepare_training(run: LDMRun, images: ImageDataset | None, embed_dim: int) -> None:
    """Prepare the trained modules (with the stream's discriminator, when there are images) and register what else a
    checkpoint holds: the EMA and, when the stream holds maps to it, the anchor snapshot."""
    cfg, accelerator = run.cfg, run.accelerator
    if images is not None:
        disc = ProjectionDiscriminator(3, embed_dim, cfg.semi.disc_channels)
        disc_optimizer = make_optimizer(disc.parameters(), cfg.train, lr=cfg.semi.disc_lr)
        run.unet, disc, run.optimizer, disc_optimizer, run.lr_scheduler = accelerator.prepare(
            run.unet, disc, run.optimizer, disc_optimizer, run.lr_scheduler
        )
    else:
        run.unet, run.optimizer, run.lr_scheduler = accelerator.prepare(run.unet, run.optimizer, run.lr_scheduler)
    run.ema.to(accelerator.device)
    accelerator.register_for_checkpointing(run.ema)
    # The semi-supervised anchor (training/semi.py): a frozen EMA snapshot, taken when the image stream starts and
    # kept in checkpoints, holds the maps the discriminator does not see.
    anchor_maps = anchor_maps_for(cfg.semi.view, cfg.semi.anchor_maps) if images is not None and cfg.semi.anchor_weight else []
    snapshot = FrozenSnapshot(lambda: ema_unet(run))
    if anchor_maps:
        accelerator.register_for_checkpointing(snapshot)
    if images is not None:
        light = torch.tensor(cfg.semi.light, device=accelerator.device)
        run.semi = SemiStream(cfg.semi, images, disc, disc_optimizer, anchor_maps, snapshot, light)


def semi_active(run: LDMRun, step: int) -> bool:
    """Whether the image stream is on at `step` (from semi.start_step on). When it starts with anchor maps, the EMA
    UNet is frozen as the snapshot they are held to (a resumed run has it from its checkpoint)."""
    semi = run.semi
    if semi is None or step < run.cfg.semi.start_step:
        return False
    if semi.anchor_maps and semi.snapshot.module is None:
        semi.snapshot.take(ema_unet(run))
        logger.info("step %d: image stream on; %s held to the EMA snapshot", step, ", ".join(semi.anchor_maps))
    return True


def train_micro_step(run: LDMRun, batch: dict, with_images: bool) -> dict[str, torch.Tensor]:
    """One micro-batch: the denoising loss on the materials and, once the image stream is on, its adversarial (and
    anchor) losses on fakes for the image captions, which ride along in the same UNet call (one DDP forward).
    Returns the loss terms."""
    cfg, accelerator, semi = run.cfg, run.accelerator, run.semi
    noisy, t, cond, target, attributes = denoising_inputs(run, batch)
    b = noisy.shape[0]
    fakes = image_fakes(run, noisy.shape[1:]) if with_images else None
    model_in, t_in, cond_in = (noisy, t, cond) if fakes is None else fakes.with_materials(noisy, t, cond)
    with accelerator.accumulate(*([run.unet, semi.disc] if semi is not None else [run.unet])):
        pred = run.unet(model_in, t_in, encoder_hidden_states=cond_in, class_labels=attributes).sample.float()
        per_sample = channel_mean((pred[:b] - target.float()) ** 2, run.channel_weight, dim=(1, 2, 3))
        if cfg.diffusion.snr_gamma > 0:
            d = cfg.diffusion
            per_sample = per_sample * min_snr_weights(run.noise_scheduler, t, d.snr_gamma, run.prediction_type, d.snr_plus_one)
        loss = per_sample.mean()
        parts = {"diffusion": loss}
        if fakes is not None:
            loss, fake_view = add_semi_losses(run, fakes, pred[b:], loss, parts)
        optimizer_step(accelerator, loss, run.trained, run.optimizer, run.lr_scheduler, cfg.train.max_grad_norm)
        if fakes is not None:
            real = downsample(fakes.real, cfg.semi.render_size)
            parts["disc"] = discriminator_step(accelerator, semi.disc, semi.disc_optimizer, real, fake_view, fakes.cond)
    parts["loss"] = loss
    return parts


def denoising_inputs(run: LDMRun, batch: dict) -> tuple[torch.Tensor, ...]:
    """A material batch -> noisy latents at random t, their conditioning (a share of it dropped to the empty caption
    for classifier-free guidance), the target the UNet should predict, and the attributes (None for a UNet without;
    dropped with the caption, and of the rest a share `attribute_dropout` loses the attributes alone and a share
    `caption_dropout` the caption alone)."""
    device, diffusion = run.accelerator.device, run.cfg.diffusion
    latents = batch_latents(run.vae, batch, device, run.color_latents)
    b = latents.shape[0]
    noise = torch.randn_like(latents)
    t = torch.randint(0, run.noise_scheduler.config.num_train_timesteps, (b,), device=device)
    noisy = run.noise_scheduler.add_noise(latents, noise, t)
    cond = lookup(run.embeds, batch["caption"]).to(device)
    drop = torch.rand(b, device=device) < diffusion.cond_dropout  # caption and attributes: guidance's "none"
    attributes = None
    if run.attribute_families is not None:
        share = torch.rand(b, device=device)  # then one of: attributes alone dropped, caption alone dropped
        attributes = drop_attributes(batch_attributes(batch, run.attribute_families, device),
                                     drop | (share < diffusion.attribute_dropout))  # fmt: skip
        drop = drop | ((share >= diffusion.attribute_dropout) & (share < diffusion.attribute_dropout + diffusion.caption_dropout))
    cond = torch.where(drop[:, None, None], run.embeds[""].to(device).view(1, 1, -1), cond)
    target = diffusion_target(run.noise_scheduler, latents, noise, t, run.prediction_type)
    return noisy, t, cond, target, attributes



@dataclasses.dataclass
class Fakes:
    """The inputs of one image batch's fakes: latents at t_img for the image captions, and the real images."""

    real: torch.Tensor  # (n, 3, S, S)
    noisy: torch.Tensor  # (n, C, h, w)
    t: torch.Tensor  # (n,)
    cond: torch.Tensor  # (n, 1, D)
    uncond: torch.Tensor  # (n, 1, D): the empty caption
    guidance: float
    color_guidance_max: float | None = None  # the model's cap on its colour latents' guidance (guide_latents)

    def with_materials(self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One UNet input for the material batch and the fakes (their unconditional branch too when guided)."""
        copies = 2 if self.guidance != 1 else 1
        return (
            torch.cat([noisy] + [self.noisy] * copies),
            torch.cat([t] + [self.t] * copies),
            torch.cat([cond, self.cond] + [self.uncond] * (copies - 1)),
        )


def image_fakes(run: LDMRun, latent_shape: torch.Size) -> Fakes:
    """The next image batch's fakes: they start from pure noise at t = T, a share of them one (guided) step along the
    model's own trajectory (training/semi.py: a noised image would hand the generator its colours)."""
    semi, device = run.semi, run.accelerator.device
    ib = next(semi.batches)
    real = ib["image"].to(device)
    n = real.shape[0]
    cond = lookup(run.embeds, ib["caption"]).to(device)
    uncond = run.embeds[""].to(device).view(1, 1, -1).expand_as(cond)
    num_t = run.noise_scheduler.config.num_train_timesteps
    noisy, t = own_trajectory_inputs(
        run.accelerator.unwrap_model(run.unet), run.noise_scheduler, torch.randn(n, *latent_shape, device=device),
        torch.full((n,), num_t - 1, device=device), cond, run.prediction_type, semi.cfg.trajectory_share,
        semi.cfg.t_min, uncond, semi.cfg.guidance_scale, run.color_guidance_max,
    )  # fmt: skip
    return Fakes(real, noisy, t, cond, uncond, semi.cfg.guidance_scale, run.color_guidance_max)


def add_semi_losses(
    run: LDMRun, fakes: Fakes, pred: torch.Tensor, loss: torch.Tensor, parts: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fakes' generator losses from the UNet's output for them (their conditional, then unconditional rows):
    the adversarial term and, with anchor maps, the anchor to the snapshot. Adds them to `loss` and `parts`;
    returns the loss and what the discriminator saw of the fakes."""
    semi, n = run.semi, fakes.noisy.shape[0]
    pred_img = pred[:n]
    if fakes.guidance != 1:  # judged as sampled; the unconditional branch is not pulled towards the images
        pred_img = guide_latents(pred_img, pred[n:].detach(), fakes.guidance, fakes.color_guidance_max)
    decoded = decode_prediction(run, pred_img, fakes.noisy, fakes.t)
    fake_view = discriminator_view(decoded, semi.cfg.view, semi.light, semi.cfg.render_size)
    g_adv = generator_loss(run.accelerator, semi.disc, fake_view, fakes.cond)
    loss = loss + semi.cfg.weight * g_adv
    parts["g_adv"] = g_adv
    if semi.anchor_maps:
        with torch.no_grad():
            ref = guided_output(semi.snapshot.module, fakes.noisy, fakes.t, fakes.cond, fakes.uncond, fakes.guidance,
                                fakes.color_guidance_max)  # fmt: skip
            ref_decoded = decode_prediction(run, ref, fakes.noisy, fakes.t)
        anchor = anchor_loss(decoded, ref_decoded, semi.anchor_maps)
        loss = loss + semi.cfg.anchor_weight * anchor
        parts["anchor"] = anchor
    return loss, fake_view


def decode_prediction(run: LDMRun, pred: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The UNet's output for noisy latents at t -> the predicted clean material, decoded (B, 9, H, W)."""
    x0 = predicted_x0(run.noise_scheduler, pred, noisy.float(), t, run.prediction_type)
    return decode_model_latents(run.vae, x0, run.color_latents, wrap=False).float()  # photos do not tile


def ema_unet(run: LDMRun) -> UNet2DConditionModel:
    """A copy of the UNet with the EMA weights, adapters merged (the training modules stay untouched)."""
    unet_copy = copy.deepcopy(run.accelerator.unwrap_model(run.unet)).eval()
    run.ema.copy_to([p for p in unet_copy.parameters() if p.requires_grad])
    return merge_lora(unet_copy).requires_grad_(False)


def ema_pipeline(run: LDMRun) -> StableMaterialsPipeline:
    """A pipeline with a copy of the EMA weights (the training modules stay untouched)."""
    return StableMaterialsPipeline(
        vae=copy.deepcopy(run.vae), unet=ema_unet(run), scheduler=inference_scheduler(run.noise_scheduler),
        text_encoder=run.text_encoder, tokenizer=run.tokenizer, embedding_scale=run.embedding_scale,
        color_latents=run.color_latents, color_guidance_max=run.color_guidance_max,
        attribute_families=run.attribute_families, **run.default_sampling,
    )  # fmt: skip


def write_samples(run: LDMRun, pipe: StableMaterialsPipeline, step: int) -> None:
    sample_materials(pipe, run.cfg.sample, run.prompts, run.cfg.data.crop_size, run.out, step)


def save_model(run: LDMRun, step: int) -> None:
    """OUTPUT/model: the pipeline folder with the EMA UNet; samples from it at fixed seeds."""
    pipe = ema_pipeline(run)
    with AtomicFolder(run.out / "model", overwrite=True) as tmp:
        pipe.save_pretrained(tmp)
    logger.info("saved %s", run.out / "model")
    write_samples(run, pipe, step)


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_ldm"))
