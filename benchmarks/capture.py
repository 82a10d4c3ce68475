"""Photo -> maps: how close are the capture model's maps to the truth, against what a user would otherwise use?

    python -m benchmarks.capture --model runs/capture/model --out runs/capture/bench [--n 4] [--size 256]
        [--image-prompt-model PATH] [--photos DIR] [--held-out marble,rusty_metal]

Protocol:
1. Photos: every procedural family, `--n` materials each with seeds of the `test` split (never trained on; the
   training draws `train` seeds only), rendered like the training photos (training/capture_data.py: random lights,
   exposure, white balance, noise, blur, JPEG; slight perspective) with a fixed seed. `--held-out` names the families
   the model never saw (default: those of training/capture_config.py).
2. Methods: the capture model with the photo's exact framing (maps aligned with the photo); baseline (a), the
   luminance heuristic of free tools: the photo as basecolor, height = its normalised luminance, normal derived from
   that height (strength chosen as the best of a sweep on `train`-split photos), roughness 0.5, metallic 0;
   baseline (b), the image-prompt path (a text/image model folder with a vision_encoder): a material *like* the photo.
3. Per photo: `stablematerials.metrics.capture_errors` (basecolor after exposure normalisation, normal angle in
   degrees, mean-free height, roughness, metallic MAE, metallic right on/off), the re-render PSNR (predicted maps
   rendered under the photo's own light and exposure against the photo itself), and the worst seam score of the
   tileable output (the capture model with tileable=True; the baselines as they come).
4. Speed: a 512 px photo to five maps, median of 5 after a warm-up, at the current torch thread count. Tiles: the
   same 512 px photo predicted whole and in 256 px tiles (mean and max map difference).
5. Contact sheets (OUT/contact_*.png): photo, basecolor, normal, height, roughness, metallic, a render under a new
   distant light, and the maps tiled 2x2 rendered under it, for some held-out photos and for the real photographs in
   `--photos`.

Writes OUT/capture.json and OUT/capture.md and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from benchmarks.material_eval.sheets import save_png
from stablematerials.capture import StableMaterialsCapturePipeline, load_photo
from stablematerials.io import atomic_write_text
from stablematerials.material import Material, normal_from_height
from stablematerials.metrics import capture_errors, max_seam_score
from stablematerials.procedural import FAMILIES
from stablematerials.procedural.dataset import dataset_material
from stablematerials.render import (
    DEFAULT_CAMERA_DISTANCE,
    DEFAULT_LIGHT_INTENSITY,
    linear_to_srgb,
    render_plane,
)
from training.capture_config import CaptureConfig
from training.capture_data import Lighting, make_photos, sample_view, shade, split_seed

METRICS = ("basecolor", "normal_deg", "height", "roughness", "metallic", "metallic_accuracy", "psnr", "seam")
STRENGTHS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # baseline (a)'s normal strengths tried on train-split photos


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="a capture model folder (train_capture's OUTPUT/model)")
    p.add_argument("--out", type=Path, required=True, help="folder for capture.json, capture.md and contact sheets")
    p.add_argument("--n", type=int, default=4, help="test photos per family")
    p.add_argument("--size", type=int, default=256, help="photo size in pixels")
    p.add_argument("--held-out", default=",".join(CaptureConfig().data.exclude_families), help="families never trained on")
    p.add_argument("--image-prompt-model", type=Path, default=None, help="baseline (b): a model folder with vision_encoder/")
    p.add_argument("--photos", type=Path, default=None, help="a folder of real texture photographs for a contact sheet")
    p.add_argument("--seed", type=int, default=2024, help="lights and views of the test photos")
    p.add_argument("--families", default="", help="only these families, comma-separated (default: all; quick checks)")
    p.add_argument("--skip-speed", action="store_true", help="do not time the 512 px capture")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Photos and methods
# ----------------------------------------------------------------------------------------------


def test_photo(family: str, index: int, size: int, seed: int, split: str = "test") -> dict:
    """One benchmark photo: a whole material of `split`, one view at texel scale 1, its photo and light."""
    rng = np.random.default_rng([seed, index, list(FAMILIES).index(family)])
    mat_seed = split_seed(rng, split)
    cfg = CaptureConfig()
    view_cfg = dataclasses.replace(cfg.data, scale_min=1.0, scale_max=1.0, perspective=0.03)
    target = sample_view(dataset_material(family, mat_seed, size).to_model_tensor(), view_cfg, rng, size)[None]
    photos, _, light = make_photos(target, cfg.photo, rng)
    return {"family": family, "seed": mat_seed, "target": Material.from_model_tensor(target[0]), "photo": photos[0], "light": light}


def luminance_baseline(photo: torch.Tensor, strength: float) -> Material:
    """Baseline (a): the photo as basecolor, height = normalised luminance, normal from it, roughness 0.5, no metal."""
    luma = (photo * torch.tensor([0.2126, 0.7152, 0.0722])[:, None, None]).sum(0)
    height = (luma - luma.min()) / (luma.max() - luma.min()).clamp_min(1e-6)
    normal = normal_from_height(height[None, None], strength)[0].permute(1, 2, 0).numpy()
    flat = np.full(height.shape, 0.5, np.float32)
    return Material(photo.permute(1, 2, 0).numpy(), normal, height.numpy(), flat, np.zeros_like(flat), {"source": "luminance"})


def image_prompt_method(folder: Path):
    """Baseline (b): the text/image model generating a material like the photo (tileable, fixed seed)."""
    from stablematerials.loading import load_pipeline

    if not (folder / "vision_encoder").is_dir():
        raise SystemExit(f"--image-prompt-model {folder}: no vision_encoder/ (baseline (b) needs an image encoder)")
    pipe = load_pipeline(folder)  # the model's default sampler and steps, as a user gets them
    pipe.set_progress_bar_config(disable=True)

    def run(photo: torch.Tensor) -> Material:
        h, w = photo.shape[-2:]
        generator = torch.Generator().manual_seed(0)
        return pipe(image=photo, height=h, width=w, tileable=True, generator=generator, output_type="material").images[0]

    return run


def rerender_psnr(material: Material, photo: torch.Tensor, light: Lighting) -> float:
    """PSNR (dB) of the maps rendered under the photo's own light and exposure against the photo."""
    with torch.no_grad():
        render = linear_to_srgb(shade(material.to_model_tensor()[None], light))[0]
    mse = float((render - photo).pow(2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def score(material: Material, item: dict, tileable_version: Material | None = None) -> dict:
    row = capture_errors(material, item["target"])
    row["psnr"] = rerender_psnr(material, item["photo"], item["light"])
    row["seam"] = max_seam_score(tileable_version or material)
    return row


def best_strength(size: int, seed: int) -> float:
    """Baseline (a)'s fairest normal strength: the lowest mean normal error on train-split photos."""
    items = [test_photo(f, 0, size, seed + 1, split="train") for f in list(FAMILIES)[::2]]
    errors = {s: np.mean([capture_errors(luminance_baseline(it["photo"], s), it["target"])["normal_deg"] for it in items]) for s in STRENGTHS}
    return min(errors, key=errors.get)


# ----------------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------------


def _to_image(arr: np.ndarray, size: int) -> Image.Image:
    arr = np.clip(arr, 0, 1)
    arr = np.repeat(arr[..., None], 3, -1) if arr.ndim == 2 else arr
    return Image.fromarray((arr * 255 + 0.5).astype(np.uint8)).resize((size, size), Image.LANCZOS)


def relit(material: Material, direction=(0.6, -0.45, 0.66)) -> np.ndarray:
    """The material on the plane under a distant light from the lower right (a light the photo did not have): far
    away, so the light itself adds no gradient and a tiled render shows the maps' own seams."""
    unit = np.asarray(direction) / np.linalg.norm(direction)
    distance = 100.0
    intensity = DEFAULT_LIGHT_INTENSITY * (distance / DEFAULT_CAMERA_DISTANCE) ** 2
    with torch.no_grad():
        img = render_plane(material.to_tensors(), torch.from_numpy(np.float32([[unit * distance]])), intensity, ambient=0.05)
    return img[0].permute(1, 2, 0).numpy()


def contact_sheet(rows: list[tuple[str, np.ndarray, Material]], path: Path, cell: int = 160) -> None:
    """One row per photo: photo, the five maps, a render under a new light, that render tiled 2 x 2."""
    labels = ["photo", "basecolor", "normal", "height", "roughness", "metallic", "new light", "tiled 2x2"]
    sheet = Image.new("RGB", (cell * len(labels), 18 + (cell + 16) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(labels):
        draw.text((j * cell + 4, 3), label, fill="black")
    for i, (name, photo, m) in enumerate(rows):
        cells = [photo, m.basecolor, m.normal * 0.5 + 0.5, m.height, m.roughness, m.metallic, relit(m), relit(m.tile(2))]
        y = 18 + i * (cell + 16)
        for j, arr in enumerate(cells):
            sheet.paste(_to_image(arr, cell), (j * cell, y))
        draw.text((4, y + cell + 2), name[:60], fill="black")
    save_png(sheet, path)


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def summarize(rows: list[dict], held_out: set[str]) -> dict:
    out = {}
    for group, keep in (("seen", lambda f: f not in held_out), ("held_out", lambda f: f in held_out), ("all", lambda f: True)):
        sel = [r for r in rows if keep(r["family"])]
        if sel:
            out[group] = {m: float(np.mean([r[m] for r in sel])) for m in METRICS} | {"photos": len(sel)}
            out[group]["seam_max"] = float(max(r["seam"] for r in sel))  # the bound holds for every photo
    return out


def speed(pipe: StableMaterialsCapturePipeline) -> dict:
    photo = test_photo("bricks", 0, 512, 7)["photo"]
    pipe(photo)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        pipe(photo)
        times.append(time.perf_counter() - t)
    whole = pipe(photo, tileable=False).images[0]
    tiled = pipe(photo, tileable=False, tile_size=256).images[0]
    diff = np.abs(whole.to_numpy() - tiled.to_numpy())
    return {"seconds_512": statistics.median(times), "threads": torch.get_num_threads(),
            "tiles_vs_whole_mean": float(diff.mean()), "tiles_vs_whole_max": float(diff.max())}  # fmt: skip


def table(summary: dict, methods: list[str]) -> str:
    lines = ["| method | photos | basecolor | normal (deg) | height | roughness | metallic | metal right | re-render PSNR | worst seam (mean / max) |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in methods:
        for group, s in summary[method].items():
            lines.append(
                f"| {method} ({group}) | {s['photos']} | {s['basecolor']:.4f} | {s['normal_deg']:.2f} | {s['height']:.4f} | "
                f"{s['roughness']:.4f} | {s['metallic']:.4f} | {100 * s['metallic_accuracy']:.1f} % | {s['psnr']:.2f} dB | "
                f"{s['seam']:.3f} / {s['seam_max']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    held_out = {f for f in args.held_out.split(",") if f}
    families = [f for f in args.families.split(",") if f] or list(FAMILIES)
    if unknown := sorted(set(families) - set(FAMILIES)):
        raise SystemExit(f"--families: unknown {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    pipe = StableMaterialsCapturePipeline.from_pretrained(args.model)
    strength = best_strength(args.size, args.seed)
    methods = {
        "capture": lambda photo: pipe(photo, tileable=False).images[0],
        "luminance (a)": lambda photo: luminance_baseline(photo, strength),
    }
    if args.image_prompt_model is not None:
        methods["image prompt (b)"] = image_prompt_method(args.image_prompt_model)

    rows: dict[str, list[dict]] = {m: [] for m in methods}
    sheet_rows = []
    for family in families:
        for i in range(args.n):
            item = test_photo(family, i, args.size, args.seed)
            for name, run in methods.items():
                material = run(item["photo"])
                tiled = pipe(item["photo"]).images[0] if name == "capture" else None
                rows[name].append({"family": family, "seed": item["seed"]} | score(material, item, tiled))
                if name == "capture" and family in held_out and i < 2:
                    sheet_rows.append((f"{family} {item['seed']} (held out)", item["photo"].permute(1, 2, 0).numpy(), tiled))
        print(f"{family}: " + ", ".join(f"{m} normal {np.mean([r['normal_deg'] for r in rows[m] if r['family'] == family]):.1f}"
                                        for m in methods), flush=True)  # fmt: skip
    summary = {m: summarize(r, held_out) for m, r in rows.items()}
    per_family = {m: {f: {k: float(np.mean([r[k] for r in rs if r["family"] == f])) for k in METRICS} for f in families} for m, rs in rows.items()}
    result = {"model": str(args.model), "size": args.size, "n": args.n, "held_out": sorted(held_out),
              "luminance_strength": strength, "summary": summary, "per_family": per_family, "photos": rows}  # fmt: skip
    cap, lum = summary["capture"]["all"], summary["luminance (a)"]["all"]
    result["ratios"] = {
        "normal_vs_luminance": lum["normal_deg"] / cap["normal_deg"],
        "basecolor_vs_luminance": lum["basecolor"] / cap["basecolor"],
    }
    if "held_out" in summary["capture"]:
        keys = ("basecolor", "normal_deg", "height", "roughness", "metallic")
        c, a = summary["capture"], summary["luminance (a)"]
        result["ratios"]["held_out_vs_seen"] = {k: c["held_out"][k] / c["seen"][k] for k in keys}
        # The held-out families may simply be easier or harder (marble is flat): the same ratio measured against
        # baseline (a)'s error on the same photos takes the families' difficulty out.
        result["ratios"]["held_out_vs_seen_relative_to_luminance"] = {
            k: (c["held_out"][k] / a["held_out"][k]) / (c["seen"][k] / a["seen"][k]) for k in keys
        }
    if not args.skip_speed:
        result["speed"] = speed(pipe)
    contact_sheet(sheet_rows, args.out / "contact_held_out.png")
    if args.photos is not None:
        real = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tga"))
        contact_sheet([(p.name, load_photo(p).permute(1, 2, 0).numpy(), pipe(str(p), max_size=512).images[0]) for p in real],
                      args.out / "contact_real.png")  # fmt: skip
    text = table(summary, list(methods))
    atomic_write_text(args.out / "capture.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "capture.md", text + "\n\n" + json.dumps({k: result[k] for k in ("ratios", "luminance_strength") + (("speed",) if "speed" in result else ())}, indent=2) + "\n")
    print(text)
    print(json.dumps(result["ratios"], indent=2))
    if "speed" in result:
        print(json.dumps(result["speed"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
