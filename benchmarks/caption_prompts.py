"""A prompt file of training-like captions, for `benchmarks.default_model_eval --prompts`: does the model make each
family when asked in its own captions' words? (The standard prompt file words them unlike any caption, so it mixes
the text encoder's generalisation with the UNet's knowledge of the families; this file takes the first out.)

    python -m benchmarks.caption_prompts --out runs/caption_prompts.jsonl [--per-family 4]
    python -m benchmarks.default_model_eval --prompts runs/caption_prompts.jsonl --seeds 1 --skip-vae --model v3=...

Captions of test-split procedural materials (seeds from 500000, never trained on), one per material, drawn as the
dataset draws them; colour, metal and gloss are not scored (the family alone is the question).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from stablematerials.io import atomic_write_text
from stablematerials.procedural import FAMILIES, get_family, sample_params
from stablematerials.procedural.dataset import Streams, split_of

FIRST_SEED = 500_000  # far from the UNet's training seeds (100000 + a few thousand) and the VAE's (0..1999)


def caption_rows(per_family: int) -> list[dict]:
    """`per_family` prompt rows per family: the captions of its first test-split materials from FIRST_SEED on."""
    rows = []
    for family in FAMILIES:
        seed = FIRST_SEED
        for k in range(per_family):
            while split_of(seed) != "test":
                seed += 1
            params = sample_params(family, Streams(seed, family)("params"))
            caption = get_family(family).caption(params, np.random.default_rng(seed))
            rows.append({"id": f"{family}_{k}", "prompt": caption, "family": family, "colour": None, "metal": None,
                         "gloss": None})  # fmt: skip
            seed += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the JSON-lines prompt file to write")
    p.add_argument("--per-family", type=int, default=4, help="captions per family")
    args = p.parse_args(argv)
    if args.per_family < 1:
        raise SystemExit(f"--per-family must be at least 1, got {args.per_family}")
    rows = caption_rows(args.per_family)
    atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} prompts to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
