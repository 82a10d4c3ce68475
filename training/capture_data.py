"""Synthetic photos with exact maps for the capture model: procedural materials, random views, lights and cameras.

Everything is a pure function of (run seed, step): a resumed run sees exactly the data it would have seen.

* `MaterialPool`: which procedural material an item of a step uses. A pool of `pool_size` slots, each refilled with
  a new material every `refresh_steps` steps (staggered), so a material is generated once and seen several times
  under different views and lights. Seeds come from the `train` split of `stablematerials.procedural.dataset`, so
  the benchmark's `test` seeds are never trained on.
* `sample_view`: a crop of a material at a random zoom, with a slight perspective (homography) and one of the 8
  turns/mirrors of the square (normals turned with it).
* `random_lighting` / `shade` / `develop`: 1-3 point or directional lights (or a flash), weak fill lights, a uniform
  environment, auto-exposure, white balance; then camera noise, blur and JPEG. `shade` is differentiable, so the
  training loss renders predicted maps under the photo's own light exactly as the photo was made.
* `real_batch_for_step`: the optional real stream, views of real textures with their artists' normal maps
  (`training/texture_pairs.py`) through the same camera.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from stablematerials.material import unpack_model_channels
from stablematerials.procedural import FAMILIES
from stablematerials.procedural.dataset import dataset_material, split_of
from stablematerials.render import (
    DEFAULT_CAMERA_DISTANCE,
    linear_to_srgb,
    render_plane,
    srgb_to_linear,
)

from .augment import dihedral
from .capture_config import CaptureDataConfig, PhotoConfig
from .texture_pairs import RealPairs, RealPhotos

HEADROOM = 8.0  # render_plane clips at 1: lights are rendered this much dimmer and scaled back in linear space
FAR = 30.0  # distance of "directional" lights (and fill lights): parallel within 2 degrees over the plane
N_KEY, N_FILL = 3, 3  # light slots; unused slots have zero intensity
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])


def training_families(cfg: CaptureDataConfig) -> list[str]:
    """The families a run trains on: `families` (or all), minus `exclude_families`; unknown names are a ValueError."""
    names = list(cfg.families) or list(FAMILIES)
    unknown = sorted(set(names + list(cfg.exclude_families)) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown material families {unknown}; expected some of {', '.join(FAMILIES)}")
    kept = [f for f in names if f not in set(cfg.exclude_families)]
    if not kept:
        raise ValueError("data.families minus data.exclude_families leaves no family to train on")
    return kept


def split_seed(rng: np.random.Generator, split: str) -> int:
    """A random material seed that `split_of` puts in `split` (the next one after a random start)."""
    seed = int(rng.integers(0, 2**31))
    while split_of(seed) != split:
        seed += 1
    return seed


class MaterialPool:
    """Materials (model space, (9, S, S)) for every (step, item), generated lazily and cached per slot."""

    def __init__(self, cfg: CaptureDataConfig, families: list[str], seed: int, split: str = "train") -> None:
        self.cfg, self.families, self.seed, self.split = cfg, families, seed, split
        self._slots: dict[int, tuple[int, torch.Tensor]] = {}

    def material_id(self, step: int, item: int) -> int:
        slot = int(np.random.default_rng([self.seed, 11, step, item]).integers(self.cfg.pool_size))
        generation = (step + slot * self.cfg.refresh_steps // self.cfg.pool_size) // self.cfg.refresh_steps
        return generation * self.cfg.pool_size + slot

    def describe(self, material_id: int) -> tuple[str, int]:
        """(family, seed) of a material id."""
        rng = np.random.default_rng([self.seed, 13, material_id])
        return self.families[int(rng.integers(len(self.families)))], split_seed(rng, self.split)

    def get(self, step: int, item: int) -> tuple[torch.Tensor, str]:
        mid = self.material_id(step, item)
        slot = mid % self.cfg.pool_size
        cached = self._slots.get(slot)
        if cached is None or cached[0] != mid:
            family, seed = self.describe(mid)
            tensor = dataset_material(family, seed, self.cfg.material_size).to_model_tensor()
            self._slots[slot] = (mid, tensor)
            cached = self._slots[slot]
        return cached[1], self.describe(mid)[0]


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map sending 4 points src (4, 2) to dst (4, 2) (direct linear transform)."""
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, np.float64))
    return (vt[-1] / vt[-1, -1]).reshape(3, 3)


def _sample_wrapped(texture: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a tileable (C, S, S) texture at pixel coordinates (H, W) that may leave [0, S)."""
    _, h, w = texture.shape
    padded = F.pad(texture[None], (1, 1, 1, 1), mode="circular")
    gx = 2.0 * (torch.remainder(px, w) + 1.0) / (w + 2) - 1.0
    gy = 2.0 * (torch.remainder(py, h) + 1.0) / (h + 2) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None].to(texture.dtype)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


def sample_view(material: torch.Tensor, cfg: CaptureDataConfig, rng: np.random.Generator, size: int | None = None) -> torch.Tensor:
    """A random view (9, size, size) of a tileable model-space material (9, S, S): zoom, keystone, turn, mirror."""
    size = size or cfg.crop_size
    scale = math.exp(rng.uniform(math.log(cfg.scale_min), math.log(cfg.scale_max)))
    texture = material
    while scale > 1.41 and texture.shape[-1] % 2 == 0 and texture.shape[-1] > size // 2:
        texture, scale = F.avg_pool2d(texture[None], 2)[0], scale / 2  # mip level: no aliasing of fine relief
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    jitter = rng.uniform(-cfg.perspective, cfg.perspective, (4, 2)) * size
    hom = _homography(corners, corners + jitter)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64) + 0.5, torch.arange(size, dtype=torch.float64) + 0.5, indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ torch.from_numpy(hom).T
    px, py = pts[..., 0] / pts[..., 2], pts[..., 1] / pts[..., 2]
    offset = rng.uniform(0, texture.shape[-1], 2)
    view = _sample_wrapped(texture, (px * scale + offset[0] - 0.5).float(), (py * scale + offset[1] - 0.5).float())
    return dihedral(view, int(rng.integers(4)), bool(rng.integers(2)))


@dataclass
class Lighting:
    """The light of a batch of photos. positions (B, L, 3) and intensity (B, L, 3) of point lights as render_plane
    takes them; ambient (B,) uniform environment radiance; gain (B, 3): exposure times white balance (linear)."""

    positions: torch.Tensor
    intensity: torch.Tensor
    ambient: torch.Tensor
    gain: torch.Tensor

    def to(self, device) -> Lighting:
        return Lighting(*(t.to(device) for t in (self.positions, self.intensity, self.ambient, self.gain)))


def _directions(rng: np.random.Generator, n: int, z_min: float) -> np.ndarray:
    """n unit vectors uniform on the spherical cap z >= z_min."""
    z = rng.uniform(z_min, 1.0, n)
    phi = rng.uniform(0, 2 * math.pi, n)
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)


def random_lighting(batch: int, cfg: PhotoConfig, rng: np.random.Generator) -> Lighting:
    """Key lights (point or directional, or a flash), fill lights and ambient for each photo; gain set later."""
    pos = np.zeros((batch, N_KEY + N_FILL, 3))
    inten = np.zeros((batch, N_KEY + N_FILL, 3))
    ambient = np.zeros(batch)
    for b in range(batch):
        n_key = int(rng.integers(1, cfg.max_key_lights + 1))
        dirs = _directions(rng, N_KEY + N_FILL, 0.26)  # at least 15 degrees above the surface
        for i in range(n_key):
            far = rng.random() < cfg.directional_share
            dist = FAR if far else math.exp(rng.uniform(math.log(1.2), math.log(5.0)))
            pos[b, i] = dirs[i] * dist
            irradiance = 1.0 if i == 0 else rng.uniform(0.2, 0.8)
            tint = rng.uniform(-cfg.light_tint, cfg.light_tint)
            inten[b, i] = irradiance * dist**2 * np.array([1 + tint, 1.0, 1 - tint])
        if rng.random() < cfg.flash_share:  # a flash beside the lens replaces the first key light
            pos[b, 0] = [rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), DEFAULT_CAMERA_DISTANCE]
            inten[b, 0] = DEFAULT_CAMERA_DISTANCE**2
        if rng.random() < cfg.fill_share:
            for i in range(N_KEY, N_KEY + N_FILL):
                pos[b, i] = dirs[i] * FAR
                inten[b, i] = rng.uniform(0.05, 0.3) * FAR**2
        ambient[b] = rng.uniform(0.0, cfg.ambient_max)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    return Lighting(t(pos), t(inten), t(ambient), torch.ones(batch, 3))


def shade(x: torch.Tensor, light: Lighting) -> torch.Tensor:
    """Linear radiance (B, 3, H, W) of model-space maps (B, 9, H, W) under `light`, times its gain. Differentiable."""
    maps = unpack_model_channels(x)
    direct = render_plane(maps, light.positions, light.intensity / HEADROOM, ambient=0.0)
    env = render_plane(maps, light.positions[:, :1], 0.0, ambient=1.0 / HEADROOM)  # linear in the ambient radiance
    radiance = (srgb_to_linear(direct) + light.ambient[:, None, None, None] * srgb_to_linear(env)) * HEADROOM
    return radiance * light.gain[:, :, None, None]


def auto_expose(radiance: torch.Tensor, light: Lighting, cfg: PhotoConfig, rng: np.random.Generator) -> Lighting:
    """Set each photo's gain: exposure to a random mean luminance, times a random white balance error."""
    luma = (radiance.detach() * _LUMA.to(radiance)[None, :, None, None]).sum(1).mean(dim=(1, 2))  # (B,)
    target = torch.tensor(rng.uniform(cfg.exposure_min, cfg.exposure_max, len(luma)), dtype=radiance.dtype)
    wb = torch.tensor(np.exp(rng.normal(0.0, cfg.white_balance, (len(luma), 3))), dtype=radiance.dtype)
    gain = (target / luma.clamp_min(1e-6))[:, None] * wb
    return Lighting(light.positions, light.intensity, light.ambient, light.gain * gain.to(light.gain))


def develop(radiance: torch.Tensor, cfg: PhotoConfig, rng: np.random.Generator) -> torch.Tensor:
    """Camera: noise on linear values, sRGB, slight blur, JPEG. (B, 3, H, W) linear -> sRGB in [0, 1]."""
    b = radiance.shape[0]
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    shot = torch.tensor(rng.uniform(0, cfg.noise, b), dtype=radiance.dtype)[:, None, None, None]
    read = torch.tensor(rng.uniform(0, cfg.noise / 2, b), dtype=radiance.dtype)[:, None, None, None]
    noise = torch.randn(radiance.shape, generator=gen, dtype=radiance.dtype)
    photo = linear_to_srgb(radiance + noise * (shot * radiance.clamp_min(0).sqrt() + read))
    out = []
    for i in range(b):
        img = photo[i]
        if rng.random() < cfg.blur_share:
            sigma = rng.uniform(0.3, 0.8)
            k = torch.exp(-0.5 * (torch.arange(-2, 3, dtype=img.dtype) / sigma) ** 2)
            k = k / k.sum()
            img = F.conv2d(F.pad(img[:, None], (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5))
            img = F.conv2d(F.pad(img, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1))[:, 0]
        if rng.random() < cfg.jpeg_share:
            img = jpeg(img, int(rng.integers(cfg.jpeg_quality_min, 96)))
        out.append(img)
    return torch.stack(out).clamp(0.0, 1.0)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """A (3, H, W) image in [0, 1] saved as JPEG at `quality` and read back."""
    arr = (img.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    return torch.from_numpy(back).permute(2, 0, 1)


def make_photos(targets: torch.Tensor, cfg: PhotoConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, Lighting]:
    """Photos of model-space maps (B, 9, H, W): (photos, clean photos without camera defects, lighting)."""
    light = random_lighting(targets.shape[0], cfg, rng)
    with torch.no_grad():
        radiance = shade(targets, light)
        light = auto_expose(radiance, light, cfg, rng)
        radiance = radiance * light.gain[:, :, None, None]
        clean = linear_to_srgb(radiance)
        photos = develop(radiance, cfg, rng)
    return photos, clean, light


def batch_for_step(pool: MaterialPool, data: CaptureDataConfig, photo: PhotoConfig, seed: int, step: int, batch: int,
                   offset: int = 0) -> dict:  # fmt: skip
    """The training batch of `step`: targets (B, 9, C, C), photos and clean photos (B, 3, C, C), lighting, families.

    `offset` selects this process's items when several processes share a step (item = offset + i)."""
    rng = np.random.default_rng([seed, 17, step, offset])
    views, families = [], []
    for i in range(batch):
        material, family = pool.get(step, offset + i)
        views.append(sample_view(material, data, rng))
        families.append(family)
    targets = torch.stack(views)
    photos, clean, light = make_photos(targets, photo, rng)
    return {"targets": targets, "photos": photos, "clean": clean, "light": light, "families": families}


def real_batch_for_step(source: RealPairs | RealPhotos, data: CaptureDataConfig, photo: PhotoConfig, seed: int, step: int,
                        batch: int, offset: int = 0, stream: int = 23) -> dict:  # fmt: skip
    """A real stream's batch of `step`: views of the source's items (texture pairs, or photos without maps), targets
    (B, 9, C, C) (their basecolor is the colour image; a pair's roughness and metallic, and every map of a photo,
    unknown), and photos (B, 3, C, C): the colour view under an exposure change of up to 1.5x either way, then the
    camera (`develop`). A function of (seed, stream, step, offset), like `batch_for_step`; each stream its own."""
    rng = np.random.default_rng([seed, stream, step, offset])
    views, misses = [], 0
    while len(views) < batch:
        material = source.get(int(rng.integers(len(source))))
        if material is None:
            misses += 1
            if misses > 100:
                raise ValueError(f"{source.name}: 100 items in a row were unusable (unreadable, sizes differ, under 64 px, or holes)")
            continue
        views.append(sample_view(material, data, rng))
    targets = torch.stack(views)
    colour = unpack_model_channels(targets)["basecolor"]
    gain = torch.tensor(np.exp(rng.uniform(-0.4, 0.4, (batch, 1, 1, 1))), dtype=colour.dtype)
    return {"targets": targets, "photos": develop(srgb_to_linear(colour) * gain, photo, rng)}
