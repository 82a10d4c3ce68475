"""Tiny seeded datasets and components for the training tests, built in code."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch

from stablematerials.io import save_material
from stablematerials.material import Material, normal_from_height
from stablematerials.render import render_plane


def height_field(kind: str, size: int, seed: int) -> np.ndarray:
    """A tileable height map in [0, 1]: sine waves, a checkerboard or a flat plane."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if kind == "sine":
        fx, fy = rng.integers(1, 4, size=2)
        h = 0.5 + 0.25 * np.sin(2 * np.pi * fx * x / size) + 0.25 * np.sin(2 * np.pi * fy * y / size + rng.uniform(0, 6))
    elif kind == "checker":
        cells = int(rng.choice([2, 4]))
        h = (((x * cells // size) + (y * cells // size)) % 2).astype(np.float64)
    else:
        h = np.full((size, size), 0.5)
    return h.astype(np.float32)


FAMILIES = {
    "sine": ((0.7, 0.3, 0.2), 0.3, 0.0),
    "checker": ((0.2, 0.3, 0.8), 0.6, 1.0),
    "solid": ((0.4, 0.8, 0.3), 0.9, 0.0),
}


def make_material(family: str, size: int, seed: int) -> Material:
    """A material of one of the tiny families: a coloured height field with its own normal map."""
    colour, rough, metal = FAMILIES[family]
    rng = np.random.default_rng(seed)
    h = height_field(family, size, seed)
    base = np.clip(np.asarray(colour, np.float32) * (0.8 + 0.4 * h[..., None]) + rng.normal(0, 0.02, 3), 0, 1)
    normal = normal_from_height(torch.from_numpy(h)[None, None], 2.0)[0].permute(1, 2, 0).numpy()
    return Material(base, normal, h, np.full_like(h, rough), np.full_like(h, metal))


def make_dataset(root: Path, per_family: int = 2, size: int = 32, splits=("train", "val"), families=tuple(FAMILIES)) -> Path:
    """A procedural-layout dataset: ROOT/<split>/<name>/ folders and ROOT/<split>/captions.jsonl."""
    for split in splits:
        lines = []
        for family in families:
            for i in range(per_family):
                seed = zlib.crc32(f"{split}/{family}/{i}".encode()) % 10_000
                name = f"{family}_{split}_{i:03d}"
                save_material(make_material(family, size, seed), root / split / name, naming="plain")
                lines.append({"name": name, "family": family, "caption": f"a {family} material", "seed": seed, "params": {}})
        (root / split / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "dataset.json").write_text(json.dumps({"families": list(families)}))
    return root


def make_image_folder(root: Path, n: int = 4, size: int = 32, corrupt: int = 0) -> Path:
    """Renders of tiny materials as PNG files with captions.jsonl; `corrupt` extra files hold garbage bytes."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        family = list(FAMILIES)[i % len(FAMILIES)]
        m = make_material(family, size, 100 + i)
        with torch.no_grad():
            img = render_plane({k: v for k, v in m.to_tensors().items()})[0].permute(1, 2, 0).numpy()
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(root / f"img_{i:03d}.png")
        lines.append({"file": f"img_{i:03d}.png", "caption": f"a {family} material"})
    for j in range(corrupt):
        (root / f"bad_{j}.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
        lines.append({"file": f"bad_{j}.png", "caption": "broken"})
    (root / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def save_tiny_text_encoder(path: Path) -> Path:
    """The tiny random BERT + MiniLM tokenizer from stablematerials.tiny, saved as a transformers folder."""
    from stablematerials.tiny import tiny_text_encoder

    encoder, tokenizer = tiny_text_encoder(0)
    encoder.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# A tiny UNet and training loop for train_ldm / distill_lcm tests on the latent cache below.
UNET_MODEL = [
    "--model.block_out_channels=16,32", "--model.attention_levels=false,true", "--model.attention_head_dim=8",
    "--model.norm_num_groups=8",
]  # fmt: skip
LOOP = ["--train.batch_size=2", "--train.log_every=1", "--sample.count=1", "--data.crop_size=16"]


def tiny_vae():
    """A seeded 9-channel AutoencoderKL with 4 latent channels at factor 2."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=9, out_channels=9, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4, mid_block_add_attention=False,
    )  # fmt: skip


def make_latent_cache(root: Path, n: int) -> dict[str, Path]:
    """`tiny_vae` saved, a latent cache of `n` procedural materials at 32 px encoded by it (training/encode_latents.py,
    families in turn, 2 captions each, shards of 2), and a tiny text encoder: their paths."""
    from training import encode_latents

    vae = tiny_vae()
    vae.register_to_config(latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    vae.save_pretrained(root / "vae")
    args = ["--vae", str(root / "vae"), "--output_dir", str(root / "latents"), f"--n={n}", "--size=32", "--shard_size=2",
            "--captions=2", "--wrap_margin=8", "--workers=0", "--seed_start=0"]  # fmt: skip
    assert encode_latents.main(args) == 0
    return {"root": root, "vae": root / "vae", "latents": root / "latents", "text": save_tiny_text_encoder(root / "text")}


def free_port() -> int:
    """A free TCP port on the loopback interface (for a process group's rendezvous)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(module: str, args: list[str], processes: int = 2, timeout: int = 240):
    """`accelerate launch --multi_gpu --num_processes N -m MODULE ARGS` from the repo (CPU: gloo), as a user runs it."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    launcher = [shutil.which("accelerate"), "launch"] if shutil.which("accelerate") else [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [*launcher, "--multi_gpu", "--num_processes", str(processes), "--main_process_port", str(free_port()), "-m", module, *args]
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False)
