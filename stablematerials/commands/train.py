"""`stablematerials train vae|latents|ldm|lcm|capture|image-encoder [OPTIONS]`: the training scripts (`python -m
training.X` for train_vae, encode_latents, train_ldm, distill_lcm, train_capture, train_image_encoder) as console
commands. Their options are the keys of their typed configs: `stablematerials train ldm --help` lists them. Under
`accelerate launch` use the modules (`accelerate launch -m training.train_ldm ...`)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util

HELP = "train a model: the VAE, the latent diffusion UNet, its 4-step student, ... (options: train STAGE --help)"
STAGES = {
    "vae": "train_vae",
    "latents": "encode_latents",
    "ldm": "train_ldm",
    "lcm": "distill_lcm",
    "capture": "train_capture",
    "image-encoder": "train_image_encoder",
}
PASSTHROUGH_AFTER = 1  # after the stage, every option (--help too) is the stage's config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=list(STAGES),
                   help="vae: the autoencoder; latents: the materials encoded once for ldm; ldm: the denoiser; "
                        "lcm: its 4-step student; capture: the photo-to-material predictor; image-encoder: pictures "
                        "to prompt embeddings")  # fmt: skip
    p.set_defaults(options=[])  # filled by the CLI with everything after the stage (see PASSTHROUGH_AFTER)
    p.epilog = "Each stage's options: stablematerials train STAGE --help (e.g. --config FILE --train.max_steps 500)"


def run_script(module: str, options: list[str]) -> int:
    """Run `training.<module>.main(options)`; ValueError when the training code (extra `train`) is not installed."""
    if importlib.util.find_spec("training") is None or importlib.util.find_spec(f"training.{module}") is None:
        raise ValueError('the training code is not installed: pip install "stablematerials[train]"')
    return int(importlib.import_module(f"training.{module}").main(options) or 0)


def run(args: argparse.Namespace) -> int:
    return run_script(STAGES[args.stage], args.options)
