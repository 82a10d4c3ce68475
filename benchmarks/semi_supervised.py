"""Does the unannotated-image stream help on families the model has no maps of? (StableMaterials' semi-supervised claim)

    python -m benchmarks.semi_supervised --work runs/bench_semi --data data/procedural \
        --families bricks,wood_planks,marble,rusty_metal --held-out marble,rusty_metal \
        --vae-steps 1500 --ldm-steps 3000

Protocol (same seed and budget for both runs):
1. A procedural dataset (built under WORK/data with `--n` materials when `--data` does not exist).
2. The VAE is trained on the annotated families only (or `--vae` reuses one): it never sees held-out maps.
3. Run A trains the LDM on annotated families only. Run B trains the same LDM with the same steps and seed, plus an
   image stream: renders (RGB under the fixed light of training/semi.py, no maps) of the held-out families' training
   materials, with their captions.
4. For the held-out families' test-split captions, both models generate materials at fixed seeds; each set is
   compared with the ground-truth test materials of that family by `map_distribution_distance` (per-map 1-D
   Wasserstein distance of pixel values; lower is closer). Annotated families are reported too, as a control.

Prints a table and writes WORK/semi_supervised_VARIANT.json and .md (VARIANT: --semi-view, plus _anchor when anchored, _trajectory
when --semi-trajectory-share > 0, _guided when --semi-guidance != 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.family_eval import EVAL_SEED, distance_table, family_distances, write_report

from stablematerials.io import load_material
from stablematerials.render import render_plane
from training.config import SemiConfig
from training.data import discover_materials
from training.semi import anchor_maps_for

GUIDANCE = 5.0  # guidance when generating for the comparison (a usual sampling setting)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the dataset, runs and results")
    p.add_argument("--data", type=Path, default=None, help="procedural dataset root (default WORK/data, built if missing)")
    p.add_argument("--n", type=int, default=400, help="materials to generate when building the dataset")
    p.add_argument("--size", type=int, default=128, help="material size when building the dataset")
    p.add_argument("--families", default="bricks,wood_planks,marble,rusty_metal", help="families used (comma-separated)")
    p.add_argument("--held-out", default="marble,rusty_metal", help="families with images only (comma-separated)")
    p.add_argument("--vae", type=Path, default=None, help="reuse this trained VAE instead of training one")
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--ldm-steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--resolution", type=int, default=128, help="materials are resized to this for training")
    p.add_argument("--crop", type=int, default=64, help="training crop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-per-family", type=int, default=8, help="generated materials per family")
    p.add_argument("--eval-steps", type=int, default=25, help="DDIM steps when generating")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="first sampling seed of the evaluation (another "
                   "seed re-measures the same trained models: the evaluation's own noise)")  # fmt: skip
    p.add_argument("--guidance", type=float, default=GUIDANCE, help="guidance scale when generating (the report's "
                   "name gets _guidanceG when it is not the default)")
    p.add_argument("--semi-weight", type=float, default=SemiConfig.weight)
    p.add_argument("--semi-start", type=int, default=None, help="step the adversarial stream starts (default: ldm-steps / 10)")
    p.add_argument("--semi-anchor-weight", type=float, default=SemiConfig.anchor_weight,
                   help="weight holding the maps the view does not show to the snapshot (training/semi.py); 0: off")
    p.add_argument("--semi-trajectory-share", type=float, default=SemiConfig.trajectory_share,
                   help="share of the image batch judged one step along the model's own trajectory (training/semi.py)")
    p.add_argument("--semi-guidance", type=float, default=SemiConfig.guidance_scale,
                   help="guidance of the judged fakes (training/semi.py); 1: unguided")
    p.add_argument("--semi-view", choices=["render", "basecolor"], default=SemiConfig.view,
                   help="what the discriminator sees; the unannotated images match it: renders under the training "
                        "light, or the basecolor maps (texture photos under soft light are closest to an albedo)")
    p.add_argument("--small", action="store_true", help="tiny models (for checking the script end to end)")
    p.add_argument("--text-encoder", default="minilm")
    args = p.parse_args(argv)
    if args.semi_start is None:
        args.semi_start = args.ldm_steps // 10
    return args


def ensure_dataset(args: argparse.Namespace, families: list[str]) -> Path:
    """The dataset root: `--data` if it exists, else built under WORK/data (20% test so every family has some)."""
    root = args.data or args.work / "data"
    if (root / "dataset.json").is_file():
        return root
    from stablematerials.procedural.dataset import write_dataset

    print(f"building {args.n} procedural materials of {families} under {root}", flush=True)
    write_dataset(root, args.n, size=args.size, families=families, val_fraction=0.05, test_fraction=0.2, workers=1)
    return root


def write_renders(data: Path, held_out: list[str], folder: Path, resolution: int, kind: str = "render") -> int:
    """Images (no maps) of the held-out families' training materials, with captions: the unannotated stream.
    `kind` "render": rendered under the training light; "basecolor": the basecolor map as an RGB image."""
    from PIL import Image

    if (folder / "captions.jsonl").is_file():
        return len((folder / "captions.jsonl").read_text().splitlines())
    folder.mkdir(parents=True, exist_ok=True)
    light = torch.tensor(SemiConfig().light).view(1, 1, 3)
    lines = []
    for rec in discover_materials(data, "train", families=held_out):
        m = load_material(rec.folder).resize(resolution)
        if kind == "basecolor":
            img = m.basecolor
        else:
            with torch.no_grad():
                img = render_plane(m.to_tensors(), light)[0].permute(1, 2, 0).numpy()
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(folder / f"{rec.name}.png")
        lines.append(json.dumps({"file": f"{rec.name}.png", "caption": rec.caption}))
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines)


def model_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Model-size overrides: the defaults (recommended small config) or tiny ones for a smoke run."""
    if not args.small:
        return [], []
    vae = ["--model.block_out_channels=16,32,32", "--model.norm_num_groups=8", "--model.latent_channels=8"]
    unet = ["--model.block_out_channels=32,64", "--model.attention_levels=false,true", "--model.attention_head_dim=16"]
    return vae, unet


def variant(args: argparse.Namespace) -> str:
    """The semi-supervised variant's name: the discriminator view, "_anchor" when maps are held to the snapshot,
    "_trajectory" when part of the image batch is judged along the model's own trajectory, "_guided" when the
    judged fakes are guided, "_weightW" when the adversarial weight is not the default."""
    anchored = args.semi_anchor_weight > 0 and anchor_maps_for(args.semi_view, None)
    return (args.semi_view + ("_anchor" if anchored else "") + ("_trajectory" if args.semi_trajectory_share > 0 else "")
            + ("_guided" if args.semi_guidance != 1 else "")
            + ("" if args.semi_weight == SemiConfig.weight else f"_weight{args.semi_weight:g}"))


def train(args: argparse.Namespace, data: Path, families: list[str], held_out: list[str], images: Path) -> dict[str, Path]:
    from training import train_ldm, train_vae

    annotated = [f for f in families if f not in held_out]
    vae_model, unet_model = model_args(args)
    common = [f"--data.root={data}", f"--data.resolution={args.resolution}", f"--data.crop_size={args.crop}",
              f"--data.families={','.join(annotated)}", f"--seed={args.seed}", f"--train.batch_size={args.batch_size}",
              "--train.log_every=50", "--sample.count=2"]  # fmt: skip
    vae = args.vae
    if vae is None:
        vae_out = args.work / "vae"
        if not (vae_out / "vae" / "config.json").is_file():
            train_vae.main([f"--output_dir={vae_out}", *common, *vae_model, f"--train.max_steps={args.vae_steps}",
                            f"--train.checkpoint_every={max(args.vae_steps, 1)}", "--resume=latest"])  # fmt: skip
        vae = vae_out / "vae"
    ldm = [*common, *unet_model, f"--vae={vae}", f"--text_encoder={args.text_encoder}", f"--train.max_steps={args.ldm_steps}",
           f"--train.checkpoint_every={max(args.ldm_steps // 4, 1)}", "--resume=latest", "--sample.steps=10"]  # fmt: skip
    semi_dir = "ldm_semi" if args.semi_view == "render" else f"ldm_semi_{variant(args)}"
    runs = {"annotated only": args.work / "ldm_annotated", "+ unannotated images": args.work / semi_dir}
    extra = {
        "annotated only": [],
        "+ unannotated images": [f"--semi.images={images}", f"--semi.start_step={args.semi_start}", f"--semi.weight={args.semi_weight}",
                                 f"--semi.view={args.semi_view}", f"--semi.anchor_weight={args.semi_anchor_weight}",
                                 f"--semi.trajectory_share={args.semi_trajectory_share}", f"--semi.guidance_scale={args.semi_guidance}"],
    }  # fmt: skip
    for label, out in runs.items():
        if not (out / "model" / "model_index.json").is_file():
            t0 = time.perf_counter()
            train_ldm.main([f"--output_dir={out}", *ldm, *extra[label]])
            print(f"{label}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    held_out = [f for f in args.held_out.split(",") if f]
    if not held_out or not set(held_out) < set(families):
        raise SystemExit(f"--held-out ({held_out}) must be a non-empty proper subset of --families ({families})")
    args.work.mkdir(parents=True, exist_ok=True)
    data = ensure_dataset(args, families)
    images = args.work / ("images" if args.semi_view == "render" else f"images_{args.semi_view}")
    n_images = write_renders(data, held_out, images, args.resolution, args.semi_view)
    print(f"{n_images} unannotated {args.semi_view} images of {held_out}", flush=True)
    runs = train(args, data, families, held_out, images)
    results = family_distances({label: out / "model" for label, out in runs.items()}, data, families,
                               per_family=args.eval_per_family, steps=args.eval_steps, guidance=args.guidance,
                               size=args.crop, resolution=args.resolution, seed=args.eval_seed)  # fmt: skip
    groups = {"held out": [f for f in families if f in held_out], "annotated": [f for f in families if f not in held_out]}
    text = distance_table(results, groups, list(runs))
    budget = (f"VAE {args.vae_steps if args.vae is None else 'reused'} steps, LDM {args.ldm_steps} steps, batch "
              f"{args.batch_size}, crop {args.crop}, seed {args.seed}, {args.eval_per_family} samples per family (seeds from {args.eval_seed}) at guidance {args.guidance:g}, "
              f"{'tiny models' if args.small else 'default models'}, discriminator view and images: {args.semi_view}, "
              f"adversarial weight {args.semi_weight} from step {args.semi_start}, anchor weight "
              f"{args.semi_anchor_weight if anchor_maps_for(args.semi_view, None) else 0} on the maps the view does not show, trajectory share {args.semi_trajectory_share}, fakes guided at {args.semi_guidance:g}")  # fmt: skip
    name = (f"semi_supervised_{variant(args)}" + ("" if args.guidance == GUIDANCE else f"_guidance{args.guidance:g}")
            + ("" if args.eval_seed == EVAL_SEED else f"_evalseed{args.eval_seed}")
            + ("" if args.eval_per_family == 8 else f"_{args.eval_per_family}each"))  # fmt: skip
    report = write_report(args.work, name, "Semi-supervised benchmark", budget, results, text)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
