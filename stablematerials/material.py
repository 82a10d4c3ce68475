"""The `Material`: five PBR maps, and their packing to and from the model's channel layout.

The maps, their channels and their place in model space are the table `stablematerials.maps.MAPS`. Model space
holds the normal's X and Y only: Z is rebuilt as sqrt(1 - x^2 - y^2), and where x^2 + y^2 > 1 the X, Y pair is
renormalised and Z set to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

# MAP_NAMES, MODEL_CHANNELS and MODEL_SLICES are imported from here too (training, tiny pipelines, capture)
from .maps import MAP_NAMES, MAPS, MODEL_CHANNELS, MODEL_SLICES, UNUSED_SLICE, map_spec  # noqa: F401

if TYPE_CHECKING:
    from PIL import Image


# ----------------------------------------------------------------------------------------------
# Pure tensor functions (batched, used by the pipeline, the renderer and training)
# ----------------------------------------------------------------------------------------------


def rebuild_normal(xy: torch.Tensor) -> torch.Tensor:
    """Unit normals from their X, Y components: (B, 2, H, W) -> (B, 3, H, W). Inside the unit disk
    Z = sqrt(1 - x^2 - y^2); outside it (x^2 + y^2 > 1) X, Y are divided by their length and Z is 0."""
    sum_sq = (xy * xy).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    outside = sum_sq > 1.0
    scale = torch.where(outside, sum_sq.clamp_min(1e-12).rsqrt(), torch.ones_like(sum_sq))
    xy = xy * scale
    z_sq = torch.where(outside, torch.zeros_like(sum_sq), 1.0 - sum_sq).clamp_min(0.0)
    # sqrt has an infinite slope at 0: taking it only where z_sq > 0 keeps gradients finite (no 0 * inf = NaN
    # when a training loss renders decoded normals that leave the unit disk).
    z = torch.where(z_sq > 0, z_sq.clamp_min(torch.finfo(z_sq.dtype).tiny).sqrt(), torch.zeros_like(z_sq))
    return torch.cat([xy, z], dim=1)


def unpack_model_channels(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Model space (B, 9, H, W) in [-1, 1] -> maps in [0, 1] (normal: unit vectors in [-1, 1])."""
    if x.ndim != 4 or x.shape[1] < UNUSED_SLICE.start:
        raise ValueError(f"expected a (B, 9, H, W) tensor in model layout, got shape {tuple(x.shape)}")
    x = x.float()
    maps = {}
    for name, sl in MODEL_SLICES.items():
        if MAPS[name].encoding == "normal":
            # The decoded X, Y as they are, not clamped first: clamping each to [-1, 1] turns the direction of a
            # normal that left the unit disk; rebuild_normal keeps its direction and scales it back to length 1
            # (as published).
            maps[name] = rebuild_normal(x[:, sl])
        else:
            maps[name] = (x[:, sl] * 0.5 + 0.5).clamp(0.0, 1.0)
    return maps


def pack_model_channels(maps: dict[str, torch.Tensor]) -> torch.Tensor:
    """Maps (B, C, H, W) in [0, 1] (normal in [-1, 1]) -> model space (B, 9, H, W) in [-1, 1]."""
    parts = []
    for name, sl in MODEL_SLICES.items():
        if MAPS[name].encoding == "normal":
            parts.append(maps[name][:, 0 : sl.stop - sl.start].clamp(-1.0, 1.0))  # X, Y
        else:
            parts.append(maps[name] * 2 - 1)
    ref = maps[MAP_NAMES[0]]
    unused = ref.new_zeros(ref.shape[0], UNUSED_SLICE.stop - UNUSED_SLICE.start, *ref.shape[2:])
    return torch.cat([*parts, unused], dim=1)


def encode_for_file(name: str, values: torch.Tensor) -> torch.Tensor:
    """A map as image files store it, in [0, 1]: normals as 0.5 n + 0.5, the others as they are."""
    return values * 0.5 + 0.5 if MAPS[name].encoding == "normal" else values


def normal_from_height(height: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """OpenGL normals (+Y up) from a wrapped height field: (B, 1, H, W) in [0, 1] -> (B, 3, H, W).

    `strength` is the height range measured in texels of the map's width / 256 units, so that the same
    material gives the same look at any resolution. Central differences wrap around (tileable maps).
    """
    h = height * strength * height.shape[-1] / 256.0
    dx = (torch.roll(h, -1, dims=-1) - torch.roll(h, 1, dims=-1)) * 0.5
    # Image rows grow downwards; OpenGL's +Y points up the texture, so dh/dv = -(row derivative).
    dy = (torch.roll(h, 1, dims=-2) - torch.roll(h, -1, dims=-2)) * 0.5
    inv_len = torch.rsqrt(dx * dx + dy * dy + 1.0)  # 1 / |(-dx, -dy, 1)|; 10x faster than a norm over dim 1
    return torch.cat([-dx * inv_len, -dy * inv_len, inv_len], dim=1)


def flip_normal_convention(normal: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """OpenGL <-> DirectX: negate the green (Y) component. Works for (..., 3) arrays and (B, 3, H, W) tensors."""
    if isinstance(normal, torch.Tensor):
        out = normal.clone()
        out[:, 1] = -out[:, 1]
        return out
    out = np.array(normal, dtype=np.float32, copy=True)
    out[..., 1] = -out[..., 1]
    return out


def _gcd_pad(n_in: int, n_out: int, minimum: int) -> int:
    """Smallest wrap margin (in input pixels) that maps to a whole number of output pixels."""
    step = n_in // math.gcd(n_in, n_out)
    return min(n_in, step * max(1, math.ceil(minimum / step)))


def resize_wrapped(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a tileable (B, C, H, W) tensor to `size` with antialiasing, filtering across the wrap."""
    (h, w), (th, tw) = x.shape[-2:], size
    ph, pw = _gcd_pad(h, th, 4), _gcd_pad(w, tw, 4)  # margins that map to whole output pixels
    padded = F.pad(x, (pw, pw, ph, ph), mode="circular")
    oh, ow = ph * th // h, pw * tw // w
    big = F.interpolate(
        padded, size=(th + 2 * oh, tw + 2 * ow), mode="bilinear", antialias=th < h or tw < w, align_corners=False
    )
    return big[..., oh : oh + th, ow : ow + tw]


# ----------------------------------------------------------------------------------------------
# The Material
# ----------------------------------------------------------------------------------------------


def _as_map(name: str, value: object, size: tuple[int, int] | None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    channels = MAPS[name].channels
    if channels == 1 and arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    want_ndim = 2 if channels == 1 else 3
    if arr.ndim != want_ndim or (channels == 3 and arr.shape[-1] != 3):
        want = "(H, W)" if channels == 1 else "(H, W, 3)"
        raise ValueError(f"{name} map must have shape {want}, got {arr.shape}")
    if size is not None and arr.shape[:2] != size:
        raise ValueError(f"{name} map is {arr.shape[1]}x{arr.shape[0]} but {MAP_NAMES[0]} is {size[1]}x{size[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} map contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def _unit_vectors(normal: np.ndarray) -> np.ndarray:
    """(H, W, 3) normals scaled to length 1; a zero vector becomes (0, 0, 1)."""
    norm = np.linalg.norm(normal, axis=-1, keepdims=True)
    return np.where(norm > 1e-6, normal / np.maximum(norm, 1e-6), np.float32([0, 0, 1])).astype(np.float32)


@dataclass
class Material:
    """A PBR material: five float32 maps of the same size (one attribute per entry of `stablematerials.maps.MAPS`).

    basecolor (H, W, 3) sRGB in [0, 1]; normal (H, W, 3) unit vectors in [-1, 1], OpenGL convention (+Y up);
    height, roughness, metallic (H, W) in [0, 1]. `metadata` carries provenance (prompt, seed, model, ...).
    """

    basecolor: np.ndarray
    normal: np.ndarray
    height: np.ndarray
    roughness: np.ndarray
    metallic: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        size = None  # that of the first map (basecolor); the others must match it
        for name, spec in MAPS.items():
            arr = _as_map(name, getattr(self, name), size)
            size = size or arr.shape[:2]
            setattr(self, name, _unit_vectors(arr) if spec.encoding == "normal" else np.clip(arr, 0.0, 1.0))

    # -- shape ---------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.basecolor.shape[0], self.basecolor.shape[1]

    def maps(self) -> dict[str, np.ndarray]:
        """The five maps by name."""
        return {name: getattr(self, name) for name in MAP_NAMES}

    # -- torch ---------------------------------------------------------------------------------
    def to_tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Maps as (1, C, H, W) float32 tensors (normal in [-1, 1])."""
        out = {}
        for name, arr in self.maps().items():
            t = torch.from_numpy(arr)
            t = t.unsqueeze(-1) if t.ndim == 2 else t
            out[name] = t.permute(2, 0, 1).unsqueeze(0).contiguous().to(device)
        return out

    @classmethod
    def from_tensors(cls, maps: dict[str, torch.Tensor], metadata: dict | None = None) -> "Material":
        """From (1, C, H, W) or (C, H, W) tensors as given by `to_tensors` / `unpack_model_channels`."""
        arrays = {}
        for name in MAP_NAMES:
            t = maps[name].detach().float().cpu()
            t = t[0] if t.ndim == 4 else t
            arr = t.permute(1, 2, 0).numpy()
            arrays[name] = arr[..., 0] if arr.shape[-1] == 1 else arr
        return cls(**arrays, metadata=dict(metadata or {}))

    def to_model_tensor(self) -> torch.Tensor:
        """The material in model space: (9, H, W) float32 in [-1, 1]."""
        return pack_model_channels(self.to_tensors())[0]

    @classmethod
    def from_model_tensor(cls, x: torch.Tensor, metadata: dict | None = None) -> "Material":
        """From model space (9, H, W) or (1, 9, H, W) in [-1, 1]."""
        x = x.unsqueeze(0) if x.ndim == 3 else x
        return cls.from_tensors(unpack_model_channels(x), metadata)

    # -- numpy / PIL ---------------------------------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """All maps in one (H, W, 9) array in [0, 1], in `MAP_NAMES` order: basecolor, normal (encoded 0.5 n + 0.5),
        height, roughness, metallic."""
        encoded = (encode_for_file(name, arr) for name, arr in self.maps().items())
        return np.concatenate([arr[..., None] if arr.ndim == 2 else arr for arr in encoded], axis=-1)

    def encoded(self, name: str, normal_convention: str = "opengl") -> np.ndarray:
        """One map as stored in an image file, in [0, 1]: the normal is encoded as 0.5 n + 0.5."""
        if map_spec(name).encoding != "normal":
            return getattr(self, name)
        if normal_convention not in ("opengl", "directx"):
            raise ValueError(f"normal_convention must be 'opengl' or 'directx', got {normal_convention!r}")
        n = getattr(self, name) if normal_convention == "opengl" else flip_normal_convention(getattr(self, name))
        return np.clip(n * 0.5 + 0.5, 0.0, 1.0)

    def to_pil(self, normal_convention: str = "opengl") -> dict[str, "Image.Image"]:
        """The maps as 8-bit PIL images (RGB for basecolor and normal, L for the others)."""
        from PIL import Image

        return {
            name: Image.fromarray(np.round(self.encoded(name, normal_convention) * 255).astype(np.uint8))
            for name in MAP_NAMES
        }

    # -- edits (each returns a new Material) ----------------------------------------------------
    def _map_tensors(self, fn) -> "Material":
        tensors = {name: fn(t) for name, t in self.to_tensors().items()}
        return Material.from_tensors(tensors, self.metadata)

    def tile(self, n: int | tuple[int, int]) -> "Material":
        """Repeat the material n times along each axis (or (rows, cols) times)."""
        rows, cols = (n, n) if isinstance(n, int) else n
        if rows < 1 or cols < 1:
            raise ValueError(f"tile counts must be >= 1, got {n!r}")
        return Material(
            **{k: np.tile(v, (rows, cols, 1) if v.ndim == 3 else (rows, cols)) for k, v in self.maps().items()},
            metadata=dict(self.metadata),
        )

    def roll(self, dy: int, dx: int) -> "Material":
        """Shift the material by (dy, dx) pixels with wrap-around (a tileable material stays seamless)."""
        return Material(
            **{k: np.roll(v, (dy, dx), axis=(0, 1)) for k, v in self.maps().items()}, metadata=dict(self.metadata)
        )

    def crop(self, top: int, left: int, height: int, width: int) -> "Material":
        """A rectangular crop."""
        h, w = self.size
        if height < 1 or width < 1 or top < 0 or left < 0 or top + height > h or left + width > w:
            raise ValueError(f"crop ({top}, {left}, {height}, {width}) is outside the {w}x{h} material")
        return Material(
            **{k: v[top : top + height, left : left + width] for k, v in self.maps().items()},
            metadata=dict(self.metadata),
        )

    def resize(self, size: int | tuple[int, int], wrap: bool = True) -> "Material":
        """Resize to `size` (an int for square, or (height, width)). `wrap` filters across the edges (tileable maps).

        The normal map is renormalised after filtering; the result is a new Material.
        """
        th, tw = (size, size) if isinstance(size, int) else size
        if th < 1 or tw < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        if (th, tw) == self.size:
            return Material(**self.maps(), metadata=dict(self.metadata))

        def fn(t: torch.Tensor) -> torch.Tensor:
            if wrap:
                return resize_wrapped(t, (th, tw))
            return F.interpolate(t, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)

        return self._map_tensors(fn)

    def with_normal_from_height(self, strength: float = 1.0) -> "Material":
        """A copy whose normal map is derived from its height map (OpenGL convention)."""
        h = torch.from_numpy(self.height)[None, None]
        n = normal_from_height(h, strength)[0].permute(1, 2, 0).numpy()
        maps = self.maps() | {"normal": n}
        return Material(**maps, metadata=dict(self.metadata))

    def __repr__(self) -> str:
        h, w = self.size
        return f"Material({w}x{h}, metadata keys={sorted(self.metadata)})"
