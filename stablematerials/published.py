"""The material object of the published StableMaterials pipeline, for code written against it.

`pipe(prompt).images[0]` with the published default `output_type="pil"` gives one of these: `.basecolor`,
`.normal`, `.height`, `.roughness`, `.metallic` are PIL images (RGB, RGB, L, L, L) and the helpers behave as
published: `size` is [height, width], `tile(n)` and `resize(size)` change the object in place and return it,
`as_dict()` / `as_list()` give the five maps, `as_tensor()` the (8, H, W) tensor in [0, 1] (basecolor, normal X and
Y, height, roughness, metallic). `to_material()` turns it into the project's richer `Material`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .maps import MAP_NAMES, MAPS, MODEL_SLICES
from .material import Material


class _MapView:
    """A map of a `StableMaterialsMaterial`, shown as its mode says (PIL image, array or tensor); read-only."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, material: "StableMaterialsMaterial | None", owner: type | None = None) -> Any:
        return self if material is None else material._show(self.name)


class StableMaterialsMaterial:
    """Five maps as (C, H, W) float tensors in [0, 1] (the normal encoded as 0.5 n + 0.5), shown as PIL images
    (`mode="pil"`), numpy arrays (`"np"`) or the tensors themselves (`"pt"`)."""

    def __init__(self, maps: dict[str, torch.Tensor], mode: str = "pil", metadata: dict | None = None) -> None:
        if mode not in ("pil", "np", "pt"):
            raise ValueError(f"mode must be 'pil', 'np' or 'pt', got {mode!r}")
        missing = [name for name in MAP_NAMES if name not in maps]
        if missing:
            raise ValueError(f"missing maps: {', '.join(missing)}")
        self._maps = {name: maps[name].detach().float().cpu() for name in MAP_NAMES}
        self._mode = mode
        self.metadata = dict(metadata or {})

    @classmethod
    def from_model_maps(cls, maps: dict[str, torch.Tensor], mode: str = "pil", metadata: dict | None = None):
        """From one item of `unpack_model_channels` (normal as unit vectors in [-1, 1])."""
        encoded = dict(maps) | {"normal": (maps["normal"] * 0.5 + 0.5).clamp(0.0, 1.0)}
        return cls(encoded, mode, metadata)

    def _show(self, name: str) -> Any:
        tensor = self._maps[name]
        if self._mode == "pt":
            return tensor
        if self._mode == "np":
            return tensor.numpy()
        from PIL import Image

        pixels = torch.round(tensor.clamp(0.0, 1.0) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        mode = MAPS[name].pil_mode
        return Image.fromarray(pixels if mode == "RGB" else pixels[..., 0], mode)

    basecolor = _MapView()
    normal = _MapView()
    height = _MapView()
    roughness = _MapView()
    metallic = _MapView()

    @property
    def size(self) -> list[int]:
        """[height, width] in pixels (a list, as published)."""
        return list(self._maps["basecolor"].shape[-2:])

    def as_dict(self) -> dict[str, Any]:
        return {name: self._show(name) for name in MAP_NAMES}

    def as_list(self) -> list[Any]:
        return [self._show(name) for name in MAP_NAMES]

    def as_tensor(self) -> torch.Tensor:
        """(8, H, W) in [0, 1]: basecolor, normal X and Y (encoded), height, roughness, metallic."""
        return torch.cat([self._maps[name][: sl.stop - sl.start] for name, sl in MODEL_SLICES.items()], dim=0)

    def tile(self, num_tiles: int) -> "StableMaterialsMaterial":
        """Repeat every map `num_tiles` times along each axis, in place."""
        self._maps = {name: t.repeat(1, num_tiles, num_tiles) for name, t in self._maps.items()}
        return self

    def resize(self, size: int | tuple[int, int] | list[int], antialias: bool = True) -> "StableMaterialsMaterial":
        """Bilinear resize in place, as torchvision's `resize`: an int sets the shorter side (keeping the aspect
        ratio), a pair sets (height, width). For a resize that filters across the wrap, use `to_material().resize`."""
        h, w = self.size
        if isinstance(size, int):
            short, long = (h, w) if h <= w else (w, h)
            other = int(size * long / short)
            th, tw = (size, other) if h <= w else (other, size)
        else:
            th, tw = int(size[0]), int(size[1])
        if th < 1 or tw < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        self._maps = {
            name: F.interpolate(t[None], size=(th, tw), mode="bilinear", antialias=antialias, align_corners=False)[0]
            for name, t in self._maps.items()
        }
        return self

    def to_material(self) -> Material:
        """The project's `Material` (float maps, normal as unit vectors, metadata kept)."""
        maps = dict(self._maps) | {"normal": self._maps["normal"] * 2 - 1}
        return Material.from_tensors(maps, self.metadata)

    def __repr__(self) -> str:
        h, w = self.size
        return f"StableMaterialsMaterial({w}x{h}, mode={self._mode!r})"
