"""The parts of a training loop that every training script shares: one optimiser step, the per-step loss means,
the adversarial pair of steps, and the bookkeeping after each step (`Bookkeeping`: when to stop, loss records and
progress lines, checkpoints, samples, and the end of the run).

A script's loop then reads top to bottom:

    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed, script="train_vae")
    step, batches = book.start, book.batches(dataset, cfg.seed, cfg.data.num_workers)
    while book.running(step):
        totals = book.micro_batch_means(lambda _: micro_step(book.next_batch(batches, step)))
        step += 1
        book.end_step(step, totals, sample=write_samples)
    book.end(step, save=save_model)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from accelerate import Accelerator

from .checkpoint import resume_or_seed, save_checkpoint
from .config import TrainConfig
from .data import ShardedBatchSampler, batch_stream
from .losses import hinge_d_loss, hinge_g_loss
from .runtime import JsonlLog, Progress, end_trackers, ensure_finite, log_sample_names


def sharded_batches(
    accelerator: Accelerator, dataset, batch_size: int, seed: int, first_batch: int, num_workers: int
) -> Iterator[dict]:
    """This process's share of an endless batch stream, from batch number `first_batch` on (a resumed run's place:
    the data order is a function of the step)."""
    rank, world = accelerator.process_index, accelerator.num_processes
    return batch_stream(dataset, ShardedBatchSampler(len(dataset), batch_size, seed, rank, world, first_batch), num_workers)


def optimizer_step(
    accelerator: Accelerator, loss: torch.Tensor, params: Iterable[torch.nn.Parameter], optimizer, lr_scheduler,
    max_grad_norm: float,
) -> None:
    """Backward, clip the gradients when they are synchronised (the last micro-batch), step and clear."""
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def generator_loss(accelerator: Accelerator, disc: torch.nn.Module, fake: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
    """The hinge generator loss of `fake`; the discriminator's weights get no gradient from it."""
    inner = accelerator.unwrap_model(disc)
    inner.requires_grad_(False)
    loss = hinge_g_loss(inner(fake, *cond))
    inner.requires_grad_(True)
    return loss


def discriminator_step(
    accelerator: Accelerator, disc: torch.nn.Module, optimizer, real: torch.Tensor, fake: torch.Tensor, *cond: torch.Tensor
) -> torch.Tensor:
    """One hinge-loss step of the discriminator on real against (detached) fake samples; returns its loss."""
    logits = disc(torch.cat([real, fake.detach()]), *(torch.cat([c, c]) for c in cond))
    loss = hinge_d_loss(*logits.chunk(2))
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


class Bookkeeping:
    """Everything a training loop does around its steps, the same in every script.

    - at the start: the resumed checkpoint (`start`: its step), losses.jsonl cut back to it;
    - `running(step)`: until `train.max_steps`, or `train.stop_at` (a run split into sessions);
    - `end_step(step, totals, sample)`: a non-finite loss stops the run; the totals go to OUTPUT/losses.jsonl, a
      progress line every `train.log_every` steps (and after the first), a checkpoint every `train.checkpoint_every`
      steps (OUTPUT/checkpoints/checkpoint-NNNNNNNN, trainer state {"script": script, "step": N}), samples every
      `train.sample_every` steps (on the main process);
    - `end(step, save)` after the loop: the result written on the main process, or how to resume.
    """

    def __init__(
        self, accelerator: Accelerator, train: TrainConfig, out: Path, logger: logging.Logger, resume: str | None,
        seed: int, script: str | None = None,
    ) -> None:  # fmt: skip
        """Restore the checkpoint `resume` names ("latest", a folder; None: start afresh) into everything prepared
        or registered with the accelerator; `self.start` is its step (0 when starting afresh)."""
        self.accelerator, self.train, self.out, self.logger = accelerator, train, out, logger
        self.state = {"script": script} if script else {}  # what a checkpoint's trainer_state.json adds to the step
        self.start = resume_or_seed(accelerator, out / "checkpoints", resume, seed)
        self.progress = Progress(accelerator, train.max_steps, self.start)
        self.losses = JsonlLog(accelerator, out / "losses.jsonl", self.start)

    def batches(self, dataset, seed: int, num_workers: int) -> Iterator[dict]:
        """This process's batches (train.batch_size) from the resumed step on."""
        first = self.start * self.train.gradient_accumulation_steps
        return sharded_batches(self.accelerator, dataset, self.train.batch_size, seed, first, num_workers)

    def micro_batch_means(self, micro_step: Callable[[int], dict[str, torch.Tensor]]) -> dict[str, float]:
        """Run the train.gradient_accumulation_steps micro-batches (0, 1, ...) of one optimiser step; their loss
        terms, averaged over the micro-batches and the processes."""
        accum = self.train.gradient_accumulation_steps
        totals: dict[str, float] = {}
        for micro in range(accum):
            for k, v in micro_step(micro).items():
                totals[k] = totals.get(k, 0.0) + float(self.accelerator.reduce(v.detach().float(), "mean")) / accum
        return totals

    def running(self, step: int) -> bool:
        stop_at = self.train.stop_at
        return step < self.train.max_steps and not (stop_at and step >= stop_at)

    def next_batch(self, batches: Iterator[dict], step: int) -> dict:
        """The next batch of the stream; with train.debug_log_samples its names go to OUTPUT/debug/rank<r>.txt."""
        batch = next(batches)
        if self.train.debug_log_samples:
            log_sample_names(self.accelerator, self.out, step + 1, batch["name"])
        return batch

    def checkpoint(self, step: int) -> None:
        save_checkpoint(self.accelerator, self.out / "checkpoints", step, self.state, self.train.keep_checkpoints)

    def sample_due(self, step: int) -> bool:
        return bool(self.train.sample_every) and step % self.train.sample_every == 0

    def end_step(self, step: int, totals: dict[str, float], sample: Callable[[int], None] | None = None) -> None:
        """The bookkeeping after optimiser step `step` (counted from 1) with its loss means `totals`."""
        ensure_finite(step, totals)
        self.losses.write(step, totals)
        if step % self.train.log_every == 0 or step == 1:
            self.progress.log(step, totals)
        if step % self.train.checkpoint_every == 0:
            self.checkpoint(step)
        if sample is not None and self.sample_due(step) and self.accelerator.is_main_process:
            sample(step)

    def end(self, step: int, save: Callable[[], None]) -> bool:
        """After the loop: a finished run calls `save` (the result and its samples) on the main process; a run that
        train.stop_at ended early says how to continue. Closes the trackers; returns whether the run finished."""
        if step < self.train.max_steps:
            self.logger.info("stopped at step %d (train.stop_at); resume with --resume latest", step)
            end_trackers(self.accelerator)
            return False
        self.finish(save)
        return True

    def finish(self, save: Callable[[], None]) -> None:
        """`save` on the main process while the others wait, then close the trackers."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            save()
        self.accelerator.wait_for_everyone()
        end_trackers(self.accelerator)
