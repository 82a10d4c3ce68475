"""Train the image-prompt encoder: pictures of materials -> the sentence embedding of their caption.

    python -m training.train_image_encoder --output_dir runs/image_encoder --data.textures TEXTURES_ROOT
    python -m training.train_image_encoder --config my.yaml --train.max_steps 200 --resume latest

The encoder (`stablematerials.image_encoder`, a ResNet of 1.62 M parameters with a projection head) learns to put a picture where the
frozen MiniLM text encoder puts the caption of what it shows, so the diffusion UNet, trained on caption embeddings
only, takes it as a prompt. Data (`training/image_encoder_data.py`): procedural materials of train seeds under
random views, lights and camera faults, and real texture images captioned from their file names; rendered once
into `data.cache`. Two losses on unit vectors (see `encoder_losses`):

* cosine: 1 - cos(image, target), pulling each picture onto its caption embedding, which is what the UNet needs
  (a contrastive loss alone only orders the candidates; the picture could sit far from every caption);
* contrastive: softmax over all training targets at temperature `loss.temperature` (CLIP's InfoNCE, Radford et al.
  2021, with the frozen text side as a fixed bank: every step sees every caption as a negative), with every
  target within `loss.positive_cosine` of the own one counted as a positive (identical captions of different
  materials are not negatives). Caption embeddings of one family sit close together (cosine 0.6-0.9), so the
  cosine term alone leaves nearby captions in the wrong order; this term separates them.

Every `eval_every` steps the held-out pictures (test seeds, training-like and unlike views; held-out textures) are
embedded and the family of the nearest family prototype is scored. Outputs in OUTPUT/: `encoder/` (vision_encoder/
and processor/ folders for `python -m training.add_image_encoder`), `checkpoints/`, `losses.jsonl`, `config.json`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator

from stablematerials.image_encoder import IMAGE_MEAN, IMAGE_STD, build_image_encoder
from stablematerials.io import AtomicFolder
from stablematerials.procedural import FAMILIES

from .config import TrainConfig, parse_config, require_positive
from .image_encoder_data import METAL_FAMILIES, CacheSpec, PictureSet, build_cache
from .loop import Bookkeeping, optimizer_step
from .runtime import end_process_group, ensure_finite, make_lr_scheduler, make_optimizer, start_run

logger = logging.getLogger("training.train_image_encoder")


@dataclasses.dataclass
class EncoderDataConfig:
    """The picture set (rendered once into `cache`, reused while the spec is unchanged)."""

    cache: str = "runs/image_encoder_data"  # outside the repo: about 1 GB of pictures
    textures: str = ""  # root of unpacked Debian texture packages (<root>/<package>/usr/...); empty: none
    per_family: int = 200  # training materials per family (3,800): variety of parameters matters most
    views: int = 6  # photographs per training material: lights and views vary per picture
    texture_crops: int = 4  # crops per training texture image (about 1,200 images)
    eval_per_family: int = 30  # held-out test-seed materials per family, one like and one unlike view each
    material_size: int = 256  # maps are rendered at this size; views zoom into them up to 3x
    image_size: int = 128  # encoder input: the family and colour of a texture read well at 128 px
    workers: int = 2  # processes rendering the cache (the machine's cores)

    def check(self) -> None:
        require_positive("data", per_family=self.per_family, views=self.views, image_size=self.image_size,
                         eval_per_family=self.eval_per_family, material_size=self.material_size, workers=self.workers)  # fmt: skip


@dataclasses.dataclass
class EncoderModelConfig:
    """The ResNet (basic blocks; its projection head is as wide as the text embedding, 384 for MiniLM)."""

    hidden_sizes: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128, 256])  # 1/4 ... 1/32 scale
    depths: list[int] = dataclasses.field(default_factory=lambda: [1, 1, 2, 1])  # 1.62 M parameters in all

    def check(self) -> None:
        if len(self.depths) != len(self.hidden_sizes):
            raise ValueError(f"model.depths needs one entry per stage ({len(self.hidden_sizes)}), got {self.depths}")


@dataclasses.dataclass
class EncoderLossConfig:
    """Weights of the two losses (see the module docstring)."""

    cosine: float = 1.0
    contrastive: float = 0.2  # at 0.2 its gradient is about the cosine term's size at the start
    family: float = 0.0  # cross-entropy over the 19 family prototypes (pictures whose family is known)
    temperature: float = 0.05  # caption embeddings differ by cosines of 0.05-0.3; a smaller scale cannot rank them
    positive_cosine: float = 0.97  # targets at least this close to the own one are positives

    def check(self) -> None:
        require_positive("loss", temperature=self.temperature)
        if min(self.cosine, self.contrastive, self.family) < 0 or self.cosine + self.contrastive + self.family == 0:
            raise ValueError("loss.cosine, loss.contrastive and loss.family must be >= 0, not all 0")


@dataclasses.dataclass
class ImageEncoderConfig:
    output_dir: str = "runs/image_encoder"
    text_encoder: str = ""  # folder of the sentence encoder whose space to learn; empty: MiniLM from its package
    seed: int = 0
    eval_every: int = 1000  # steps between held-out checks (about 10 s each)
    resume: str | None = None  # "latest" or a checkpoint folder
    data: EncoderDataConfig = dataclasses.field(default_factory=EncoderDataConfig)
    model: EncoderModelConfig = dataclasses.field(default_factory=EncoderModelConfig)
    loss: EncoderLossConfig = dataclasses.field(default_factory=EncoderLossConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            max_steps=5000,  # about 11 passes over the pictures; about 30 minutes on 2 CPU cores at batch 64
            batch_size=64,
            lr=2e-3,  # AdamW for a small BatchNorm CNN from scratch
            weight_decay=0.05,  # mild: 2,470 materials, about 8 passes
            lr_schedule="cosine",
            warmup_steps=100,
            checkpoint_every=500,
            log_every=20,
        )
    )  # fmt: skip


def load_text_encoder(folder: str):
    """The frozen sentence encoder (MiniLM from its package by default) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    from stablematerials.tiny import minilm_dir

    path = Path(folder) if folder else minilm_dir()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def ensure_cache(cfg: ImageEncoderConfig) -> PictureSet:
    """The picture set of `cfg.data`, rendered first if the cache is missing or was made with another spec."""
    import json

    d = cfg.data
    spec = CacheSpec(d.per_family, d.views, d.eval_per_family, d.texture_crops, d.material_size, d.image_size,
                     str(Path(d.textures).resolve()) if d.textures else "", cfg.seed)  # fmt: skip
    folder = Path(d.cache)
    manifest = folder / "manifest.json"
    if not (manifest.is_file() and json.loads(manifest.read_text())["spec"] == dataclasses.asdict(spec)):
        text_encoder, tokenizer = load_text_encoder(cfg.text_encoder)
        build_cache(folder, spec, text_encoder, tokenizer, d.workers, log=logger.info)
    return PictureSet.load(folder)


def to_pixels(pictures: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) normalised as the encoder's CLIPImageProcessor does."""
    x = torch.from_numpy(np.ascontiguousarray(pictures)).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Quarter turns, mirrors and a random crop of 75-100 % resized back (per picture, cheap, label-preserving)."""
    out = []
    size = x.shape[-1]
    for img in x:
        img = torch.rot90(img, int(rng.integers(4)), dims=(1, 2))
        img = img.flip(-1) if rng.random() < 0.5 else img
        side = int(size * rng.uniform(0.75, 1.0))
        if side < size:
            top, left = rng.integers(0, size - side + 1, 2)
            img = F.interpolate(img[None, :, top : top + side, left : left + side], size=(size, size),
                                mode="bilinear", align_corners=False)[0]  # fmt: skip
        out.append(img)
    return torch.stack(out)


def embed(model, pixels: torch.Tensor) -> torch.Tensor:
    """Unit image embeddings (B, D), as `stablematerials.conditioning.encode_images` gives them."""
    return F.normalize(model(pixel_values=pixels).logits.float(), dim=-1)


def encoder_losses(
    e: torch.Tensor, target: torch.Tensor, bank: torch.Tensor, prototypes: torch.Tensor, family: torch.Tensor, loss
) -> dict[str, torch.Tensor]:
    """Cosine loss to the own target, multi-positive InfoNCE over the target bank, and cross-entropy over the family
    prototypes: e, target (B, D), bank (N, D), prototypes (F, D), family (B,) indices (-1: unknown)."""
    cosine = 1.0 - (e * target).sum(-1).mean()
    logits = e @ bank.T / loss.temperature  # (B, N)
    positive = (target @ bank.T) >= loss.positive_cosine
    contrastive = (torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~positive, -1e9), -1)).mean()
    known = family >= 0
    fam = F.cross_entropy(e[known] @ prototypes.T / loss.temperature, family[known]) if known.any() else e.sum() * 0
    total = loss.cosine * cosine + loss.contrastive * contrastive + loss.family * fam
    return {"loss": total, "cosine": cosine, "contrastive": contrastive, "family": fam}


@torch.no_grad()
def evaluate(model, data: PictureSet, batch: int = 128) -> dict[str, float]:
    """Family top-1 among the 19 prototypes for held-out pictures; mean cosine to their own target."""
    model.eval()
    out = {}
    names = list(FAMILIES)
    for split in ("eval_like", "eval_unlike", "texture_heldout"):
        idx = data.where(split)
        if split == "texture_heldout":  # only textures whose name says their family
            idx = np.array([i for i in idx if data.items[data.picture_item[i]]["family"]], dtype=int)
        if len(idx) == 0:
            continue
        e = torch.cat([embed(model, to_pixels(data.pictures[idx[k : k + batch]])) for k in range(0, len(idx), batch)])
        guess = (e @ data.prototypes.T).argmax(-1).tolist()
        truth = [data.items[data.picture_item[i]]["family"] for i in idx]
        hits = [names[g] == t or (t == "metal" and names[g] in METAL_FAMILIES) for g, t in zip(guess, truth)]
        out[f"{split}_family_top1"] = float(np.mean(hits))
        out[f"{split}_cosine"] = float((e * data.targets[data.picture_item[idx]]).sum(-1).mean())
    model.train()
    return out


def export(model, processor, folder: Path) -> None:
    """Write `folder/vision_encoder` and `folder/processor` (atomically) for training.add_image_encoder."""
    with AtomicFolder(folder, overwrite=True) as tmp:
        model.save_pretrained(tmp / "vision_encoder")
        processor.save_pretrained(tmp / "processor")


def main(argv: list[str] | None = None) -> int:
    train(parse_config(ImageEncoderConfig, sys.argv[1:] if argv is None else argv))
    end_process_group()
    return 0


def train(cfg: ImageEncoderConfig) -> Path:
    """Run (or resume) the training `cfg` describes; returns OUTPUT/encoder (written at the end, not with
    train.stop_at). Unlike the diffusion scripts, losses.jsonl gets a record (with the LR) every train.log_every
    steps, held-out scores every eval_every steps, and the last step is always evaluated and checkpointed."""
    accelerator, out = start_run(cfg, "image_encoder")
    run = set_up(cfg, accelerator)
    book = Bookkeeping(accelerator, cfg.train, out, logger, cfg.resume, cfg.seed)
    step = book.start

    while step < cfg.train.max_steps:
        values = train_step(run, step)
        step += 1
        ensure_finite(step, values)
        last = step == cfg.train.max_steps
        if step % cfg.train.log_every == 0:
            book.progress.log(step, values)
            book.losses.write(step, values | {"lr": run.lr_scheduler.get_last_lr()[0]})
        if step % cfg.eval_every == 0 or last:
            scores = evaluate(accelerator.unwrap_model(run.model), run.data)
            logger.info("step %d held-out: %s", step, ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
            book.losses.write(step, scores)
        if step % cfg.train.checkpoint_every == 0 or last:
            book.checkpoint(step)
        if cfg.train.stop_at and step >= cfg.train.stop_at and not last:
            logger.info("stopping at step %d as asked (train.stop_at); resume with --resume latest", step)
            return out / "encoder"

    book.finish(lambda: export(accelerator.unwrap_model(run.model).eval(), run.processor, out / "encoder"))
    logger.info("wrote %s", out / "encoder")
    return out / "encoder"


@dataclasses.dataclass
class EncoderRun:
    """What one run of train_image_encoder works with (built by `set_up`)."""

    cfg: ImageEncoderConfig
    accelerator: Accelerator
    data: PictureSet
    train_idx: np.ndarray  # the training pictures
    bank: torch.Tensor  # (N, D): every training caption target
    item_family: torch.Tensor  # (items,): family index of each item, -1 where unknown
    model: torch.nn.Module  # prepared
    processor: object
    optimizer: torch.optim.Optimizer
    lr_scheduler: object


def set_up(cfg: ImageEncoderConfig, accelerator: Accelerator) -> EncoderRun:
    """The picture set (rendered first if needed), the target bank, the encoder and its optimiser, prepared."""
    data = ensure_cache(cfg)
    train_idx = data.where("train")
    bank_items = np.unique(data.picture_item[train_idx])
    names = list(FAMILIES)
    item_family = torch.tensor([names.index(it["family"]) if it["family"] in names else -1 for it in data.items])
    logger.info("%d training pictures of %d items; %d held-out pictures", len(train_idx), len(bank_items),
                len(data.picture_item) - len(train_idx))  # fmt: skip

    model, processor = build_image_encoder(
        data.targets.shape[1], cfg.model.hidden_sizes, cfg.model.depths, cfg.data.image_size, seed=cfg.seed
    )
    model.train()
    optimizer = make_optimizer(model.parameters(), cfg.train)
    lr_scheduler = make_lr_scheduler(optimizer, cfg.train, accelerator.num_processes)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    bank = data.targets[bank_items]  # (N, D): every training caption target
    return EncoderRun(cfg, accelerator, data, train_idx, bank, item_family, model, processor, optimizer, lr_scheduler)


def train_step(run: EncoderRun, step: int) -> dict[str, float]:
    """One optimiser step on a batch that is a function of the seed and the step (exact resumes); its losses."""
    cfg, data = run.cfg, run.data
    rng = np.random.default_rng([cfg.seed, step])
    picks = np.sort(rng.choice(run.train_idx, cfg.train.batch_size, replace=False))
    pixels = augment(to_pixels(data.pictures[picks]), rng)
    target = data.targets[data.picture_item[picks]]
    family = run.item_family[data.picture_item[picks]]
    losses = encoder_losses(embed(run.model, pixels), target, run.bank, data.prototypes, family, cfg.loss)
    optimizer_step(run.accelerator, losses["loss"], run.model.parameters(), run.optimizer, run.lr_scheduler,
                   cfg.train.max_grad_norm)  # fmt: skip
    return {k: v.item() for k, v in losses.items()}


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.train_image_encoder"))
