"""`StableMaterialsCapturePipeline`: a photo of a surface -> its own PBR maps (basecolor with the light taken out,
normal, height, roughness, metallic), aligned with the photo and, by default, tileable.

The model is a one-step predictor: a diffusers `UNet2DModel` (no attention, so it runs at any size) that maps the
photo to the 9 model-space channels of `stablematerials.material`. Its input and output are pixel-unshuffled by
`patch_size` (Shi et al. 2016, arXiv 1609.05158): 2 turns a 512 px photo into a 256 px, 12-channel input, which
quarters the cost of the full-resolution level, and the 36 output channels are shuffled back to 9 at full size.

Tileable output (`tileable=True`, the default): the photo is first made tileable by joining its opposite borders
along a minimum-error cut (`stablematerials.seamless`), which changes only a band of about `overlap` of each side;
the network then runs with circular padding (`stablematerials.tiling`), so every map wraps exactly. The maps show the
part of the photo given in `metadata["photo_crop"]`, resampled to the output size. `tileable=False` keeps the photo's
exact framing: the maps align with the photo pixel for pixel and do not wrap.

Outputs above `tile_size` per side are predicted in overlapping tiles blended with linear ramps (wrapping around the
edges when tileable), so memory stays bounded and no tile border shows.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, UNet2DModel
from diffusers.utils import BaseOutput

from .components import load_component
from .maps import MODEL_CHANNELS
from .material import resize_wrapped
from .outputs import MAP_OUTPUT_TYPES, package_maps
from .pictures import PictureLike, read_picture
from .seamless import make_tileable
from .tiling import TilingState, enable_feature_rolling, tiling

logger = logging.getLogger(__name__)

PhotoLike = PictureLike
MIN_PHOTO_SIDE = 24  # smaller photos hold too little surface to read maps from (and cannot be made tileable)


@dataclass
class StableMaterialsCaptureOutput(BaseOutput):
    """`images`: one item per photo (their sizes may differ), as `output_type` asks (`stablematerials.outputs`): a
    `Material`, a `StableMaterialsMaterial` with PIL maps ("pil"), an (H, W, 9) array ("np") or a (9, H, W) tensor
    ("pt") with maps in [0, 1] (normal encoded 0.5 n + 0.5)."""

    images: Any


# ----------------------------------------------------------------------------------------------
# Photos
# ----------------------------------------------------------------------------------------------


def load_photo(photo: PhotoLike) -> torch.Tensor:
    """A photo as a (3, H, W) float32 tensor of sRGB values in [0, 1], or one clear ValueError: any picture
    `stablematerials.pictures.read_picture` reads (EXIF turn applied, 16-bit kept, transparency on grey), at its full
    size, at least MIN_PHOTO_SIDE pixels per side."""
    rgb = read_picture(photo, "photo")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_PHOTO_SIDE:
        raise ValueError(f"photo is {w}x{h} pixels; it needs at least {MIN_PHOTO_SIDE} per side")
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def output_size(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """The photo's size, scaled down (keeping the aspect) so that neither side exceeds `max_size` (None: no limit)."""
    if max_size is None or max(height, width) <= max_size:
        return height, width
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _ramp(n: int, margin: int, device, dtype) -> torch.Tensor:
    """Blending weights along one tile side: rising linearly over `margin` pixels at both ends, never zero; all ones
    when `margin` is 0."""
    if margin <= 0:
        return torch.ones(n, device=device, dtype=dtype)
    i = torch.arange(n, device=device, dtype=dtype)
    edge = torch.minimum(i + 0.5, n - i - 0.5)
    return (edge / margin).clamp(1e-3, 1.0)


def tile_plan(n: int, tile: int, overlap: int, wrap: bool) -> tuple[int, list[int], int]:
    """How to cover n pixels with tiles: (tile length, start positions, blending margin).

    Without wrap the tiles stay inside [0, n) and share at least `overlap` pixels; with wrap they go around a circle
    of n pixels (a single tile then reaches `overlap` past its own start, so the wrap is blended like any other join).
    """
    if not wrap:
        if n <= tile:
            return n, [0], 0
        count = math.ceil((n - overlap) / (tile - overlap))
        return tile, [round(k * (n - tile) / (count - 1)) for k in range(count)], overlap
    if n + overlap <= tile:
        return n + overlap, [n - overlap // 2], overlap
    count = math.ceil(n / (tile - overlap))
    return tile, [round(k * n / count) for k in range(count)], overlap


def run_predictor(unet: torch.nn.Module, photos: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The capture network on photos (B, 3, H, W) in [0, 1] -> model-space maps (B, 9, H, W), unclamped.

    The photo is mapped to [-1, 1] and pixel-unshuffled by `patch_size`; the UNet's timestep input is unused (0).
    H and W must be multiples of patch_size * 2 ** (levels - 1). Shared by the pipeline and training.

    The basecolor is the photo's colour plus the network's correction (the light taken out), not a colour made from
    scratch: the photo's colour is the best first guess of the albedo, and a GroupNorm network carries absolute
    colour poorly (the default model v3's VAE decoded a flat blue as brown; training/README.md). The network's
    first three output channels are that correction; the other six are the maps themselves.
    """
    photo = photos * 2.0 - 1.0  # (B, 3, H, W) in model space
    inp = F.pixel_unshuffle(photo, patch_size) if patch_size > 1 else photo
    timestep = torch.zeros(inp.shape[0], device=inp.device, dtype=inp.dtype)
    out = unet(inp.to(next(unet.parameters()).dtype), timestep).sample
    out = F.pixel_shuffle(out, patch_size) if patch_size > 1 else out
    return torch.cat([photo.to(out.dtype) + out[:, 0:3], out[:, 3:]], dim=1)


def build_predictor(
    block_out_channels=(32, 64, 128, 128), layers_per_block: int = 1, patch_size: int = 2, mid_block: bool = True,
    norm_num_groups: int = 8,
) -> UNet2DModel:  # fmt: skip
    """A fresh capture UNet: convolutions only (no attention: any size, exact circular padding)."""
    n = len(block_out_channels)
    return UNet2DModel(
        in_channels=3 * patch_size**2,
        out_channels=MODEL_CHANNELS * patch_size**2,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        mid_block_type="UNetMidBlock2D" if mid_block else None,
        add_attention=False,
        norm_num_groups=norm_num_groups,
    )


# ----------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------


class StableMaterialsCapturePipeline(DiffusionPipeline):
    """Photo -> its own PBR `Material` (one network evaluation; see the module docstring).

    Components: `unet`, a `UNet2DModel` with 3 * patch_size**2 input and 9 * patch_size**2 output channels.
    `patch_size` is saved in model_index.json.
    """

    _optional_components: ClassVar[list[str]] = []

    def __init__(self, unet: UNet2DModel, patch_size: int = 2) -> None:
        super().__init__()
        if not (isinstance(patch_size, int) and not isinstance(patch_size, bool) and patch_size >= 1):
            raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")
        want_in, want_out = 3 * patch_size**2, MODEL_CHANNELS * patch_size**2
        if unet.config.in_channels != want_in or unet.config.out_channels != want_out:
            raise ValueError(
                f"with patch_size {patch_size} the UNet must have {want_in} input and {want_out} output channels, "
                f"got {unet.config.in_channels} and {unet.config.out_channels}"
            )
        self.register_modules(unet=unet)
        self.register_to_config(patch_size=patch_size)
        enable_feature_rolling(self.unet)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        torch_dtype: torch.dtype | None = None,
        allow_pickle: bool = False,
        unet: UNet2DModel | None = None,
    ) -> StableMaterialsCapturePipeline:
        """Load a folder saved by `save_pretrained`: the UNet class that model_index.json names is built from `unet/`
        (safetensors only unless `allow_pickle`); no code from the folder runs."""
        folder = Path(pretrained_model_name_or_path)
        index_path = folder / "model_index.json"
        if not index_path.is_file():
            raise ValueError(f"{folder} is not a capture model folder: it has no model_index.json")
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{index_path} is not valid JSON: {e}") from e
        if unet is None:
            entry = index.get("unet")
            if not (isinstance(entry, list) and len(entry) == 2 and all(entry)):
                raise ValueError(f"{index_path} names no unet component")
            unet = load_component(entry[0], entry[1], folder / "unet", torch_dtype, allow_pickle)
        pipe = cls(unet=unet, patch_size=int(index.get("patch_size", 2)))
        pipe.register_to_config(_name_or_path=str(pretrained_model_name_or_path))
        return pipe

    # ------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        """Network input sides must be multiples of this: the patch size times the UNet's total downsampling."""
        return self.config.patch_size * 2 ** (len(self.unet.config.block_out_channels) - 1)

    # ------------------------------------------------------------------------------------------
    # Steps of __call__
    # ------------------------------------------------------------------------------------------
    def check_inputs(self, max_size: int | None, tile_size: int, overlap: float, output_type: str) -> None:
        m = self.size_multiple
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < MIN_PHOTO_SIDE):
            raise ValueError(f"max_size must be an integer >= {MIN_PHOTO_SIDE} or None, got {max_size!r}")
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 4 * m or tile_size % m:
            raise ValueError(f"tile_size must be a multiple of {m} and at least {4 * m}, got {tile_size!r}")
        if not (isinstance(overlap, (int, float)) and 0.0 < overlap < 0.5):
            raise ValueError(f"overlap must be a fraction in (0, 0.5), got {overlap!r}")
        if output_type not in MAP_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {', '.join(MAP_OUTPUT_TYPES)}, got {output_type!r}")

    def prepare_photo(self, photo: torch.Tensor, size: tuple[int, int], tileable: bool, overlap: float) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """The network's input (1, 3, H', W') in [0, 1], with H', W' multiples of `size_multiple`, and the photo crop
        (top, left, height, width) the maps will show.

        Tileable: the photo made tileable at the output size, then resampled across its wrap to the rounded size.
        Exact framing: the photo at the output size, mirrored out to the rounded size (cropped again afterwards).
        """
        m = self.size_multiple
        h, w = size
        x = photo[None]
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        rh, rw = math.ceil(h / m) * m, math.ceil(w / m) * m
        ph, pw = photo.shape[-2:]
        if tileable:
            x = make_tileable(x, overlap)  # the photo's top-left ch x cw pixels, made to wrap
            ch, cw = x.shape[-2:]
            crop = (0, 0, round(ch * ph / h), round(cw * pw / w))
            return resize_wrapped(x, (rh, rw)).clamp(0.0, 1.0), crop
        if (rh, rw) != (h, w):
            mode = "reflect" if rh - h < h and rw - w < w else "replicate"
            x = F.pad(x, (0, rw - w, 0, rh - h), mode=mode)
        return x, (0, 0, ph, pw)

    def predict(self, x: torch.Tensor, circular: bool) -> torch.Tensor:
        """One network evaluation: (B, 3, H, W) photo in [0, 1] -> (B, 9, H, W) model-space maps in [-1, 1]."""
        with tiling(TilingState(circular=circular)):
            return run_predictor(self.unet, x, self.config.patch_size).float().clamp(-1.0, 1.0)

    def predict_tiled(self, x: torch.Tensor, circular: bool, tile_size: int) -> torch.Tensor:
        """`predict` on overlapping tiles of at most about `tile_size` per side, blended with linear ramps a quarter
        of a tile wide. With `circular` the tiles wrap around the edges, so a tileable input gives tileable maps."""
        _, _, h, w = x.shape
        if h <= tile_size and w <= tile_size:
            return self.predict(x, circular)
        m = self.size_multiple
        overlap = max(m, tile_size // 4 // m * m)
        (th, tops, mh), (tw, lefts, mw) = (tile_plan(n, tile_size, overlap, circular) for n in (h, w))
        weight = _ramp(th, mh, x.device, torch.float32)[:, None] * _ramp(tw, mw, x.device, torch.float32)[None, :]
        out = torch.zeros(1, MODEL_CHANNELS, h * w, dtype=torch.float32, device=x.device)
        total = torch.zeros(1, 1, h * w, dtype=torch.float32, device=x.device)
        for top in tops:
            for left in lefts:
                rows = (torch.arange(th, device=x.device) + top) % h
                cols = (torch.arange(tw, device=x.device) + left) % w
                pred = self.predict(x[:, :, rows][:, :, :, cols], circular=False)  # (1, 9, th, tw)
                index = (rows[:, None] * w + cols[None, :]).flatten()
                out.index_add_(2, index, (pred * weight).reshape(1, MODEL_CHANNELS, -1))
                total.index_add_(2, index, weight.reshape(1, 1, -1))
        return (out / total).view(1, MODEL_CHANNELS, h, w)

    def finish(self, maps: torch.Tensor, size: tuple[int, int], tileable: bool) -> torch.Tensor:
        """Network-size maps (1, 9, H', W') -> the output size: resampled across the wrap, or cropped."""
        h, w = size
        if tuple(maps.shape[-2:]) == (h, w):
            return maps
        if tileable:
            return resize_wrapped(maps, (h, w))
        return maps[..., :h, :w]

    # ------------------------------------------------------------------------------------------
    # Capture
    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        image: PhotoLike | list[PhotoLike],
        tileable: bool = True,
        max_size: int | None = 1024,
        overlap: float = 0.125,
        tile_size: int = 1024,
        output_type: str = "material",
        return_dict: bool = True,
    ) -> StableMaterialsCaptureOutput | tuple:
        """Read the PBR maps of one photo or a list of photos.

        Args:
            image: a photo (PIL image, (H, W, 3) array, (3, H, W) tensor in [0, 1], or a file path) or a list of them.
                Any size and aspect (at least 24 px per side).
            tileable: maps that wrap seamlessly (default); False keeps the photo's exact framing (no wrap).
            max_size: the output is the photo's size scaled down to at most this many pixels per side; None: the
                photo's own size however large.
            overlap: about the fraction of each side used to join the borders when tileable (0.5-1.5 times it,
                where the photo is calmest at the wrap: `stablematerials.seamless`).
            tile_size: outputs larger than this per side are predicted in overlapping tiles of this size.
            output_type: "material" (default), "pil", "np" or "pt".
        """
        # 1. Check inputs and read the photos
        self.check_inputs(max_size, tile_size, overlap, output_type)
        photos = [load_photo(p) for p in (image if isinstance(image, (list, tuple)) else [image])]
        if not photos:
            raise ValueError("image is an empty list; give at least one photo")
        device = self._execution_device
        results = []
        for photo in photos:
            # 2. Output size and the network's input
            size = output_size(photo.shape[-2], photo.shape[-1], max_size)
            x, crop = self.prepare_photo(photo.to(device), size, tileable, overlap)
            # 3. Predict the maps (tiled above tile_size)
            maps = self.predict_tiled(x, circular=tileable, tile_size=tile_size)
            # 4. Back to the output size and package
            maps = self.finish(maps, size, tileable)
            metadata = {
                "source": "capture",
                "tileable": tileable,
                "photo_size": [int(photo.shape[-2]), int(photo.shape[-1])],
                "photo_crop": [int(v) for v in crop],
                "model": self.config.get("_name_or_path"),
                "package_version": _package_version(),
            }
            results.append(package_maps(maps, output_type, [metadata])[0])
        self.maybe_free_model_hooks()
        if not return_dict:
            return (results,)
        return StableMaterialsCaptureOutput(images=results)


def add_capture_model(model: str | os.PathLike, capture: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
    """Put the capture pipeline saved in `capture` into the `capture/` subfolder of the pipeline folder `model`, where
    `stablematerials.loading.capture_model_path` finds it (weights cast to `dtype` when given: float16 halves the
    bytes and the CPU loader computes in float32). The folder appears whole or not at all (written beside, then
    swapped in); the model's own components and model_index.json are not touched."""
    from .io import AtomicFolder
    from .loading import CAPTURE_SUBFOLDER

    model = Path(model)
    if not (model / "model_index.json").is_file():
        raise ValueError(f"{model} is not a pipeline folder: it has no model_index.json")
    pipe = StableMaterialsCapturePipeline.from_pretrained(capture, torch_dtype=torch.float32)
    if dtype is not None:
        pipe.unet.to(dtype)
    with AtomicFolder(model / CAPTURE_SUBFOLDER, overwrite=True) as tmp:
        pipe.save_pretrained(tmp)


def _package_version() -> str:
    from . import __version__

    return __version__
