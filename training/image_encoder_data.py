"""Pictures of materials with caption targets, for training and checking the image-prompt encoder.

Two sources:

* Procedural materials (`stablematerials.procedural`) "photographed": the tileable maps are seen through a random
  view (zoom, in-plane rotation, a slight perspective tilt), shaded with the GGX renderer
  (`stablematerials.render.render_plane`) under random point lights, then given a camera's faults (white balance,
  blur, noise, JPEG). Seeds follow the procedural dataset's split (`split_of`): training uses train seeds, checks
  use test seeds, so a checked material was never seen, by the encoder or by the diffusion model.
* Real texture images from Debian game-data packages (zip archives of JPEG / PNG / TGA textures), captioned from
  their file names ("pitted_rust3" -> "pitted rust"); a fixed fifth of each package (by a hash of the name) is held
  out.

Targets are the text encoder's caption embeddings (MiniLM, unit norm): for a procedural material the normalised
mean over several caption variants (`CAPTION_VARIANTS` phrasings of the same parameters), since a picture cannot
tell which phrasing was drawn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from stablematerials.material import Material
from stablematerials.procedural import FAMILIES, generate_with, get_family, sample_params
from stablematerials.procedural.dataset import split_of
from stablematerials.procedural.noise import Streams
from stablematerials.render import DEFAULT_CAMERA_DISTANCE, DEFAULT_LIGHT_INTENSITY, render_plane

CAPTION_VARIANTS = 6  # phrasings drawn per material; the family writers have 3-4 templates, so 6 draws see most


# ----------------------------------------------------------------------------------------------
# Photographs of a material
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhotoSettings:
    """The ranges a photograph of a material is drawn from (angles in degrees)."""

    zoom: tuple[float, float] = (0.3, 1.0)  # material widths across the picture (1: the whole tile)
    rotation: float = 180.0  # in-plane rotation, uniform in [-r, r]
    tilt: float = 0.3  # perspective strength: the far edge shrinks by up to this fraction
    elevation: tuple[float, float] = (25.0, 90.0)  # light elevation above the surface
    flash: float = 0.2  # probability of the light at the camera instead
    second_light: float = 0.0  # probability of a second light
    intensity: tuple[float, float] = (0.5, 2.0)  # times the renderer's default light intensity
    light_tint: float = 0.04  # std of the per-channel light colour gain
    ambient: tuple[float, float] = (0.01, 0.12)  # uniform white environment radiance
    white_balance: float = 0.03  # std of the per-channel camera gain (a visible cast, not a new colour)
    blur: tuple[float, float] = (0.3, 1.2)  # probability, largest Gaussian sigma in pixels
    noise: tuple[float, float] = (0.5, 0.03)  # probability, largest noise std
    jpeg: tuple[float, int, int] = (0.5, 30, 95)  # probability, quality range


TRAIN_PHOTOS = PhotoSettings()
# Held-out conditions unlike training: the material repeats across the picture (zoomed out past one tile), light
# grazes the surface (8-20 degrees) or comes from two tinted lamps in a bright room, stronger perspective.
UNLIKE_PHOTOS = PhotoSettings(
    zoom=(1.2, 2.0), tilt=0.45, elevation=(8.0, 20.0), flash=0.0, second_light=0.5, intensity=(0.7, 2.5),
    light_tint=0.12, ambient=(0.1, 0.25),
)  # fmt: skip


def material_maps(material: Material) -> torch.Tensor:
    """The shading maps of a material as one (1, 8, H, W) tensor: basecolor, normal, roughness, metallic."""
    t = material.to_tensors()
    return torch.cat([t["basecolor"], t["normal"], t["roughness"], t["metallic"]], dim=1)


def _view_uv(n: int, size: int, s: PhotoSettings, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Texture coordinates (n, S, S, 2) of each pixel (in material widths, unwrapped), the rotation angles (n,) and
    the zooms (n,): pixel p in [-1, 1]^2 is tilted by a homography, rotated, scaled and offset."""
    c = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    p = torch.stack([x, y], -1).reshape(1, -1, 2)  # (1, S*S, 2)
    zoom = rng.uniform(*s.zoom, n)
    theta = np.deg2rad(rng.uniform(-s.rotation, s.rotation, n))
    phi = rng.uniform(0, 2 * math.pi, n)
    tilt = rng.uniform(0, s.tilt, n)
    offset = rng.uniform(0, 1, (n, 2))

    def rot(a: np.ndarray) -> torch.Tensor:
        a = torch.as_tensor(a, dtype=torch.float32)
        return torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)  # (n, 2, 2)

    q = p @ rot(phi).transpose(1, 2)  # tilt along a random direction
    q = q / (1.0 + torch.as_tensor(tilt, dtype=torch.float32)[:, None, None] * q[..., 1:2])
    q = q @ rot(-phi).transpose(1, 2)
    uv = q @ rot(theta).transpose(1, 2) * torch.as_tensor(zoom / 2, dtype=torch.float32)[:, None, None]
    uv = uv + torch.as_tensor(offset, dtype=torch.float32)[:, None, :]
    return uv.reshape(n, size, size, 2), torch.as_tensor(theta, dtype=torch.float32), zoom


def _sample_wrapped(maps: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of tileable (n, C, H, W) maps at texture coordinates uv (n, S, S, 2), wrapped into [0, 1)."""
    _, _, h, w = maps.shape
    uv = uv - torch.floor(uv)
    padded = F.pad(maps, (1, 1, 1, 1), mode="circular")
    grid = torch.stack([2.0 * (uv[..., 0] * w + 1.0) / (w + 2) - 1.0, 2.0 * (uv[..., 1] * h + 1.0) / (h + 2) - 1.0], -1)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _lights(n: int, s: PhotoSettings, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Light positions (n, L, 3) and RGB intensities (n, L, 3); L = 2 when any view has a second light (the
    unused second light of a view gets intensity 0)."""
    two = rng.random(n) < s.second_light
    count = 2 if two.any() else 1
    elev = np.deg2rad(rng.uniform(*s.elevation, (n, count)))
    azim = rng.uniform(0, 2 * math.pi, (n, count))
    pos = np.stack([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)], -1) * DEFAULT_CAMERA_DISTANCE
    flash = rng.random(n) < s.flash
    pos[flash, 0] = (0.0, 0.0, DEFAULT_CAMERA_DISTANCE)
    power = rng.uniform(*s.intensity, (n, count, 1)) * np.clip(1 + s.light_tint * rng.standard_normal((n, count, 3)), 0.5, 1.5)
    if count == 2:
        power[~two, 1] = 0.0
        power[two] *= 0.6  # two lamps share the exposure
    return torch.as_tensor(pos, dtype=torch.float32), torch.as_tensor(power * DEFAULT_LIGHT_INTENSITY, dtype=torch.float32)


def _camera(img: torch.Tensor, s: PhotoSettings, rng: np.random.Generator) -> np.ndarray:
    """White balance, blur, noise and JPEG on one (3, S, S) sRGB picture -> (S, S, 3) uint8."""
    img = img * torch.as_tensor(np.clip(1 + s.white_balance * rng.standard_normal(3), 0.7, 1.3), dtype=torch.float32)[:, None, None]
    if rng.random() < s.blur[0]:
        sigma = rng.uniform(0.3, s.blur[1])
        r = int(math.ceil(2.5 * sigma))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        k = k / k.sum()
        img = F.conv2d(F.pad(img[None], (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        img = F.conv2d(F.pad(img, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
    if rng.random() < s.noise[0]:
        img = img + torch.as_tensor(rng.standard_normal(img.shape) * rng.uniform(0, s.noise[1]), dtype=torch.float32)
    arr = np.round(img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    if rng.random() < s.jpeg[0]:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(s.jpeg[1], s.jpeg[2] + 1)))
        arr = np.asarray(Image.open(buf).convert("RGB"))
    return arr


def photograph(maps: torch.Tensor, n: int, size: int, settings: PhotoSettings, rng: np.random.Generator) -> np.ndarray:
    """`n` photographs (n, size, size, 3) uint8 of one material's (1, 8, H, W) maps (see `material_maps`)."""
    uv, theta, zoom = _view_uv(n, size, settings, rng)
    h = maps.shape[-1]
    views = []
    for i in range(n):  # pick the mip level whose texel density is closest to one texel a pixel (antialiasing)
        level, m = 0, maps
        while zoom[i] * h / 2**level / size > 1.5 and level < 4:
            level += 1
            m = F.avg_pool2d(m, 2)
        views.append(_sample_wrapped(m, uv[i : i + 1]))
    v = torch.cat(views)  # (n, 8, S, S)
    c, s_ = theta.cos()[:, None, None], theta.sin()[:, None, None]
    nx, ny = v[:, 3], v[:, 4]  # the normal turns with the texture (image y is down, the normal's y up)
    normal = torch.stack([c * nx - s_ * ny, s_ * nx + c * ny, v[:, 5]], 1)
    surface = {"basecolor": v[:, 0:3], "normal": normal, "roughness": v[:, 6:7], "metallic": v[:, 7:8]}
    positions, power = _lights(n, settings, rng)
    out = []
    for i in range(n):  # render_plane takes one ambient level per call
        one = {k: t[i : i + 1] for k, t in surface.items()}
        img = render_plane(one, positions[i : i + 1], power[i : i + 1], ambient=float(rng.uniform(*settings.ambient)))
        out.append(_camera(img[0], settings, rng))
    return np.stack(out)


# ----------------------------------------------------------------------------------------------
# Procedural items
# ----------------------------------------------------------------------------------------------


def split_seeds(split: str, per_family: int, families: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """(family, seed) pairs of the procedural dataset's convention (family = FAMILIES[seed % 19]) whose seed lies
    in `split`, `per_family` for each family, in seed order."""
    names = list(FAMILIES)
    wanted = set(families or names)
    counts = dict.fromkeys(wanted, 0)
    seed = 0
    while any(c < per_family for c in counts.values()):
        family = names[seed % len(names)]
        if family in wanted and counts[family] < per_family and split_of(seed) == split:
            counts[family] += 1
            yield family, seed
        seed += 1


def procedural_item(family: str, seed: int, size: int, variants: int = CAPTION_VARIANTS) -> tuple[Material, list[str]]:
    """The dataset's material for (family, seed) and `variants` distinct-seeded phrasings of its caption (the
    first is the material's own)."""
    params = sample_params(family, Streams(seed, family)("params"))
    material = generate_with(family, params, seed, size)
    writer = get_family(family).caption
    captions = [material.metadata["caption"]] + [
        writer(params, np.random.default_rng([seed, k])) for k in range(1, variants)
    ]
    return material, captions


def family_captions(family: str, count: int, first_seed: int = 10_000_000) -> list[str]:
    """`count` captions of random materials of `family` (parameters and phrasing from seeds above any dataset's),
    for the family's prototype embedding."""
    writer = get_family(family).caption
    out = []
    for k in range(count):
        rng = np.random.default_rng([first_seed, k, len(family)])
        out.append(writer(sample_params(family, rng), rng))
    return out


# ----------------------------------------------------------------------------------------------
# Real texture images from Debian packages
# ----------------------------------------------------------------------------------------------

# Licences, from each package's /usr/share/doc/<package>/copyright (Debian bookworm).
TEXTURE_PACKAGES = {
    "openarena-081-textures": ("usr/share/games/openarena/baseoa/pak4-textures.pk3", "GPL-2+ (OpenArena team, id Software and contributors)"),
    "nexuiz-textures": ("usr/share/games/nexuiz/data/textures.pk3", "GPL-2+ (Alientrap, Lee Vermeulen)"),
    "ufoai-textures": ("usr/share/games/ufoai/base/0textures.pk3", "GPL-2+ (UFO:AI team); some files CC-BY-3.0, CC-BY-SA-3.0, GPL-3+, Expat or public domain, per the copyright file"),
}  # fmt: skip

_SKIP = re.compile(r"(_|-)(nm|norm|normal|bump|gloss|glow|spec|sm|luma|lm|height|ow|alpha|mask|add|fx|blend|env|light|lt)\b|"
                   r"sky|logo|sign|decal|flare|blood|light|glow|screen|font|banner|\+\d", re.I)  # fmt: skip
_ABBREVIATIONS = {
    "mtl": "metal", "met": "metal", "metall": "metal", "crete": "concrete", "cem": "cement", "flr": "floor",
    "wll": "wall", "drk": "dark", "rst": "rusty", "brn": "brown", "grn": "green", "blk": "block", "wd": "wood",
    "dkred": "dark red", "rbrick": "red brick", "sbrick": "stone brick", "bdirt": "dirt", "woodb": "wood", "bricks": "bricks",
}  # fmt: skip
MATERIAL_WORDS = (
    "brick", "tile", "wood", "plank", "stone", "rock", "cobble", "marble", "metal", "steel", "iron", "rust", "copper",
    "brass", "gold", "bronze", "chrome", "aluminium", "concrete", "cement", "plaster", "stucco", "fabric", "cloth",
    "carpet", "leather", "dirt", "soil", "mud", "ground", "gravel", "sand", "bark", "grass", "moss", "granite",
    "slate", "pavement", "paving", "asphalt", "sandstone", "limestone", "wall", "floor", "block", "panel", "grate",
    "plate", "roof", "pebble", "ice", "snow", "lava", "tree", "board",
)  # fmt: skip
_KEEP = set(MATERIAL_WORDS) | {
    "red", "brown", "green", "blue", "yellow", "white", "black", "grey", "gray", "dark", "light", "old", "rusty",
    "rusted", "pitted", "dirty", "wet", "mossy", "cracked", "polished", "brushed", "painted", "rough", "smooth",
    "worn", "broken", "clean", "small", "large", "big", "tall", "dry", "orange", "pink", "beige", "tan", "rotten",
    "riveted", "corrugated", "hexagonal", "square", "mosaic", "terracotta", "teracota", "oak", "pine", "birch",
    "bricks", "tiles", "planks", "stones", "rocks", "floorboards",
}  # fmt: skip
# Family of a real texture, from its caption, only where the words name one of the 19 unambiguously (for checks).
_FAMILY_WORDS = (
    ("rust", "rusty_metal"), ("brick", "bricks"), ("hexagonal", "hex_tiles"), ("tile", "square_tiles"),
    ("cobble", "cobblestone"), ("marble", "marble"), ("plank", "wood_planks"), ("wood", "wood_planks"),
    ("concrete", "concrete"), ("cement", "concrete"), ("plaster", "plaster"), ("stucco", "plaster"),
    ("carpet", "fabric"), ("fabric", "fabric"), ("cloth", "fabric"), ("leather", "leather"), ("bark", "bark"),
    ("gravel", "gravel"), ("sand", "sand"), ("dirt", "soil"), ("soil", "soil"), ("mud", "soil"),
    ("metal", "metal"), ("steel", "metal"), ("iron", "metal"),
)  # fmt: skip
# Words that name a material by themselves ('wall', 'floor' or 'panel' alone do not).
_NOUNS = set(MATERIAL_WORDS) - {"wall", "floor", "block", "panel", "grate", "plate", "roof", "board", "tree"}
METAL_FAMILIES = ("polished_metal", "brushed_metal", "painted_metal", "rusty_metal")


def caption_from_name(path: str) -> str | None:
    """A caption from a texture's file name, or None when it names no material: 'textures/x/pitted_rust3.jpg' ->
    'pitted rust', 'drkrstmtl' -> 'dark rusty metal'."""
    stem = Path(path).stem.lower()
    if _SKIP.search(stem):
        return None
    words: list[str] = []
    for token in re.findall(r"[a-z]+", stem):
        if token in _ABBREVIATIONS:
            words.extend(_ABBREVIATIONS[token].split())
        elif token in _KEEP:
            words.append(token)
        else:  # glued words ('metalfloor', 'drkrstmtl'): known words and abbreviations, longest first
            found = sorted(
                (m.start(), w) for w in sorted(_KEEP | set(_ABBREVIATIONS), key=len, reverse=True)
                if len(w) >= 3 for m in re.finditer(w, token)
            )  # fmt: skip
            end = 0
            for start, w in found:
                # a three-letter word inside a longer one counts only where a word ends ('icefloor', 'darkred'),
                # not as the tail of another ('office', 'notice', 'cornice' are no ice); abbreviations are glued
                # by design ('drkrstmtl')
                short = len(w) == 3 and w not in _ABBREVIATIONS
                if start >= end and not (short and start != end):
                    words.extend(_ABBREVIATIONS.get(w, w).split())
                    end = start + len(w)
    words = [w.replace("gray", "grey").replace("teracota", "terracotta") for w in words]
    words = list(dict.fromkeys(words))
    if path.startswith("env/") or not any(_noun(w) in _NOUNS for w in words):
        return None
    return " ".join(words)


def _noun(word: str) -> str:
    """'bricks' -> 'brick', 'rusted' -> 'rust'; other words as they are."""
    if word in ("rusty", "rusted"):
        return "rust"
    return word[:-1] if word.endswith("s") and word[:-1] in _NOUNS else word


def caption_nouns(caption: str) -> set[str]:
    """The words of a caption that name a material by themselves, singular: 'grey rocks' -> {'rock'}."""
    return {_noun(w) for w in caption.split()} & _NOUNS


def family_of_caption(caption: str) -> str | None:
    """The procedural family a real texture's caption names ("metal" for any bare metal), or None."""
    nouns = {_noun(w) for w in caption.split()}
    for word, family in _FAMILY_WORDS:
        if word in nouns:
            return family
    return None


def is_held_out(package: str, member: str, fraction: float = 0.2) -> bool:
    """A fixed `fraction` of each package's textures (by a hash of the name), never trained on."""
    digest = hashlib.sha256(f"{package}/{member}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def real_textures(root: Path, packages: Mapping[str, tuple[str, str]] = TEXTURE_PACKAGES) -> list[dict]:
    """Texture images of the unpacked Debian packages under `root` (`root/<package>/<pk3 path>`) that name a
    material: {"package", "member", "caption", "family", "held_out", "licence"} in a fixed order. `packages`:
    {package: (pk3 path inside it, licence)}, TEXTURE_PACKAGES unless another collection is laid out the same way."""
    found = []
    for package, (pk3, licence) in packages.items():
        archive = root / package / pk3
        if not archive.is_file():
            continue
        with zipfile.ZipFile(archive) as z:
            for member in sorted(z.namelist()):
                if not re.search(r"\.(jpe?g|png|tga)$", member, re.I):
                    continue
                caption = caption_from_name(member)
                if caption is None:
                    continue
                found.append({
                    "package": package, "member": member, "caption": caption, "family": family_of_caption(caption),
                    "held_out": is_held_out(package, member), "licence": licence,
                })  # fmt: skip
    return found


def read_texture(root: Path, item: dict, packages: Mapping[str, tuple[str, str]] = TEXTURE_PACKAGES) -> Image.Image | None:
    """The RGB image of a `real_textures` item (of `packages`), or None when it cannot be decoded or is smaller
    than 64 px."""
    archive = root / item["package"] / packages[item["package"]][0]
    try:
        with zipfile.ZipFile(archive) as z, Image.open(io.BytesIO(z.read(item["member"]))) as im:
            rgb = im.convert("RGB")
    except (OSError, SyntaxError, ValueError):
        return None
    return rgb if min(rgb.size) >= 64 else None


def texture_crops(image: Image.Image, n: int, size: int, settings: PhotoSettings, rng: np.random.Generator) -> np.ndarray:
    """`n` random square crops (n, size, size, 3) uint8 of a texture image: side 40-100 % of its shorter side,
    quarter turns and mirrors, then the camera's faults of `settings`."""
    out = []
    w, h = image.size
    for _ in range(n):
        side = int(min(w, h) * rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        arr = np.rot90(np.array(crop), int(rng.integers(4)))
        arr = arr[:, ::-1] if rng.random() < 0.5 else arr
        img = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0
        out.append(_camera(img, settings, rng))
    return np.stack(out)


# ----------------------------------------------------------------------------------------------
# The cached picture set: built once (in worker processes), read by training and checks
# ----------------------------------------------------------------------------------------------

PICTURES_FILE = "pictures.npy"  # (N, S, S, 3) uint8
PICTURE_INDEX_FILE = "pictures.jsonl"  # one {"item", "split"} per picture
ITEMS_FILE = "items.jsonl"  # one {"kind", "family", "captions", ...} per material or texture
TARGETS_FILE = "targets.npy"  # (items, D) float32 unit caption embeddings
PROTOTYPES_FILE = "prototypes.npy"  # (19, D) family prototype embeddings, FAMILIES order
MANIFEST_FILE = "manifest.json"


@dataclasses.dataclass(frozen=True)
class CacheSpec:
    """What a cached picture set holds (written to its manifest; a different spec rebuilds it)."""

    per_family: int
    views: int
    eval_per_family: int
    texture_crops: int
    material_size: int
    image_size: int
    textures: str
    seed: int


def _procedural_job(args: tuple) -> tuple[dict, list[tuple[np.ndarray, str]]]:
    """One material: its item record and its pictures with their split (runs in a worker process)."""
    family, seed, split, spec = args
    torch.set_num_threads(1)
    material, captions = procedural_item(family, seed, spec.material_size)
    maps = material_maps(material)
    rng = np.random.default_rng([spec.seed, seed, 1])
    if split == "train":
        pictures = [(p, "train") for p in photograph(maps, spec.views, spec.image_size, TRAIN_PHOTOS, rng)]
    else:
        like = photograph(maps, 1, spec.image_size, TRAIN_PHOTOS, rng)[0]
        unlike = photograph(maps, 1, spec.image_size, UNLIKE_PHOTOS, rng)[0]
        pictures = [(like, "eval_like"), (unlike, "eval_unlike")]
    item = {"kind": "procedural", "family": family, "seed": seed, "captions": captions,
            "params": material.metadata["params"], "split": split}  # fmt: skip
    return item, pictures


def _texture_job(args: tuple) -> tuple[dict, list[tuple[np.ndarray, str]]] | None:
    """One real texture image: its item record and crops (None when it cannot be read)."""
    item, root, spec = args
    torch.set_num_threads(1)
    image = read_texture(Path(root), item)
    if image is None:
        return None
    rng = np.random.default_rng([spec.seed, int(hashlib.sha256(item["member"].encode()).hexdigest()[:8], 16)])
    split = "texture_heldout" if item["held_out"] else "train"
    crops = texture_crops(image, 1 if item["held_out"] else spec.texture_crops, spec.image_size, TRAIN_PHOTOS, rng)
    return dict(item, kind="texture", captions=[item["caption"]], split=split), [(c, split) for c in crops]


def build_cache(folder: Path, spec: CacheSpec, text_encoder, tokenizer, workers: int, log=print) -> None:
    """Render the picture set into `folder` (atomically): training pictures of train-seed materials and real
    textures, held-out pictures of test-seed materials (a training-like and an unlike view each) and of held-out
    textures; caption targets and family prototypes from the text encoder."""
    import json
    import multiprocessing

    from stablematerials.io import AtomicFolder

    jobs: list = [(f, s, "train", spec) for f, s in split_seeds("train", spec.per_family)]
    jobs += [(f, s, "eval", spec) for f, s in split_seeds("test", spec.eval_per_family)]
    texture_items = real_textures(Path(spec.textures)) if spec.textures else []
    jobs_tex = [(item, spec.textures, spec) for item in texture_items]
    log(f"rendering {len(jobs)} procedural materials and {len(jobs_tex)} texture images with {workers} workers")
    items, pictures, index = [], [], []
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        results = list(pool.imap(_procedural_job, jobs, chunksize=4))
        results += [r for r in pool.imap(_texture_job, jobs_tex, chunksize=4) if r is not None]
    for item, pics in results:
        for picture, split in pics:
            index.append({"item": len(items), "split": split})
            pictures.append(picture)
        items.append(item)
    log(f"embedding captions of {len(items)} items")
    targets = caption_targets(text_encoder, tokenizer, [it["captions"] for it in items])
    prototypes = caption_targets(text_encoder, tokenizer, [family_captions(f, 64) for f in FAMILIES])
    with AtomicFolder(folder, overwrite=True) as tmp:
        np.save(tmp / PICTURES_FILE, np.stack(pictures))
        np.save(tmp / TARGETS_FILE, targets.astype(np.float32))
        np.save(tmp / PROTOTYPES_FILE, prototypes.astype(np.float32))
        (tmp / ITEMS_FILE).write_text("".join(json.dumps(it) + "\n" for it in items))
        (tmp / PICTURE_INDEX_FILE).write_text("".join(json.dumps(r) + "\n" for r in index))
        licences = {p: TEXTURE_PACKAGES[p][1] for p in sorted({it["package"] for it in texture_items})}
        manifest = {"spec": dataclasses.asdict(spec), "pictures": len(pictures), "items": len(items),
                    "texture_licences": licences, "families": list(FAMILIES)}  # fmt: skip
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


@torch.no_grad()
def caption_targets(text_encoder, tokenizer, groups: list[list[str]], batch: int = 256) -> np.ndarray:
    """For each group of captions the unit mean of their unit sentence embeddings (what a picture described by
    them should map to): (len(groups), D) float32. Each distinct caption is encoded once."""
    from stablematerials.conditioning import encode_text

    unique = sorted({c for g in groups for c in g})
    emb = torch.cat([
        encode_text(text_encoder, tokenizer, unique[i : i + batch], torch.device("cpu")).float()
        for i in range(0, len(unique), batch)
    ])  # fmt: skip
    row = {c: i for i, c in enumerate(unique)}
    means = torch.stack([emb[[row[c] for c in g]].mean(0) for g in groups])
    return F.normalize(means, dim=-1).numpy().astype(np.float32)


@dataclasses.dataclass
class PictureSet:
    """A cached picture set in memory: pictures (N, S, S, 3) uint8 (memory-mapped), their items and splits,
    the items' targets (I, D) and the family prototypes (19, D)."""

    pictures: np.ndarray
    picture_item: np.ndarray
    picture_split: np.ndarray
    items: list[dict]
    targets: torch.Tensor
    prototypes: torch.Tensor
    manifest: dict

    @classmethod
    def load(cls, folder: Path) -> "PictureSet":
        import json

        index = [json.loads(line) for line in (folder / PICTURE_INDEX_FILE).read_text().splitlines()]
        return cls(
            pictures=np.load(folder / PICTURES_FILE, mmap_mode="r"),
            picture_item=np.array([r["item"] for r in index]),
            picture_split=np.array([r["split"] for r in index]),
            items=[json.loads(line) for line in (folder / ITEMS_FILE).read_text().splitlines()],
            targets=torch.from_numpy(np.load(folder / TARGETS_FILE)),
            prototypes=torch.from_numpy(np.load(folder / PROTOTYPES_FILE)),
            manifest=json.loads((folder / MANIFEST_FILE).read_text()),
        )

    def where(self, split: str) -> np.ndarray:
        """Indices of the pictures of a split."""
        return np.flatnonzero(self.picture_split == split)
