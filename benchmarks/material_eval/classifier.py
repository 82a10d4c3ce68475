"""The family classifier: which procedural family a material's structure belongs to.

Input: six channels at 128 px: basecolor luma (colour is judged separately, by attributes.py, so the classifier sees
no hue), normal X and Y, height (standardised per view: models differ in relief depth), roughness and metallic
(they tell bare metal from stone and paint). A material is first brought to a 256 px source (wrapped, antialiased
resize); the prediction averages the softmax over five views of it: the whole material at 128 px and its four
quarters at full source resolution (fine weaves and grains, which the whole view blurs away).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from stablematerials.material import Material, resize_wrapped

SOURCE_SIZE = 256  # materials are stored and viewed from this size
INPUT_SIZE = 128  # the network's input
SOURCE_CHANNELS = 8  # R, G, B, normal X, Y (encoded 0.5 n + 0.5), height, roughness, metallic; uint8
INPUT_CHANNELS = 6  # luma, normal X, Y, height, roughness, metallic
LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709, as stablematerials.procedural.color.luminance
_HEIGHT_STD_FLOOR = 0.03  # a flat material's height noise is not amplified into relief


class FamilyNet(nn.Module):
    """A plain CNN: a stem, then per width a stride-2 conv and a conv (BatchNorm, ReLU); mean and max pooled."""

    def __init__(self, n_classes: int, widths: tuple[int, ...] = (32, 48, 96, 160, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv(INPUT_CHANNELS, widths[0], 1)]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [*_conv(w_in, w_out, 2), *_conv(w_out, w_out, 1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * widths[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 6, 128, 128) -> (B, n_classes) logits
        f = self.features(x)  # (B, C, 8, 8)
        return self.head(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def source_array(material: Material) -> np.ndarray:
    """A material as the classifier's stored source: (8, 256, 256) uint8 (see SOURCE_CHANNELS)."""
    m = material if material.size == (SOURCE_SIZE, SOURCE_SIZE) else material.resize(SOURCE_SIZE)
    stack = np.concatenate(
        [m.basecolor, m.normal[..., :2] * 0.5 + 0.5, m.height[..., None], m.roughness[..., None], m.metallic[..., None]],
        axis=-1,
    )  # (H, W, 8)
    return np.round(np.clip(stack, 0.0, 1.0) * 255).astype(np.uint8).transpose(2, 0, 1)


def to_input(x: torch.Tensor) -> torch.Tensor:
    """Source-space views (B, 8, h, w) in [0, 1] -> network input (B, 6, h, w)."""
    luma = (x[:, 0:3] * torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    normal = x[:, 3:5] * 2 - 1
    h = x[:, 5:6]
    h = (h - h.mean(dim=(2, 3), keepdim=True)) / (h.std(dim=(2, 3), keepdim=True) + _HEIGHT_STD_FLOOR)
    return torch.cat([luma - 0.5, normal, h, x[:, 6:7] - 0.5, x[:, 7:8] - 0.5], dim=1)


def eval_views(source: np.ndarray) -> torch.Tensor:
    """The five views of one source (8, 256, 256) uint8 as (5, 8, 128, 128) floats in [0, 1]."""
    x = torch.from_numpy(source).float()[None] / 255.0
    whole = resize_wrapped(x, (INPUT_SIZE, INPUT_SIZE))
    n = INPUT_SIZE
    quarters = [x[..., i : i + n, j : j + n] for i in (0, n) for j in (0, n)]
    return torch.cat([whole, *quarters])


@torch.no_grad()
def predict_proba(net: FamilyNet, sources: np.ndarray, batch: int = 16) -> np.ndarray:
    """Class probabilities (N, n_classes) of sources (N, 8, 256, 256) uint8: the mean softmax over eval_views."""
    net.eval()
    out = []
    for start in range(0, len(sources), batch):
        chunk = sources[start : start + batch]
        views = torch.cat([eval_views(s) for s in chunk])  # (b * 5, 8, 128, 128)
        probs = F.softmax(net(to_input(views)), dim=1).view(len(chunk), 5, -1).mean(dim=1)
        out.append(probs.numpy())
    return np.concatenate(out)
