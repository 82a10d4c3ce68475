"""Distil a trained pipeline's UNet into a latent-consistency student that samples in 2 to 8 steps.

    python -m training.distill_lcm --config training/configs/lcm_small.yaml --teacher runs/ldm/model

Latent consistency distillation (Luo et al. 2023, arXiv 2310.04378, Alg. 1): from a noisy latent at t_{n+k}, the
frozen teacher takes one guided DDIM step to t_n (guidance weight w drawn per sample); the student's consistency
function at t_{n+k} must match that of an EMA copy of itself ("target") at t_n. The student embeds w
(`time_cond_proj_dim`, as the published `unet_lcm`): the pipeline passes guidance_scale - 1 = w, and the teacher's
guided prediction is x_cond + w (x_cond - x_uncond). The new embedding projection starts at zero, so the student
starts as the teacher. Output: OUTPUT/model/ = the teacher pipeline plus `unet_lcm/` (the EMA target, the LCM
default), loadable with StableMaterialsPipeline.from_pretrained(path, student=True). With `lcm.lora_rank` the
student is the teacher plus trained low-rank adapters and guidance projection, and `unet_lcm/` holds only those.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler, LCMScheduler, UNet2DConditionModel

from stablematerials.attributes import attribute_input_width, drop_attributes
from stablematerials.guidance import check_color_guidance, guidance_scale_embedding, guide_latents
from stablematerials.io import AtomicFolder
from stablematerials.pipeline import StableMaterialsPipeline

from .config import LCMConfig, LoRAConfig, parse_config
from .data import batch_attributes, batch_latents, default_sample_prompts, training_set
from .loop import Bookkeeping, optimizer_step
from .losses import (
    color_channel_weights,
    consistency_loss,
    consistency_scalings,
    ddim_step,
    predicted_noise,
    predicted_x0,
)
from .models import (
    add_attribute_embedding,
    add_lora,
    build_student,
    frozen_copy,
    load_teacher_pipeline,
    save_lora_student,
    vae_scale_factor,
)  # fmt: skip
from .runtime import (
    embed_captions,
    end_process_group,
    lookup,
    make_lr_scheduler,
    make_optimizer,
    sample_materials,
    start_run,
)  # fmt: skip

logger = logging.getLogger("training.distill_lcm")


def main(argv: list[str] | None = None) -> int:
    distill(parse_config(LCMConfig, sys.argv[1:] if argv is None else argv))
    end_process_group()
    return 0


def load_student(folder: str | Path, teacher: UNet2DConditionModel, time_cond_proj_dim: int) -> UNet2DConditionModel:
    """The student UNet of a pipeline folder (`unet_lcm/`), checked to match the teacher's architecture."""
    path = Path(folder) / "unet_lcm"
    if not (path / "config.json").is_file():
        raise ValueError(f"init_student: {str(folder)!r} has no unet_lcm/ folder")
    student = UNet2DConditionModel.from_pretrained(path, torch_dtype=torch.float32)
    width = attribute_input_width(teacher)
    if width is not None and attribute_input_width(student) is None:  # a teacher given attributes after its student
        student = add_attribute_embedding(student, width)
        student.class_embedding.load_state_dict(teacher.class_embedding.state_dict())  # as the teacher uses them
    if student.config.time_cond_proj_dim != time_cond_proj_dim:
        raise ValueError(
            f"init_student: {path} embeds the guidance in {student.config.time_cond_proj_dim} dims, "
            f"lcm.time_cond_proj_dim is {time_cond_proj_dim}"
        )
    # The student is the teacher's architecture plus the guidance projection (see build_student).
    expected, got = teacher.state_dict(), student.state_dict()
    extra = [k for k in set(got) - set(expected) if not k.startswith("time_embedding.cond_proj")]
    if extra or any(k not in got or got[k].shape != v.shape for k, v in expected.items()):
        raise ValueError(f"init_student: {path} does not have the teacher's architecture")
    return student


def distill(cfg: LCMConfig) -> Path:
    """Run (or resume) the distillation `cfg` describes; returns OUTPUT/model (written at the end)."""
    accelerator, out = start_run(cfg, "distill_lcm")
    run = set_up(cfg, accelerator, out)

    # 4. Resume.
    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed, script="distill_lcm")
    step = book.start
    if step:
        run.target.to(accelerator.device)
    batches = book.batches(run.dataset, cfg.seed, cfg.data.num_workers)
    # the weights the target follows: the trained ones (a low-rank student's frozen teacher weights stay equal)
    followed = [(p_t, p_s) for p_t, p_s in zip(run.target.parameters(), accelerator.unwrap_model(run.student).parameters())
                if p_s.requires_grad]  # fmt: skip

    # 5. Distil.
    while book.running(step):
        totals = book.micro_batch_means(lambda _: {"loss": distill_micro_step(run, book.next_batch(batches, step))})
        with torch.no_grad():  # the target follows the student slowly (EMA), LCM's "target network"
            for p_t, p_s in followed:
                p_t.mul_(cfg.lcm.ema_decay).add_(p_s.detach(), alpha=1 - cfg.lcm.ema_decay)
        step += 1
        book.end_step(step, totals, sample=lambda at: write_samples(run, at))

    # 6. Final: the teacher pipeline with the student beside it, and student samples at fixed seeds.
    book.end(step, save=lambda: save_model(run, step))
    return out / "model"


@dataclasses.dataclass
class LCMRun:
    """What one distillation run works with (built by `set_up`)."""

    cfg: LCMConfig
    accelerator: Accelerator
    out: Path
    teacher_pipe: StableMaterialsPipeline  # its VAE, text encoder and schedule are used as they are
    vae: torch.nn.Module  # frozen, on the device
    teacher: UNet2DConditionModel  # frozen copy, on the device
    noise_scheduler: DDPMScheduler
    solver_timesteps: torch.Tensor  # (num_ddim_timesteps,): t_{n+k} of the skipping-step solver
    dataset: object
    prompts: list[str]
    embeds: dict[str, torch.Tensor]  # every caption's embedding, computed once
    student: torch.nn.Module  # prepared
    target: UNet2DConditionModel  # the EMA of the student (LCM's target network)
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    channel_weight: torch.Tensor | None = None  # (C,) consistency-loss weights (lcm.color_weight); None: plain mean

    @property
    def attribute_families(self) -> list[str] | None:
        """The families of the teacher's attributes (`stablematerials.attributes`), or None if it takes none."""
        return self.teacher_pipe.config.get("attribute_families")


def set_up(cfg: LCMConfig, accelerator: Accelerator, out: Path) -> LCMRun:
    """Teacher, data and student, prepared for training."""
    device = accelerator.device

    # 1. The teacher pipeline: frozen VAE, UNet and text encoder.
    teacher_pipe = load_teacher_pipeline(cfg.teacher)
    if cfg.lcm.color_guidance_max is not None:  # sampled as distilled: saved with the teacher in model_index.json
        check_color_guidance(cfg.lcm.color_guidance_max, teacher_pipe.config.color_latents)
        teacher_pipe.register_to_config(color_guidance_max=cfg.lcm.color_guidance_max)
    vae = teacher_pipe.vae.to(device).eval().requires_grad_(False)
    teacher = frozen_copy(teacher_pipe.unet).to(device)
    channel_weight = None
    if cfg.lcm.color_weight != 1.0:
        if not teacher_pipe.config.color_latents:
            raise ValueError(f"lcm.color_weight is {cfg.lcm.color_weight}, but the teacher {cfg.teacher} has no colour latents")
        channel_weight = color_channel_weights(teacher.config.in_channels, cfg.lcm.color_weight).to(device)
    factor = vae_scale_factor(vae)
    if cfg.data.crop_size % factor:
        raise ValueError(f"data.crop_size {cfg.data.crop_size} is not a multiple of the VAE's factor {factor}")
    noise_scheduler = DDPMScheduler.from_config(teacher_pipe.scheduler.config)
    step_ratio = noise_scheduler.config.num_train_timesteps // cfg.lcm.num_ddim_timesteps
    solver_timesteps = torch.from_numpy(np.arange(1, cfg.lcm.num_ddim_timesteps + 1) * step_ratio - 1).to(device)

    # 2. Data and caption embeddings (computed once).
    dataset, material_captions, source = training_set(cfg.data, factor, cfg.teacher)
    prompts = cfg.sample.prompts or default_sample_prompts(cfg.data, dataset, cfg.sample.count)
    embeds = embed_captions(
        teacher_pipe.text_encoder, teacher_pipe.tokenizer, material_captions + list(prompts), device,
        teacher_pipe.config.embedding_scale,
    )  # fmt: skip
    logger.info("%d materials from %s, %d processes", len(dataset), source, accelerator.num_processes)

    # 3. Student (teacher + zero guidance projection, or a given student; with low-rank adapters only those and the
    # projection train) and its EMA target.
    if cfg.init_student and cfg.lcm.lora_rank:
        raise ValueError("init_student continues a whole student; a low-rank one (lcm.lora_rank) starts from the teacher")
    if cfg.init_student:
        student = load_student(cfg.init_student, teacher, cfg.lcm.time_cond_proj_dim).to(device)
    else:
        student = build_student(teacher, cfg.lcm.time_cond_proj_dim)
    student = student.train().requires_grad_(True)
    if cfg.lcm.lora_rank:
        add_lora(student, LoRAConfig(rank=cfg.lcm.lora_rank))  # freezes the rest
        student.time_embedding.cond_proj.requires_grad_(True)
    target = frozen_copy(student).to(device)
    optimizer = make_optimizer([p for p in student.parameters() if p.requires_grad], cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    student, optimizer, lr_scheduler = accelerator.prepare(student, optimizer, lr_scheduler)
    accelerator.register_for_checkpointing(target)
    return LCMRun(cfg, accelerator, out, teacher_pipe, vae, teacher, noise_scheduler, solver_timesteps, dataset,
                  list(prompts), embeds, student, target, optimizer, lr_scheduler, channel_weight)  # fmt: skip


def distill_micro_step(run: LCMRun, batch: dict) -> torch.Tensor:
    """One micro-batch of latent consistency distillation (Luo et al. 2023, Alg. 1); returns its loss."""
    cfg, accelerator, device = run.cfg, run.accelerator, run.accelerator.device
    sched, ptype = run.noise_scheduler, run.noise_scheduler.config.prediction_type
    latents = batch_latents(run.vae, batch, device, run.teacher_pipe.config.color_latents)
    b = latents.shape[0]
    noise = torch.randn_like(latents)
    index = torch.randint(0, cfg.lcm.num_ddim_timesteps, (b,), device=device)
    t_start = run.solver_timesteps[index]  # t_{n+k}
    t_end = (t_start - sched.config.num_train_timesteps // cfg.lcm.num_ddim_timesteps).clamp(min=0)  # t_n
    noisy = sched.add_noise(latents, noise, t_start)
    w = cfg.lcm.w_min + (cfg.lcm.w_max - cfg.lcm.w_min) * torch.rand(b, device=device)
    w_emb = guidance_scale_embedding(w, cfg.lcm.time_cond_proj_dim).to(latents.dtype)
    cond = lookup(run.embeds, batch["caption"]).to(device)
    attributes = None
    if run.attribute_families is not None:
        drop = torch.rand(b, device=device) < cfg.lcm.attribute_dropout
        attributes = drop_attributes(batch_attributes(batch, run.attribute_families, device), drop).to(latents.dtype)
    target_value = consistency_target(run, noisy, t_start, t_end, w, w_emb, cond, attributes)

    with accelerator.accumulate(run.student):
        pred = run.student(noisy, t_start, timestep_cond=w_emb, encoder_hidden_states=cond,
                           class_labels=attributes).sample.float()  # fmt: skip
        skip_start, out_start = (s.view(-1, 1, 1, 1) for s in consistency_scalings(t_start, cfg.lcm.timestep_scaling))
        model_value = skip_start * noisy + out_start * predicted_x0(sched, pred, noisy, t_start, ptype)
        loss = consistency_loss(model_value, target_value, cfg.lcm.loss_type, cfg.lcm.huber_c, run.channel_weight)
        optimizer_step(accelerator, loss, run.student.parameters(), run.optimizer, run.lr_scheduler, cfg.train.max_grad_norm)
    return loss


@torch.no_grad()
def consistency_target(
    run: LCMRun, noisy: torch.Tensor, t_start: torch.Tensor, t_end: torch.Tensor, w: torch.Tensor, w_emb: torch.Tensor,
    cond: torch.Tensor, attributes: torch.Tensor | None = None,
) -> torch.Tensor:
    """One guided DDIM step of the teacher from t_{n+k} to t_n, then the target network's consistency function at t_n.
    With `attributes` (B, A), the teacher's conditional branch has them and its unconditional one none (zeros)."""
    sched, ptype = run.noise_scheduler, run.noise_scheduler.config.prediction_type
    empty = run.embeds[""].to(noisy.device)
    both_attributes = None if attributes is None else torch.cat([attributes, torch.zeros_like(attributes)])
    both = run.teacher(
        torch.cat([noisy, noisy]), torch.cat([t_start, t_start]),
        encoder_hidden_states=torch.cat([cond, empty.view(1, 1, -1).expand_as(cond)]), class_labels=both_attributes,
    ).sample.float()  # fmt: skip
    x0_c, x0_u = predicted_x0(sched, both, torch.cat([noisy, noisy]), torch.cat([t_start, t_start]), ptype).chunk(2)
    eps_c, eps_u = predicted_noise(sched, both, torch.cat([noisy, noisy]), torch.cat([t_start, t_start]), ptype).chunk(2)
    scale = w.view(-1, 1, 1, 1) + 1.0  # the LCM weight w is the usual guidance scale minus 1
    cap = run.teacher_pipe.config.color_guidance_max
    x0_guided, eps_guided = guide_latents(x0_c, x0_u, scale, cap), guide_latents(eps_c, eps_u, scale, cap)
    x_prev = ddim_step(sched, x0_guided, eps_guided, t_end)
    tgt = run.target(x_prev, t_end, timestep_cond=w_emb, encoder_hidden_states=cond, class_labels=attributes).sample.float()
    skip_end, out_end = (s.view(-1, 1, 1, 1) for s in consistency_scalings(t_end, run.cfg.lcm.timestep_scaling))
    return skip_end * x_prev + out_end * predicted_x0(sched, tgt, x_prev, t_end, ptype)


def student_pipeline(run: LCMRun) -> StableMaterialsPipeline:
    """A sampling pipeline around a copy of the target (EMA) student."""
    teacher_pipe = run.teacher_pipe
    return StableMaterialsPipeline(
        vae=copy.deepcopy(run.vae), unet=copy.deepcopy(run.target).eval(),
        scheduler=LCMScheduler.from_config(teacher_pipe.scheduler.config),
        text_encoder=teacher_pipe.text_encoder, tokenizer=teacher_pipe.tokenizer,
        embedding_scale=teacher_pipe.config.embedding_scale, color_latents=teacher_pipe.config.color_latents,
        attribute_families=run.attribute_families,
    )  # fmt: skip


def write_samples(run: LCMRun, step: int) -> None:
    sample_materials(student_pipeline(run), run.cfg.sample, run.prompts, run.cfg.data.crop_size, run.out, step)


def save_model(run: LCMRun, step: int) -> None:
    """OUTPUT/model: the teacher pipeline with the student beside it (unet_lcm/); student samples at fixed seeds."""
    with AtomicFolder(run.out / "model", overwrite=True) as tmp:
        run.teacher_pipe.save_pretrained(tmp)
        if run.cfg.lcm.lora_rank:
            save_lora_student(run.target, tmp / "unet_lcm")
        else:
            run.target.save_pretrained(tmp / "unet_lcm")
    logger.info("saved %s (student in unet_lcm/)", run.out / "model")
    write_samples(run, step)


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.distill_lcm"))
