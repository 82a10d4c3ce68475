"""Atomic, resumable checkpoints on top of `Accelerator.save_state`.

A checkpoint is written into `CKPT/.checkpoint-<step>.partial`, completed by a `trainer_state.json` written last,
then renamed to `CKPT/checkpoint-<step>`. A run killed mid-write leaves a `.partial` folder that is ignored (and
cleaned up by the next save), so the previous checkpoint stays usable. `Accelerator.save_state` stores the
prepared models, optimisers, LR schedulers, objects registered with `register_for_checkpointing` (EMA) and the RNG
states of Python, NumPy and torch of every process; `trainer_state.json` stores the step and anything else the
script needs to continue (the data order is a function of the step, see data.ShardedBatchSampler).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from stablematerials.io import atomic_write_text

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}"


def is_complete(folder: Path) -> bool:
    """A checkpoint folder whose trainer state (written last) exists and parses."""
    try:
        json.loads((folder / STATE_FILE).read_text())
        return True
    except (OSError, json.JSONDecodeError):
        return False


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first (incomplete ones are skipped with a warning)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if not (m and p.is_dir()):
            continue
        if is_complete(p):
            found.append((int(m.group(1)), p))
        else:
            logger.warning("ignoring incomplete checkpoint %s", p)
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None."""
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def resolve_resume(root: str | Path, resume: str | None) -> Path | None:
    """What `--resume` points at: None (start fresh), "latest" (None when there is none yet) or a folder."""
    if resume is None or resume == "":
        return None
    if resume == "latest":
        found = latest_checkpoint(root)
        if found is None:
            logger.warning("--resume latest: no complete checkpoint in %s, starting from scratch", root)
        return found
    path = Path(resume)
    if not path.is_dir():
        raise ValueError(f"--resume {resume!r}: no such checkpoint folder")
    if not is_complete(path):
        raise ValueError(f"--resume {resume!r}: the checkpoint is incomplete (no valid {STATE_FILE})")
    return path


def save_checkpoint(accelerator, root: str | Path, step: int, state: dict, keep: int) -> Path:
    """Save everything needed to resume at `step` atomically; keep the newest `keep` checkpoints. All processes call it."""
    root = Path(root)
    final = root / checkpoint_name(step)
    tmp = root / f".{checkpoint_name(step)}.partial"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".checkpoint-*.partial"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_text(tmp / STATE_FILE, json.dumps(dict(state, step=step), indent=2))
        if final.exists():  # the same step saved again (a resumed run): replace it
            shutil.rmtree(final)
        tmp.rename(final)
        for _, old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        logger.info("saved %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, folder: str | Path) -> dict:
    """Restore what `save_checkpoint` saved (models, optimisers, schedulers, EMA, RNG) and return the trainer state."""
    folder = Path(folder)
    accelerator.load_state(str(folder))
    return json.loads((folder / STATE_FILE).read_text())


def resume_or_seed(accelerator, checkpoints: Path, resume: str | None, seed: int) -> int:
    """Restore the checkpoint `resume` names (e.g. "latest") and return its step (> 0); with none, give every
    process its own random streams from `seed` and return 0."""
    from .runtime import reseed_per_process

    checkpoint = resolve_resume(checkpoints, resume)
    if checkpoint is None:
        reseed_per_process(accelerator, seed)
        return 0
    step = load_checkpoint(accelerator, checkpoint)["step"]
    logger.info("resumed from %s at step %d", checkpoint, step)
    return step
