"""Which network body learns material families fastest from scratch on this CPU (the choice of the image encoder).

    python -m benchmarks.image_encoder_bodies --cache runs/image_encoder_data resnet convnext levit cnn

Each body (about 2-3 M parameters, 128 px input) gets a linear 19-way family head and trains with cross-entropy
for `--steps` steps of 32 training pictures of a cached picture set (training/train_image_encoder.py writes one),
AdamW at `--lr`, one thread, the same batches for every body; printed: the training cross-entropy over the last 20
steps, the family accuracy on the held-out "like" pictures, and the seconds taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


from stablematerials.procedural import FAMILIES  # noqa: E402
from training.image_encoder_data import PictureSet  # noqa: E402
from training.train_image_encoder import augment, to_pixels  # noqa: E402


def body(kind: str):
    """(module, features(x) -> (B, C)) for a body name."""
    import transformers as tf

    if kind == "resnet":  # the image encoder's body
        m = tf.ResNetModel(tf.ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 2, 1],
                                           layer_type="basic", downsample_in_first_stage=False))  # fmt: skip
        return m, lambda x: m(pixel_values=x).pooler_output.flatten(1)
    if kind == "convnext":
        m = tf.ConvNextModel(tf.ConvNextConfig(hidden_sizes=[32, 64, 128, 384], depths=[2, 2, 3, 1]))
        return m, lambda x: m(pixel_values=x).pooler_output
    if kind == "convnextv2":
        m = tf.ConvNextV2Model(tf.ConvNextV2Config(hidden_sizes=[32, 64, 128, 384], depths=[2, 2, 3, 1]))
        return m, lambda x: m(pixel_values=x).pooler_output
    if kind == "levit":
        m = tf.LevitModel(tf.LevitConfig(image_size=128, hidden_sizes=[64, 128, 384], num_attention_heads=[2, 4, 6],
                                         depths=[2, 2, 2], key_dim=[16, 16, 16], mlp_ratio=[2, 2, 2],
                                         attention_ratio=[2, 2, 2]))  # fmt: skip
        return m, lambda x: m(pixel_values=x).pooler_output
    if kind == "cnn":  # plain conv-BN-ReLU stack, for reference
        def block(i: int, o: int, s: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        m = nn.Sequential(*block(3, 32, 2), *block(32, 32, 1), *block(32, 64, 2), *block(64, 64, 1),
                          *block(64, 128, 2), *block(128, 128, 1), *block(128, 384, 2))  # fmt: skip
        return m, lambda x: m(x).mean((2, 3))
    raise SystemExit(f"unknown body {kind!r}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bodies", nargs="+")
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--lr", type=float, default=2e-3)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = PictureSet.load(args.cache)
    names = list(FAMILIES)
    family = torch.tensor([names.index(data.items[i]["family"]) if data.items[i]["family"] in names else -1
                           for i in data.picture_item])  # fmt: skip
    train = np.array([i for i in data.where("train") if family[i] >= 0])
    held = data.where("eval_like")
    for kind in args.bodies:
        torch.manual_seed(0)
        model, features = body(kind)
        with torch.no_grad():
            width = features(torch.zeros(2, 3, 128, 128)).shape[1]
        head = nn.Linear(width, len(names))
        optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.05)
        model.train()
        start, losses = time.perf_counter(), []
        for step in range(args.steps):
            rng = np.random.default_rng(step)
            picks = np.sort(rng.choice(train, 32, replace=False))
            loss = F.cross_entropy(head(features(augment(to_pixels(data.pictures[picks]), rng))), family[picks])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            accuracy = (head(features(to_pixels(data.pictures[held]))).argmax(-1) == family[held]).float().mean()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{kind:>11} ({params:.2f} M): train cross-entropy {np.mean(losses[-20:]):.3f}, held-out family "
              f"accuracy {accuracy:.3f}, {time.perf_counter() - start:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
