"""Put a trained image-prompt encoder into a pipeline folder (one command):

    python -m training.add_image_encoder --encoder runs/image_encoder/encoder --model assets/default-model
    python -m training.add_image_encoder --encoder ... --model runs/v3/model --out runs/v3/model_with_images

`--encoder` is the `encoder/` folder written by `training/train_image_encoder.py` (vision_encoder/ + processor/).
The model gets `vision_encoder/` (weights as float16 by default: half the bytes; the CPU loader computes in
float32) and `processor/`, and model_index.json names them; with `--out` a copy of the model is changed instead.
With `--color-fit N` (default 12; 0: none) it also fits `image_color_fit` (`stablematerials.picture_color`): a
picture's colour statistics -> its material's mean basecolor, least squares over 3 pictures each of N train-split
procedural materials per family under the encoder's training lights; the figure it logs is the share of held-out
"unlike" pictures whose estimate is within 0.1 of their material's colour, raw mean and fitted.
The result is loaded and run once with an image prompt as a check.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stablematerials.image_encoder import add_image_encoder
from stablematerials.io import AtomicFolder, atomic_write_text
from stablematerials.picture_color import fit_picture_colors, picture_color_features

logger = logging.getLogger("training.add_image_encoder")


def check(model: Path) -> str:
    """Load the model, encode a picture, generate a tiny material from it; a one-line summary."""
    from stablematerials.conditioning import is_sentence_encoder, load_image_prompt
    from stablematerials.loading import load_pipeline

    pipe = load_pipeline(model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    if not is_sentence_encoder(pipe.text_encoder):
        raise ValueError(f"{model} has a CLIP-style text encoder; this encoder is for sentence-encoder models")
    picture = load_image_prompt(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    start = time.perf_counter()
    embeds, _ = pipe.encode_prompt([picture], torch.device("cpu"), 1, False)
    seconds = time.perf_counter() - start
    m = pipe(image=picture, height=64, width=64, num_inference_steps=1, generator=torch.Generator().manual_seed(0)).images[0]
    norm = float(embeds.norm()) / pipe.config.embedding_scale
    return f"image embedding norm {norm:.3f} (x embedding_scale), encoded in {seconds * 1000:.0f} ms; material {m.size}"


def picture_color_set(split: str, per_family: int, unlike: bool, views: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Colour features (N, 10) of `views` pictures each of `per_family` `split` procedural materials per family (the
    encoder's training lights, or its held-out "unlike" ones), and their materials' mean basecolors (N, 3)."""
    from PIL import Image

    from training.image_encoder_data import TRAIN_PHOTOS, UNLIKE_PHOTOS, material_maps, photograph, procedural_item
    from training.image_encoder_data import split_seeds

    features, colors = [], []
    for family, seed in split_seeds(split, per_family):
        material, _ = procedural_item(family, seed, 128, variants=1)
        rng = np.random.default_rng([0, seed, 2])
        lights = UNLIKE_PHOTOS if unlike else TRAIN_PHOTOS
        for picture in photograph(material_maps(material), views, 128, lights, rng):
            features.append(picture_color_features(Image.fromarray(picture)))
            colors.append(np.asarray(material.basecolor, dtype=np.float64).reshape(-1, 3).mean(0))
    return np.stack(features), np.stack(colors)


def add_color_fit(model: Path, per_family: int) -> str:
    """Fit `image_color_fit` on train-split pictures, store it in `model`'s model_index.json; a one-line summary."""
    fit = fit_picture_colors(*picture_color_set("train", per_family, unlike=False, views=3))  # (10, 3)
    features, colors = picture_color_set("test", max(2, per_family // 2), unlike=True)
    within = {name: float(np.mean(np.abs(np.clip(pred, 0, 1) - colors).max(1) <= 0.1))
              for name, pred in (("raw mean", features[:, :3]), ("fitted", features @ fit))}  # fmt: skip
    index_path = model / "model_index.json"
    index = json.loads(index_path.read_text())
    index["image_color_fit"] = fit.round(5).tolist()
    atomic_write_text(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")
    return f"picture colour within 0.1 on {len(colors)} held-out unlike pictures: " + ", ".join(
        f"{k} {v:.0%}" for k, v in within.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, type=Path, help="encoder folder (vision_encoder/ + processor/)")
    p.add_argument("--model", required=True, type=Path, help="pipeline folder to add it to")
    p.add_argument("--out", type=Path, help="write a changed copy here instead of changing --model")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored weight type")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--color-fit", type=int, default=12, metavar="N",
                   help="fit the picture-colour map on N procedural materials per family (default 12; 0: none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.color_fit < 0:
            raise ValueError(f"--color-fit must be 0 or more materials per family, got {args.color_fit}")
        target = args.model
        if args.out is not None:
            if not (args.model / "model_index.json").is_file():
                raise ValueError(f"{args.model} is not a pipeline folder: it has no model_index.json")
            with AtomicFolder(args.out, overwrite=args.overwrite) as tmp:
                shutil.copytree(args.model, tmp, dirs_exist_ok=True)
                add_image_encoder(tmp, args.encoder, getattr(torch, args.dtype))
            target = args.out
        else:
            add_image_encoder(args.model, args.encoder, getattr(torch, args.dtype))
        if args.color_fit:
            print(f"fitted the picture-colour map: {add_color_fit(target, args.color_fit)}")
        print(f"added the image encoder to {target}: {check(target)}")
    except (ValueError, FileExistsError) as e:
        print(f"add_image_encoder: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.add_image_encoder"))
