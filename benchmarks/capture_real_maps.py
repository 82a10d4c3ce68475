"""Capture on real textures against their artists' normal maps: how well does a photo's relief come out on real data?

    python -m benchmarks.capture_real_maps --model assets/default-model/capture --textures DIR --out OUT.json
        [--size 256] [--luminance-strength 0.25]

The capture benchmark (benchmarks/capture.py) scores synthetic photos of procedural materials, whose maps are exact.
Real photographs come without maps, but game texture sets ship a colour texture with the normal map an artist made
for it: `NAME_norm.EXT` (or `NAME_nm.EXT`) beside `NAME.EXT` (`.tga`, `.png` or `.jpg`). Debian's `nexuiz-textures` (GPL-2+) holds
about 1700 such pairs (`data/textures.pk3`, a zip; its walls, floors and metals are photo-based), and their alpha
channels hold the height the normals were made from.

Protocol:
1. Every texture under `--textures` whose colour image and normal map exist and agree in size, scaled to at most
   `--size` px per side (to multiples of 8; at least 32 px).
2. The normal map's Y convention, read from its alpha height (`training.texture_pairs.to_opengl`): a DirectX map's
   Y is flipped before scoring. Without a height the map is taken as OpenGL.
3. Methods, on the colour image: the capture model with exact framing; (a) the luminance heuristic of
   benchmarks/capture.py at `--luminance-strength` (the value its sweep chose on synthetic photos); a flat normal.
4. Per texture: the mean angle in degrees between each method's normal and the artist's (`normal_angle_error`)
   over the pixels where the map holds a normal (unit length, facing out; textures with less than half such
   pixels are skipped); the table gives means per folder (the first path component) and over all.

Caveat: an artist's normal map is one reading of the relief, sometimes itself made from the colour image, and game
colour textures often carry baked light; the figures compare methods, they are not errors against a measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.capture import luminance_baseline
from stablematerials.capture import StableMaterialsCapturePipeline
from stablematerials.io import atomic_write_text
from stablematerials.loading import load_capture_pipeline
from stablematerials.metrics import normal_angle_error
from training.texture_pairs import (
    COLOUR_EXTENSIONS,
    directx,
    load_pair,
    texture_pairs,
    to_opengl,
)

METHODS = ("capture", "luminance (a)", "flat")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a capture model folder, or a model folder holding capture/")
    p.add_argument("--textures", type=Path, required=True, help="a folder tree of NAME.EXT + NAME_norm.EXT (or NAME_nm.EXT) pairs")
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write (per texture and summary)")
    p.add_argument("--size", type=int, default=256, help="textures are scaled to at most this many px per side")
    p.add_argument("--luminance-strength", type=float, default=0.25, help="normal strength of baseline (a)")
    return p.parse_args(argv)


def score_texture(pipe: StableMaterialsCapturePipeline, colour: Path, normal: Path, args) -> dict | None:
    """One texture's row: its folder, the Y check, and each method's mean normal angle against the artist's."""
    loaded = load_pair(colour, normal, args.size)
    if loaded is None:
        return None
    photo, truth, alpha, valid = loaded
    if valid.mean() < 0.5:
        return None
    truth, xy = to_opengl(truth, alpha)
    flat = np.zeros_like(truth)
    flat[..., 2] = 1.0
    predicted = {
        "capture": pipe(photo, tileable=False).images[0].normal,
        "luminance (a)": luminance_baseline(torch.from_numpy(photo).permute(2, 0, 1), args.luminance_strength).normal,
        "flat": flat,
    }
    rel = colour.relative_to(args.textures)
    return {
        "texture": str(rel),
        "group": rel.parts[0] if len(rel.parts) > 1 else ".",
        "xy_agreement": xy,
        "directx": directx(xy),
        "valid": float(valid.mean()),
        **{m: normal_angle_error(predicted[m][valid], truth[valid]) for m in METHODS},
    }


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per group and over all: texture count and each method's mean angle."""
    groups = sorted({r["group"] for r in rows}) + ["all"]
    out = {}
    for g in groups:
        sel = [r for r in rows if g == "all" or r["group"] == g]
        out[g] = {"textures": len(sel), **{m: statistics.fmean(r[m] for r in sel) for m in METHODS}}
    return out


def table(summary: dict[str, dict]) -> str:
    lines = ["| folder | textures | " + " | ".join(f"{m} (deg)" for m in METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for g, s in summary.items():
        lines.append(f"| {g} | {s['textures']} | " + " | ".join(f"{s[m]:.2f}" for m in METHODS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.textures.is_dir():
        raise SystemExit(f"--textures {args.textures}: not a folder")
    pairs = texture_pairs(args.textures)
    if not pairs:
        raise SystemExit(f"--textures {args.textures}: no NAME.EXT + NAME_norm.EXT (or NAME_nm.EXT) pairs ({', '.join(COLOUR_EXTENSIONS)})")
    pipe = load_capture_pipeline(args.model)
    rows = [row for colour, normal in pairs if (row := score_texture(pipe, colour, normal, args)) is not None]
    if not rows:
        raise SystemExit(f"--textures {args.textures}: no pair of matching sizes of at least 64 px")
    checked = [r["xy_agreement"] for r in rows if r["xy_agreement"] is not None]
    summary = summarise(rows)
    result = {"model": str(args.model), "size": args.size, "luminance_strength": args.luminance_strength,
              "y_checked": len(checked), "y_flipped": sum(r["directx"] for r in rows),
              "depth_alpha": sum(x < 0 and y < 0 for x, y in checked),
              "agreement_median": [statistics.median(abs(a[c]) for a in checked) for c in (0, 1)] if checked else None,
              "summary": summary, "textures": rows}  # fmt: skip
    atomic_write_text(args.out, json.dumps(result, indent=1))
    print(table(summary))
    print(f"Y convention checked on {len(checked)} textures against their alpha height (median |agreement| X, Y: "
          f"{result['agreement_median']}): {result['y_flipped']} flipped as DirectX, {result['depth_alpha']} with a depth "
          "alpha")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
