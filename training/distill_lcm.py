"""Distil a trained pipeline's UNet into a latent-consistency student that samples in 2 to 8 steps.

    python -m training.distill_lcm --config training/configs/lcm_small.yaml --teacher runs/ldm/model

Latent consistency distillation (Luo et al. 2023, arXiv 2310.04378, Alg. 1): from a noisy latent at t_{n+k}, the
frozen teacher takes one guided DDIM step to t_n (guidance weight w drawn per sample); the student's consistency
function at t_{n+k} must match that of an EMA copy of itself ("target") at t_n. The student embeds w
(`time_cond_proj_dim`, as the published `unet_lcm`): the pipeline passes guidance_scale - 1 = w, and the teacher's
guided prediction is x_cond + w (x_cond - x_uncond). The new embedding projection starts at zero, so the student
starts as the teacher. Output: OUTPUT/model/ = the teacher pipeline plus `unet_lcm/` (the EMA target, the LCM
default), loadable with StableMaterialsPipeline.from_pretrained(path, student=True).
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, LCMScheduler, UNet2DConditionModel

from stablematerials.io import AtomicFolder
from stablematerials.pipeline import StableMaterialsPipeline, apply_guidance, guidance_scale_embedding

from .checkpoint import resume_or_seed, save_checkpoint
from .config import LCMConfig, parse_config
from .data import ShardedBatchSampler, batch_latents, batch_stream, default_sample_prompts, training_set
from .losses import (
    consistency_loss,
    consistency_scalings,
    ddim_step,
    predicted_noise,
    predicted_x0,
)
from .models import build_student, frozen_copy, load_teacher_pipeline, vae_scale_factor
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
    device = accelerator.device

    # 1. The teacher pipeline: frozen VAE, UNet and text encoder.
    teacher_pipe = load_teacher_pipeline(cfg.teacher)
    vae = teacher_pipe.vae.to(device).eval().requires_grad_(False)
    teacher = frozen_copy(teacher_pipe.unet).to(device)
    factor = vae_scale_factor(vae)
    if cfg.data.crop_size % factor:
        raise ValueError(f"data.crop_size {cfg.data.crop_size} is not a multiple of the VAE's factor {factor}")
    noise_scheduler = DDPMScheduler.from_config(teacher_pipe.scheduler.config)
    ptype = noise_scheduler.config.prediction_type
    num_t = noise_scheduler.config.num_train_timesteps
    step_ratio = num_t // cfg.lcm.num_ddim_timesteps
    solver_timesteps = torch.from_numpy(np.arange(1, cfg.lcm.num_ddim_timesteps + 1) * step_ratio - 1).to(device)

    # 2. Data and caption embeddings (computed once).
    dataset, material_captions, source = training_set(cfg.data, factor, cfg.teacher)
    prompts = cfg.sample.prompts or default_sample_prompts(cfg.data, dataset, cfg.sample.count)
    embeds = embed_captions(
        teacher_pipe.text_encoder, teacher_pipe.tokenizer, material_captions + list(prompts), device,
        teacher_pipe.config.embedding_scale,
    )  # fmt: skip
    logger.info("%d materials from %s, %d processes", len(dataset), source, accelerator.num_processes)

    # 3. Student (teacher + zero guidance projection, or a given student) and its EMA target.
    if cfg.init_student:
        student = load_student(cfg.init_student, teacher, cfg.lcm.time_cond_proj_dim).to(device)
    else:
        student = build_student(teacher, cfg.lcm.time_cond_proj_dim)
    student = student.train().requires_grad_(True)
    target = frozen_copy(student).to(device)
    optimizer = make_optimizer(student.parameters(), cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    student, optimizer, lr_scheduler = accelerator.prepare(student, optimizer, lr_scheduler)
    accelerator.register_for_checkpointing(target)

    # 4. Resume.
    step = resume_or_seed(accelerator, out / "checkpoints", cfg.resume, cfg.seed)
    if step:
        target.to(device)
    accum = cfg.train.gradient_accumulation_steps
    sampler = ShardedBatchSampler(
        len(dataset), cfg.train.batch_size, cfg.seed, accelerator.process_index, accelerator.num_processes, step * accum
    )
    batches = batch_stream(dataset, sampler, cfg.data.num_workers)
    progress = Progress(accelerator, cfg.train.max_steps, step)
    loss_log = JsonlLog(accelerator, out / "losses.jsonl", step)
    empty = embeds[""].to(device)
    w_dim = cfg.lcm.time_cond_proj_dim

    def student_pipeline() -> StableMaterialsPipeline:
        """A sampling pipeline around a copy of the target (EMA) student."""
        return StableMaterialsPipeline(
            vae=copy.deepcopy(vae), unet=copy.deepcopy(target).eval(),
            scheduler=LCMScheduler.from_config(teacher_pipe.scheduler.config),
            text_encoder=teacher_pipe.text_encoder, tokenizer=teacher_pipe.tokenizer,
            embedding_scale=teacher_pipe.config.embedding_scale,
        )  # fmt: skip

    def write_samples(pipe: StableMaterialsPipeline, at_step: int) -> None:
        s = cfg.sample
        materials = generate_materials(pipe, prompts, s.seed, s.steps, s.guidance_scale, s.size or cfg.data.crop_size, s.tileable)
        save_samples(materials, out / "samples" / f"step_{at_step:08d}", prompts)

    # 5. Distil.
    while step < cfg.train.max_steps and not (cfg.train.stop_at and step >= cfg.train.stop_at):
        totals: dict[str, float] = {}
        for _ in range(accum):
            batch = next(batches)
            if cfg.train.debug_log_samples:
                log_sample_names(accelerator, out, step + 1, batch["name"])
            latents = batch_latents(vae, batch, device)
            b = latents.shape[0]
            noise = torch.randn_like(latents)
            index = torch.randint(0, cfg.lcm.num_ddim_timesteps, (b,), device=device)
            t_start = solver_timesteps[index]  # t_{n+k}
            t_end = (t_start - step_ratio).clamp(min=0)  # t_n
            noisy = noise_scheduler.add_noise(latents, noise, t_start)
            w = cfg.lcm.w_min + (cfg.lcm.w_max - cfg.lcm.w_min) * torch.rand(b, device=device)
            w_emb = guidance_scale_embedding(w, w_dim).to(latents.dtype)
            cond = lookup(embeds, batch["caption"]).to(device)
            skip_start, out_start = (s.view(-1, 1, 1, 1) for s in consistency_scalings(t_start, cfg.lcm.timestep_scaling))
            skip_end, out_end = (s.view(-1, 1, 1, 1) for s in consistency_scalings(t_end, cfg.lcm.timestep_scaling))

            with torch.no_grad():
                # One guided DDIM step of the teacher from t_{n+k} to t_n.
                both = teacher(
                    torch.cat([noisy, noisy]), torch.cat([t_start, t_start]),
                    encoder_hidden_states=torch.cat([cond, empty.view(1, 1, -1).expand_as(cond)]),
                ).sample.float()  # fmt: skip
                x0_c, x0_u = predicted_x0(noise_scheduler, both, torch.cat([noisy, noisy]), torch.cat([t_start, t_start]), ptype).chunk(2)
                eps_c, eps_u = predicted_noise(noise_scheduler, both, torch.cat([noisy, noisy]), torch.cat([t_start, t_start]), ptype).chunk(2)
                scale = w.view(-1, 1, 1, 1) + 1.0  # the LCM weight w is the usual guidance scale minus 1
                x0_guided, eps_guided = apply_guidance(x0_c, x0_u, scale), apply_guidance(eps_c, eps_u, scale)
                x_prev = ddim_step(noise_scheduler, x0_guided, eps_guided, t_end)
                # The target network's consistency function at t_n.
                tgt = target(x_prev, t_end, timestep_cond=w_emb, encoder_hidden_states=cond).sample.float()
                target_value = skip_end * x_prev + out_end * predicted_x0(noise_scheduler, tgt, x_prev, t_end, ptype)

            with accelerator.accumulate(student):
                pred = student(noisy, t_start, timestep_cond=w_emb, encoder_hidden_states=cond).sample.float()
                model_value = skip_start * noisy + out_start * predicted_x0(noise_scheduler, pred, noisy, t_start, ptype)
                loss = consistency_loss(model_value, target_value, cfg.lcm.loss_type, cfg.lcm.huber_c)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(student.parameters(), cfg.train.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            totals["loss"] = totals.get("loss", 0.0) + float(accelerator.reduce(loss.detach(), "mean")) / accum
        with torch.no_grad():  # the target follows the student slowly (EMA), LCM's "target network"
            for p_t, p_s in zip(target.parameters(), accelerator.unwrap_model(student).parameters()):
                p_t.mul_(cfg.lcm.ema_decay).add_(p_s.detach(), alpha=1 - cfg.lcm.ema_decay)
        step += 1
        ensure_finite(step, totals)
        loss_log.write(step, totals)
        if step % cfg.train.log_every == 0 or step == 1:
            progress.log(step, totals)
        if step % cfg.train.checkpoint_every == 0:
            save_checkpoint(accelerator, out / "checkpoints", step, {"script": "distill_lcm"}, cfg.train.keep_checkpoints)
        if cfg.train.sample_every and step % cfg.train.sample_every == 0 and accelerator.is_main_process:
            write_samples(student_pipeline(), step)
    if step < cfg.train.max_steps:
        logger.info("stopped at step %d (train.stop_at); resume with --resume latest", step)
        end_trackers(accelerator)
        return out / "model"

    # 6. Final: the teacher pipeline with the student beside it, and student samples at fixed seeds.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with AtomicFolder(out / "model", overwrite=True) as tmp:
            teacher_pipe.save_pretrained(tmp)
            target.save_pretrained(tmp / "unet_lcm")
        logger.info("saved %s (student in unet_lcm/)", out / "model")
        write_samples(student_pipeline(), step)
    accelerator.wait_for_everyone()
    end_trackers(accelerator)
    return out / "model"


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.distill_lcm"))
