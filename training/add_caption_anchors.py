"""Give a pipeline folder caption anchors: its training captions' embeddings, which text prompts are pulled toward.

    python -m training.add_caption_anchors --latents runs/v3/latents --model assets/default-model

The captions are those of the UNet's training set: the `records` of the latent cache's shards
(`training/encode_latents.py`). They are encoded with the model's own text encoder, `--count` of them are kept (a
seeded random choice: the bank's size in the model folder, 4096 x 384 float16 = 3 MB), and written to
`caption_anchors/anchors.safetensors`; model_index.json gets `anchor_weight`, `anchor_neighbours` and
`image_anchor_weight` (`--image-weight`: image prompts are pulled too; `stablematerials/anchors.py`). The folder is
then loaded and a prompt encoded once as a check.

Why 0.5 and 8 (session 13, shipped v3 teacher at 8 steps, 74 prompts x 2 seeds at 512 px, all 17881 captions,
8013 distinct, as anchors): family right 51 % without anchors, 60 % at weight 1 and at 0.5; colour words 49 %, 49 %
and 52 %; gloss words 96 %, 91 % and 96 %. With the 4096 this command keeps, at 0.5: family 68 %, colour 47 %, gloss 96 %.
The default model also pulls image prompts half way (`--image-weight 0.5`, session 14): family 27 -> 39 % on 95
held-out renders (benchmarks/results/image_prompt.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from stablematerials.anchors import DEFAULT_NEIGHBOURS, check_anchor_settings, save_anchors
from stablematerials.io import atomic_write_text

logger = logging.getLogger("training.add_caption_anchors")
ENCODE_BATCH = 256  # captions per text-encoder call: short sentences, a few MB of activations


def cache_captions(latents: Path) -> list[str]:
    """Every caption of every material in the cache's shards, in shard order (duplicates dropped)."""
    from safetensors import safe_open

    shards = sorted(latents.glob("shard_*.safetensors"))
    if not shards:
        raise ValueError(f"--latents {latents}: no shard_*.safetensors (a cache written by training.encode_latents)")
    captions: dict[str, None] = {}
    for shard in shards:
        with safe_open(str(shard), "pt") as f:
            records = json.loads((f.metadata() or {}).get("records", "[]"))
        for record in records:
            captions.update(dict.fromkeys(c for c in record.get("captions", []) if c.strip()))
    if not captions:
        raise ValueError(f"--latents {latents}: its shards name no captions")
    return list(captions)


def caption_attributes(latents: Path, captions: list[str], families: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each caption's family index (N,) and the model-space mean basecolor (N, 3) of the cached materials it
    describes (averaged when several share it), for a UNet that takes attributes (`stablematerials.attributes`)."""
    from safetensors import safe_open

    from stablematerials.color_latents import COLOR_SCALE

    found: dict[str, tuple[str, torch.Tensor, int]] = {}
    for shard in sorted(latents.glob("shard_*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            if "color" not in f.keys():
                raise ValueError(f"--latents {latents}: {shard.name} holds no colour latents, which attributes need")
            records = json.loads((f.metadata() or {}).get("records", "[]"))
            means = f.get_tensor("color").float().mean(dim=(2, 3)) / COLOR_SCALE  # (n, 3) model space
        for record, mean in zip(records, means):
            for caption in record.get("captions", []):
                family, total, count = found.get(caption, (record["family"], torch.zeros(3), 0))
                found[caption] = (family, total + mean, count + 1)
    unknown = sorted({found[c][0] for c in captions} - set(families))
    if unknown:
        raise ValueError(f"--latents {latents}: families {unknown} are not among the model's attribute families")
    index = torch.tensor([families.index(found[c][0]) for c in captions])
    colors = torch.stack([found[c][1] / found[c][2] for c in captions])
    return index, colors


def add_caption_anchors(model: Path, latents: Path, count: int, weight: float, neighbours: int,
                        image_weight: float | None = None, seed: int = 0) -> int:  # fmt: skip
    """Encode, choose and write the anchors into `model`; returns how many it holds."""
    from stablematerials.conditioning import encode_text, is_sentence_encoder
    from stablematerials.loading import load_pipeline

    check_anchor_settings(weight, neighbours)
    check_anchor_settings(image_weight, neighbours, name="image_anchor_weight")
    if count < 1:
        raise ValueError(f"--count must be positive, got {count}")
    pipe = load_pipeline(model, device="cpu")
    if not is_sentence_encoder(pipe.text_encoder):
        raise ValueError(f"{model} has a CLIP-style text encoder; caption anchors are for sentence-encoder models")
    captions = cache_captions(latents)
    chosen = torch.randperm(len(captions), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    texts = [captions[i] for i in chosen.tolist()]
    logger.info("encoding %d of %d captions", len(texts), len(captions))
    device = torch.device("cpu")
    anchors = torch.cat([encode_text(pipe.text_encoder, pipe.tokenizer, texts[i : i + ENCODE_BATCH], device)
                         for i in range(0, len(texts), ENCODE_BATCH)])  # fmt: skip
    attributes = ()
    if pipe.config.get("attribute_families"):
        attributes = caption_attributes(latents, texts, list(pipe.config.attribute_families))
    pipe.set_caption_anchors(anchors, *attributes)  # checks the width against the UNet's
    save_anchors(anchors, model, *attributes)
    index_path = model / "model_index.json"
    index = json.loads(index_path.read_text())
    index.update(anchor_weight=float(weight), anchor_neighbours=int(neighbours),
                 image_anchor_weight=None if image_weight is None else float(image_weight))  # fmt: skip
    atomic_write_text(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")
    return len(texts)


def check(model: Path) -> str:
    """Load the folder again and encode a prompt with and without its anchors: a one-line summary."""
    from stablematerials.loading import load_pipeline

    pipe = load_pipeline(model, device="cpu")
    if pipe.caption_anchors is None:
        raise ValueError(f"{model}: the anchors did not load")
    prompt = ["glossy white bathroom wall tiles"]
    with_anchors, _ = pipe.encode_prompt(prompt, torch.device("cpu"), 1, False)  # (1, 1, D)
    pipe.set_caption_anchors(None)
    plain, _ = pipe.encode_prompt(prompt, torch.device("cpu"), 1, False)
    cosine = torch.nn.functional.cosine_similarity(with_anchors[:, 0], plain[:, 0]).item()
    return f"a prompt's embedding moves to cosine {cosine:.3f} of its own"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="the pipeline folder to change (in place)")
    p.add_argument("--latents", type=Path, required=True, help="the latent cache the model's UNet trained on")
    p.add_argument("--count", type=int, default=4096, help="anchors to keep (default 4096)")
    p.add_argument("--weight", type=float, default=0.5, help="how far prompts move toward their anchors (default 0.5)")
    p.add_argument("--image-weight", type=float, default=None,
                   help="how far image prompts move toward the anchors (default: not at all)")
    p.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS, help="anchors averaged per prompt (default 8)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not (args.model / "model_index.json").is_file():
        print(f"add_caption_anchors: --model {args.model} is not a pipeline folder (no model_index.json)", file=sys.stderr)
        return 2
    try:
        n = add_caption_anchors(args.model, args.latents, args.count, args.weight, args.neighbours, args.image_weight)
    except ValueError as e:
        print(f"add_caption_anchors: {e}", file=sys.stderr)
        return 2
    logger.info("%s: %d caption anchors, weight %g, %d neighbours; %s", args.model, n, args.weight, args.neighbours,
                check(args.model))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
