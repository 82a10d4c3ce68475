"""Train the family classifier (deterministic by seed), verify it on held-out procedural materials, save and load it.

    train_classifier(TrainConfig(), work)  ->  WORK/classifier.pt, WORK/classifier_train.json
    verify_classifier(net, work)           ->  accuracy and confusion on test-split materials at 512 and 256 px
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stablematerials.filters import gaussian_blur
from stablematerials.io import atomic_write_bytes, atomic_write_text

from .classifier import FamilyNet, predict_proba, to_input
from .classifier_data import FAMILY_NAMES, augment, colour_shift, procedural_set

logger = logging.getLogger(__name__)
WEIGHTS = "classifier.pt"
CHECKPOINT = "classifier_checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Defaults sized for about 10 minutes on 2 CPU cores (measured: see the benchmark's results file)."""

    seed: int = 0
    per_family: int = 100  # train-split materials per family
    sizes: tuple[int, ...] = (512, 256)  # generated at these sizes in turn (the output sizes the verification uses)
    steps: int = 800
    batch: int = 32
    lr: float = 2e-3  # one-cycle peak (AdamW)
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    widths: tuple[int, ...] = (32, 48, 96, 160, 256)


def train_classifier(cfg: TrainConfig, work: Path, log_every: int = 50, checkpoint_every: int = 50) -> FamilyNet:
    """Train on augmented views of train-split materials; writes WORK/classifier.pt and WORK/classifier_train.json.

    Every `checkpoint_every` steps the whole state (network, optimiser, schedule, both random streams) is saved to
    WORK/classifier_checkpoint.pt; a rerun with the same config resumes there and ends with the same weights
    (tests/test_material_eval.py checks it).
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    sources, labels = procedural_set("train", cfg.per_family, cfg.sizes, work / "cache")
    t_data = time.perf_counter() - t0
    g = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = FamilyNet(len(FAMILY_NAMES), cfg.widths)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    start, trained_s = _resume(work / CHECKPOINT, cfg, net, opt, sched, g, rng)
    t_train = time.perf_counter()
    net.train()
    correct = seen = 0
    for step in range(start + 1, cfg.steps + 1):
        idx = rng.integers(0, len(sources), cfg.batch)
        x = to_input(augment(sources[idx], g))
        y = torch.from_numpy(labels[idx])
        logits = net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if step % log_every == 0 or step == cfg.steps:
            logger.info("step %d/%d loss %.3f train acc %.3f (%.0f s)", step, cfg.steps, loss.item(), correct / seen,
                        trained_s + time.perf_counter() - t_train)  # fmt: skip
            correct = seen = 0
        if step % checkpoint_every == 0 and step < cfg.steps:
            state = {"config": json.dumps(asdict(cfg)), "step": step, "seconds": trained_s + time.perf_counter() - t_train,
                     "net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "torch_rng": g.get_state(), "global_rng": torch.get_rng_state(),  # dropout draws from the global one
                     "numpy_rng": json.dumps(rng.bit_generator.state)}  # fmt: skip
            atomic_write_bytes(work / CHECKPOINT, _torch_bytes(state))
    net.eval()
    info = {"config": asdict(cfg), "families": list(FAMILY_NAMES), "data_seconds": round(t_data, 1),
            "train_seconds": round(trained_s + time.perf_counter() - t_train, 1), "resumed_at": start,
            "threads": torch.get_num_threads()}  # fmt: skip
    atomic_write_bytes(work / WEIGHTS, _torch_bytes({"state_dict": net.state_dict(), "info": info}))
    atomic_write_text(work / "classifier_train.json", json.dumps(info, indent=2))
    (work / CHECKPOINT).unlink(missing_ok=True)
    return net


def _resume(path: Path, cfg: TrainConfig, net, opt, sched, g: torch.Generator, rng: np.random.Generator) -> tuple[int, float]:
    """Load a checkpoint of the same config into the objects; returns (steps done, seconds spent), (0, 0) if none."""
    if not path.is_file():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["config"] != json.dumps(asdict(cfg)):
        logger.warning("%s is of another config; starting afresh", path)
        return 0, 0.0
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    g.set_state(state["torch_rng"])
    torch.set_rng_state(state["global_rng"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])
    logger.info("resuming the classifier at step %d", state["step"])
    return int(state["step"]), float(state["seconds"])


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load_classifier(work: Path) -> FamilyNet:
    """The classifier saved in WORK (ValueError when there is none or it was trained for other families)."""
    path = work / WEIGHTS
    if not path.is_file():
        raise ValueError(f"no classifier at {path}; train it first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    info = state["info"]
    if info["families"] != list(FAMILY_NAMES):
        raise ValueError(f"{path} was trained for families {info['families']}, not the current {list(FAMILY_NAMES)}")
    net = FamilyNet(len(FAMILY_NAMES), tuple(info["config"]["widths"]))
    net.load_state_dict(state["state_dict"])
    return net.eval()


def ensure_classifier(work: Path, cfg: TrainConfig = TrainConfig()) -> FamilyNet:
    """Load WORK's classifier, training it first when missing."""
    if not (work / WEIGHTS).is_file():
        logger.info("no classifier in %s: training one (seed %d, %d steps)", work, cfg.seed, cfg.steps)
        train_classifier(cfg, work)
    return load_classifier(work)


def perturbed(sources: np.ndarray, seed: int = 1) -> np.ndarray:
    """The sources with a fixed hard perturbation per material: hue rotated, desaturated or saturated, brightness
    changed, blurred (sigma 1 source px) and noised (std 0.03): the robustness check of the verification."""
    g = torch.Generator().manual_seed(seed)
    out = np.empty_like(sources)
    for i, s in enumerate(sources):
        x = torch.from_numpy(s).float()[None] / 255.0
        x = torch.cat([colour_shift(x[:, :3], g), x[:, 3:]], dim=1)
        x = gaussian_blur(x, 1.0, (-2, -1)) + 0.03 * torch.randn(x.shape, generator=g)
        out[i] = np.round(x[0].clamp(0, 1).numpy() * 255).astype(np.uint8)
    return out


def verify_classifier(net: FamilyNet, work: Path, per_family: int = 20) -> dict:
    """Accuracy and confusion on test-split materials generated at 512 and at 256 px (and perturbed at 512 px)."""
    results: dict = {}
    for size in (512, 256):
        sources, labels = procedural_set("test", per_family, (size,), work / "cache")
        variants = {f"{size} px": sources}
        if size == 512:
            variants["512 px perturbed"] = perturbed(sources)
        for name, src in variants.items():
            pred = predict_proba(net, src).argmax(1)
            confusion = np.zeros((len(FAMILY_NAMES),) * 2, np.int64)
            np.add.at(confusion, (labels, pred), 1)
            results[name] = {"accuracy": float((pred == labels).mean()), "n": int(len(labels)),
                             "confusion": confusion.tolist()}  # fmt: skip
    atomic_write_text(work / "classifier_verify.json", json.dumps(results, indent=2))
    return results


def confusion_lines(confusion: list[list[int]]) -> list[str]:
    """The off-diagonal entries of a confusion matrix as 'true -> predicted: n' lines (empty when none)."""
    c = np.asarray(confusion)
    return [f"{FAMILY_NAMES[i]} -> {FAMILY_NAMES[j]}: {c[i, j]}" for i, j in zip(*np.nonzero(c)) if i != j]
