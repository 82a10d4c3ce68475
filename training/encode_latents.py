"""Encode procedural materials once with a trained VAE: the latent training set of the default model's UNet.

    python -m training.encode_latents --vae runs/v3/vae/vae --output_dir runs/v3/latents --n 6000 --size 512

Why a cache: the UNet should learn whole materials at the scale it generates (512 px), and encoding a 512 px
material costs about as much as a UNet step, so encoding on every step would halve the training speed. Materials
are generated on the fly (stablematerials.procedural, ~0.1 s each; no image files), wrapped by `wrap_margin`
pixels on each side before encoding and cropped after, so the latents tile like the materials do. Each material
keeps `captions` caption variants (the family's sentence shapes drawn with other seeds).

Output: `shard_NNNNN.safetensors` files, each with `latents` (K, C, h, w) float16 (the posterior mean, before the
latent normalisation), `color` (K, 3, h, w) float16 (the colour latents of stablematerials.color_latents) and metadata: the records (name, family, seed, captions) and the VAE's weight digest, which
train_ldm checks against its VAE. Finished shards are kept, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from stablematerials.color_latents import encode_color
from stablematerials.io import atomic_write_bytes
from stablematerials.procedural import FAMILIES, get_family
from stablematerials.procedural.dataset import dataset_material, material_name, split_of
from stablematerials.tiling import TilingState, enable_feature_rolling, tiling

from .config import LatentCacheConfig, parse_config
from .data import latent_shard_path, vae_digest
from .models import load_vae, vae_scale_factor

logger = logging.getLogger("training.encode_latents")

def training_seeds(seed_start: int, n: int) -> list[int]:
    """The first `n` seeds from `seed_start` on that fall in the training split (stablematerials.procedural.dataset)."""
    seeds, seed = [], seed_start
    while len(seeds) < n:
        if split_of(seed) == "train":
            seeds.append(seed)
        seed += 1
    return seeds


def caption_variants(family: str, material_caption: str, params, seed: int, count: int) -> list[str]:
    """The material's own caption and `count - 1` more drawn with other seeds (duplicates dropped)."""
    fam = get_family(family)
    out = [material_caption]
    for k in range(1, 4 * count):
        if len(out) == count:
            break
        text = fam.caption(params, np.random.default_rng([seed, k]))
        if text not in out:
            out.append(text)
    return out


def _make_material(job: tuple[str, int, int, int]) -> tuple[dict, np.ndarray]:
    """(family, seed, size, captions) -> (record, model-space material (9, H, W) float16): runs in a worker."""
    family, seed, size, captions = job
    material = dataset_material(family, seed, size)
    params = get_family(family).params.create(**material.metadata["params"])
    record = {
        "name": material_name(family, seed),
        "family": family,
        "seed": seed,
        "captions": caption_variants(family, material.metadata["caption"], params, seed, captions),
    }
    return record, material.to_model_tensor().half().numpy()


@torch.no_grad()
def encode_wrapped(vae, x: torch.Tensor, margin: int) -> torch.Tensor:
    """Posterior means of tileable materials (B, 9, H, W) -> (B, C, H/f, W/f) that tile too.

    The convolutions pad circularly (features rolling) and `margin` px of wrapped material on each side, cropped
    after, hide what stays non-periodic: the encoder's downsampling pads one zero row and column itself, and
    GroupNorm sees the margin. Measured on a tiny VAE (tests/test_latent_cache.py): a shifted material's latents
    match the shifted latents 20x better than a plain encode.
    """
    f = vae_scale_factor(vae)
    enable_feature_rolling(vae)
    if margin:
        x = torch.nn.functional.pad(x, (margin,) * 4, mode="circular")
    with tiling(TilingState(circular=True)):
        z = vae.encode(x).latent_dist.mean
    m = margin // f
    return z[..., m : z.shape[-2] - m, m : z.shape[-1] - m] if m else z


def plan_jobs(cfg: LatentCacheConfig) -> list[tuple[str, int, int, int]]:
    """One (family, seed, size, captions) per material: families in turn, training-split seeds."""
    families = list(cfg.families) or list(FAMILIES)
    for name in families:
        get_family(name)  # a ValueError naming an unknown family, before any work
    seeds = training_seeds(cfg.seed_start, cfg.n)
    return [(families[i % len(families)], s, cfg.size, cfg.captions) for i, s in enumerate(seeds)]


@contextlib.contextmanager
def _material_maker(workers: int):
    """`map(fn, jobs)` in order: in `workers` spawned processes (numpy there, torch here), or in this process for 0."""
    if not workers:
        yield map
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield lambda fn, jobs: pool.imap(fn, jobs, chunksize=4)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_config(LatentCacheConfig, sys.argv[1:] if argv is None else argv)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    vae = load_vae(cfg.vae).eval().requires_grad_(False)
    digest = vae_digest(cfg.vae)
    jobs = plan_jobs(cfg)
    shards = [jobs[i : i + cfg.shard_size] for i in range(0, len(jobs), cfg.shard_size)]
    todo = [k for k in range(len(shards)) if not latent_shard_path(out, k).is_file()]
    logger.info("%d materials in %d shards, %d to do; VAE %s (%s)", len(jobs), len(shards), len(todo), cfg.vae, digest)
    start = time.time()
    with _material_maker(cfg.workers) as make:
        for done, k in enumerate(todo, 1):
            records, latents, colors, batch = [], [], [], []
            for record, x in make(_make_material, shards[k]):
                records.append(record)
                batch.append(torch.from_numpy(x).float())
                if len(batch) == cfg.batch_size or len(records) == len(shards[k]):
                    x = torch.stack(batch)
                    latents.append(encode_wrapped(vae, x, cfg.wrap_margin).half())
                    colors.append(encode_color(x[:, 0:3], vae_scale_factor(vae)).half())
                    batch = []
            write_shard(latent_shard_path(out, k), torch.cat(latents), torch.cat(colors), records, digest, cfg)
            rate = done * cfg.shard_size / (time.time() - start)
            logger.info("shard %d/%d written (%.2f materials/s, ETA %.0f min)", k + 1, len(shards), rate,
                        (len(todo) - done) * cfg.shard_size / rate / 60)  # fmt: skip
    return 0


def write_shard(
    path: Path, latents: torch.Tensor, colors: torch.Tensor, records: list[dict], digest: str, cfg: LatentCacheConfig
) -> None:
    """One shard file, written atomically."""
    metadata = {"records": json.dumps(records), "vae_digest": digest, "size": str(cfg.size), "wrap_margin": str(cfg.wrap_margin)}
    tensors = {"latents": latents.contiguous(), "color": colors.contiguous()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.encode_latents"))
