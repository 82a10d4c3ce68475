"""What the pipelines return for each `output_type`: one mapping, used by the text/image pipeline and the capture
pipeline alike, so a material comes out the same way from both.

- "pil": `StableMaterialsMaterial`s whose maps are PIL images (the published pipeline's default and its helpers),
- "material": the project's `Material`s (float maps, metadata, save/render/export),
- "np": one (B, H, W, 9) array, "pt": one (B, 9, H, W) tensor, maps in [0, 1] as written to files (basecolor 0:3,
  normal encoded 0.5 n + 0.5 3:6, height 6, roughness 7, metallic 8).
"""

from __future__ import annotations

import torch

from .material import Material, encode_for_file, unpack_model_channels
from .published import StableMaterialsMaterial

MAP_OUTPUT_TYPES = ("pil", "material", "np", "pt")


def package_maps(model_maps: torch.Tensor, output_type: str, metadata: list[dict]):
    """Model-space maps (B, 9, H, W) in [-1, 1] -> the output `output_type` names; `metadata[b]` goes with item b."""
    if output_type not in MAP_OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {', '.join(MAP_OUTPUT_TYPES)}, got {output_type!r}")
    maps = unpack_model_channels(model_maps.float())  # [0, 1], normal in [-1, 1]
    if output_type in ("np", "pt"):
        stack = torch.cat([encode_for_file(name, values) for name, values in maps.items()], dim=1)
        return stack.cpu() if output_type == "pt" else stack.permute(0, 2, 3, 1).cpu().numpy()
    items = [{k: v[i] for k, v in maps.items()} for i in range(model_maps.shape[0])]
    if output_type == "pil":
        return [StableMaterialsMaterial.from_model_maps(m, "pil", meta) for m, meta in zip(items, metadata)]
    return [Material.from_tensors(m, meta) for m, meta in zip(items, metadata)]
