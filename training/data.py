"""Training data: annotated material folders, unannotated captioned images, and a resumable sharded sample order.

Materials: the procedural dataset layout (`ROOT/<split>/<name>/` material folders with `ROOT/<split>/captions.jsonl`
lines {"name", "family", "caption", ...}) or any folder of material folders that `load_material` reads (MatSynth,
ambientCG, Poly Haven, plain) with an optional captions.jsonl; without a caption a material's folder name (with
`_`/`-` as spaces) is its caption.

Images (the semi-supervised stream): a folder of images with an optional captions.jsonl {"file", "caption"}, parquet
shards with an image-bytes column and a caption column (LAION style), or webdataset .tar shards (key.jpg + key.txt).
A sample that cannot be read is skipped with a logged warning, never a crash hours into a run.

Order: `ShardedBatchSampler` draws one permutation per epoch from the seed; process r of w takes every w-th item,
so processes see disjoint samples; batch k of a process is a pure function of (seed, rank, k), so a resumed run
continues with exactly the batches the interrupted one would have drawn. Augmentation draws from a generator seeded
by (seed, rank, position), independent of worker processes and global RNG state.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from stablematerials.attributes import attribute_vectors, drop_attributes
from stablematerials.color_latents import COLOR_SCALE
from stablematerials.io import MaterialFolderError, find_material_files, load_material

from .augment import random_crop

logger = logging.getLogger(__name__)

CAPTIONS_FILE = "captions.jsonl"
_PIL_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def caption_from_name(name: str) -> str:
    """A default caption from a folder or file name: separators become spaces, resolution tags are dropped."""
    text = re.sub(r"[_\-.]+", " ", name)
    text = re.sub(r"\b\d+k\b", " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip() or name


def _read_jsonl(path: Path) -> list[dict]:
    """Lines of a JSON-lines file (blank lines skipped); a bad line is a ValueError naming the line."""
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i} is not valid JSON: {e}") from e
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{i} must be a JSON object")  # noqa: TRY004 - bad data file: ValueError
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Materials
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialRecord:
    """One annotated material: its folder, caption and family (None outside the procedural dataset)."""

    name: str
    folder: Path
    caption: str
    family: str | None = None


def material_root(root: str | Path, split: str) -> Path:
    """`ROOT/<split>` when it exists (procedural layout), else ROOT itself (a plain folder of materials)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} does not exist")
    return root / split if split and (root / split).is_dir() else root


def discover_materials(
    root: str | Path, split: str = "train", families: list[str] | None = None, exclude_families: list[str] | None = None
) -> list[MaterialRecord]:
    """The material folders under `root` (or `root/split`), with captions, optionally filtered by family."""
    folder = material_root(root, split)
    captions: dict[str, dict] = {}
    if (folder / CAPTIONS_FILE).is_file():
        captions = {str(row.get("name")): row for row in _read_jsonl(folder / CAPTIONS_FILE)}
    records = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if "basecolor" not in find_material_files(sub):
            continue
        row = captions.get(sub.name, {})
        caption = str(row.get("caption") or caption_from_name(sub.name))
        family = row.get("family")
        records.append(MaterialRecord(sub.name, sub, caption, str(family) if family is not None else None))
    if families:
        records = [r for r in records if r.family in set(families)]
    if exclude_families:
        records = [r for r in records if r.family not in set(exclude_families)]
    if not records:
        which = f" of families {families}" if families else ""
        raise ValueError(f"no material folders{which} found in {str(folder)!r}")
    return records


def preview_records(
    root: str | Path, split: str, fallback_split: str, count: int, families: list[str] | None = None
) -> list[MaterialRecord]:
    """The first `count` materials (in name order) of `split`, or of `fallback_split` when `split` does not exist."""
    use = split if (Path(root) / split).is_dir() else fallback_split
    return discover_materials(root, use, families)[:count]


def _first_readable(n: int, index: int, load: Callable[[int], object], bad: set[int], what: str, name: Callable[[int], str]):
    """Load item `index`, or the next readable one after it, logging and remembering the unreadable ones."""
    for step in range(n):
        i = (index + step) % n
        if i in bad:
            continue
        try:
            return i, load(i)
        except Exception as e:  # noqa: BLE001 - any decoding error: skip the sample, keep training
            bad.add(i)
            logger.warning("skipping unreadable %s %s: %s", what, name(i), e)
    raise ValueError(f"none of the {n} {what}s can be read")


class MaterialDataset(Dataset):
    """Materials as augmented model-space crops: item (index, seed) -> {"x": (9, S, S), "caption", "name", ...}.

    `resolution` resizes each material once when loaded (wrapping, 0 keeps the size); `crop_size` is the training
    crop. Loaded materials are cached in memory as float16 when `cache` is on.
    """

    def __init__(
        self,
        records: list[MaterialRecord],
        crop_size: int,
        resolution: int = 0,
        wrap: bool = True,
        flips: bool = True,
        rotations: bool = True,
        cache: bool = True,
    ) -> None:
        if not records:
            raise ValueError("a material dataset needs at least one material")
        if crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {crop_size}")
        if resolution and resolution < crop_size:
            raise ValueError(f"resolution {resolution} is smaller than crop_size {crop_size}")
        self.records, self.crop_size, self.resolution = records, crop_size, resolution
        self.wrap, self.flips, self.rotations, self.cache = wrap, flips, rotations, cache
        self._cache: dict[int, torch.Tensor] = {}
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> torch.Tensor:
        """Material `index` in model space (9, H, W), resized to `resolution`."""
        if index in self._cache:
            return self._cache[index].float()
        material = load_material(self.records[index].folder)
        if self.resolution and material.size != (self.resolution, self.resolution):
            material = material.resize(self.resolution)
        x = material.to_model_tensor()
        if min(x.shape[-2:]) < self.crop_size:
            raise MaterialFolderError(
                f"{self.records[index].folder} is {x.shape[-1]}x{x.shape[-2]}, smaller than crop_size {self.crop_size}"
            )
        if self.cache:  # the first read returns the cached precision too, so a resumed run sees the same values
            self._cache[index] = x.half()
            return self._cache[index].float()
        return x

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        index, x = _first_readable(len(self), index, self.load, self._bad, "material", lambda i: str(self.records[i].folder))
        rng = np.random.default_rng(seed)
        x = random_crop(x, self.crop_size, rng, self.wrap, self.flips, self.rotations)
        rec = self.records[index]
        return {"x": x, "caption": rec.caption, "name": rec.name, "family": rec.family or ""}


def vae_digest(vae_folder: str | Path) -> str:
    """A short digest of a VAE's encoder weights (a VAE folder or a pipeline folder): latents are valid for the
    encoder that made them, whatever later happens to the decoder (train_vae --decoder_only)."""
    from safetensors import safe_open

    path = Path(vae_folder)
    if (path / "vae" / "config.json").is_file():
        path = path / "vae"
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{str(path)!r} holds no VAE weights (*.safetensors)")
    h = hashlib.sha256()
    for f in files:
        with safe_open(f, "pt") as weights:
            for name in sorted(k for k in weights.keys() if k.startswith(("encoder.", "quant_conv."))):
                h.update(name.encode())
                h.update(weights.get_tensor(name).float().numpy().tobytes())
    return h.hexdigest()[:16]


LATENT_SHARD_GLOB = "shard_*.safetensors"


def latent_shard_path(folder: str | Path, k: int) -> Path:
    """Shard k of a latent cache (training/encode_latents.py)."""
    return Path(folder) / f"shard_{k:05d}.safetensors"


class LatentDataset(Dataset):
    """Pre-encoded materials (training/encode_latents.py) as wrapped latent crops: item (index, seed) ->
    {"latents": (C, s, s) VAE latents, "caption": one of the material's caption variants, "name", "family"}.

    The shards are read once into memory (float16). Crops wrap (the latents tile like the materials); mirrors and
    turns are not applied: a latent has no known mirror (the encoder is not equivariant, and normals would turn).
    """

    def __init__(self, folder: str | Path, crop: int, vae_digest: str | None = None) -> None:
        from safetensors import safe_open

        files = sorted(Path(folder).glob(LATENT_SHARD_GLOB))
        if not files:
            raise ValueError(f"no latent shards (shard_*.safetensors) in {str(folder)!r}; run training.encode_latents")
        latents, colors, self.records = [], [], []
        for f in files:
            with safe_open(f, "pt") as shard:
                meta = shard.metadata() or {}
                if vae_digest is not None and meta.get("vae_digest") != vae_digest:
                    raise ValueError(f"{f} was encoded by another VAE (digest {meta.get('vae_digest')}, this VAE {vae_digest})")
                latents.append(shard.get_tensor("latents").half())
                if "color" in shard.keys():
                    colors.append(shard.get_tensor("color").half())
                self.records += json.loads(meta["records"])
        if colors and len(colors) != len(files):
            raise ValueError(f"some latent shards in {str(folder)!r} hold colour latents and some do not; re-encode them")
        self.latents = torch.cat(latents)  # (N, C, h, w)
        self.colors = torch.cat(colors) if colors else None  # (N, 3, h, w) colour latents, or None
        if crop > min(self.latents.shape[-2:]):
            raise ValueError(f"latent crop {crop} is larger than the cached latents {tuple(self.latents.shape[-2:])}")
        self.crop = crop

    def __len__(self) -> int:
        return len(self.records)

    def captions(self) -> list[str]:
        """Every caption variant of every material."""
        return [c for r in self.records for c in r["captions"]]

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        rng = np.random.default_rng(seed)
        h, w = self.latents.shape[-2:]
        top, left = int(rng.integers(h)), int(rng.integers(w))

        def crop(t: torch.Tensor) -> torch.Tensor:
            return torch.roll(t, shifts=(-top, -left), dims=(-2, -1))[:, : self.crop, : self.crop].float()

        rec = self.records[index]
        caption = rec["captions"][int(rng.integers(len(rec["captions"])))]
        item = {"latents": crop(self.latents[index]), "caption": caption, "name": rec["name"], "family": rec["family"]}
        if self.colors is not None:
            item["color"] = crop(self.colors[index])
        return item


def training_set(data, factor: int, vae_folder: str | Path) -> tuple[Dataset, list[str], str]:
    """The annotated stream of train_ldm and distill_lcm from a DataConfig: (dataset, every caption, where from).

    Latent shards when `data.latents` is set (checked against the VAE in `vae_folder`), else material folders.
    """
    if data.latents:
        dataset = LatentDataset(data.latents, data.crop_size // factor, vae_digest(vae_folder))
        return dataset, dataset.captions(), str(data.latents)
    records = discover_materials(data.root, data.split, data.families, data.exclude_families)
    dataset = MaterialDataset(records, data.crop_size, data.resolution, data.wrap, data.flips, data.rotations, data.cache)
    return dataset, [r.caption for r in records], str(material_root(data.root, data.split))


@torch.no_grad()
def batch_latents(vae, batch: dict, device: torch.device, color_latents: bool = False) -> torch.Tensor:
    """A training batch's model latents (`stablematerials.latents.model_latents`): its cached VAE latents, or its
    materials encoded (a posterior sample); with `color_latents`, its colour latents after them."""
    from stablematerials.color_latents import encode_color
    from stablematerials.latents import model_latents, vae_scale_factor

    z = batch["latents"].to(device) if "latents" in batch else vae.encode(batch["x"].to(device)).latent_dist.sample()
    if not color_latents:
        return model_latents(vae.config, z)
    if "latents" in batch and "color" not in batch:
        raise ValueError("the model uses colour latents, but the latent cache holds none: re-run training.encode_latents")
    color = batch["color"] if "color" in batch else encode_color(batch["x"][:, 0:3], vae_scale_factor(vae.config))
    return model_latents(vae.config, z, color.to(device))


def batch_attributes(batch: dict, families: list[str], device: torch.device) -> torch.Tensor:
    """(B, F + 3) attributes (`stablematerials.attributes`) of a material batch: its families (indices into
    `families`) and its crops' mean basecolor (model space), from the materials or from their colour latents.
    A material of no listed family (a user's own, in a fine-tune) gets none: zeros, as the dropped ones."""
    known = torch.tensor([f in families for f in batch["family"]], device=device)
    index = torch.tensor([families.index(f) if f in families else 0 for f in batch["family"]], device=device)
    if "x" in batch:
        color = batch["x"][:, 0:3].float().mean(dim=(2, 3))
    elif "color" in batch:
        color = batch["color"].float().mean(dim=(2, 3)) / COLOR_SCALE
    else:
        raise ValueError("attributes need each material's colour: a latent cache with colour latents, or materials")
    return drop_attributes(attribute_vectors(index, color.to(device), len(families)), ~known)


def default_sample_prompts(data, dataset: Dataset, count: int) -> list[str]:
    """Captions to sample at fixed seeds when none are configured: the validation split's, or the latent set's first."""
    if isinstance(dataset, LatentDataset):
        return [r["captions"][0] for r in dataset.records[:count]]
    return [r.caption for r in preview_records(data.root, "val", data.split, count, data.families or None)]


# ----------------------------------------------------------------------------------------------
# Unannotated images
# ----------------------------------------------------------------------------------------------


def _decode_image(data: bytes) -> torch.Tensor:
    """Image file bytes -> (3, H, W) float32 in [0, 1]."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class _FolderImages:
    """A folder of images with an optional captions.jsonl {"file", "caption"}."""

    def __init__(self, folder: Path) -> None:
        if (folder / CAPTIONS_FILE).is_file():
            rows = _read_jsonl(folder / CAPTIONS_FILE)
            self.items = []
            for row in rows:
                if "file" not in row:
                    raise ValueError(f"{folder / CAPTIONS_FILE}: every line needs a 'file' key, got {row}")
                path = folder / str(row["file"])
                if not path.is_file():
                    logger.warning("%s lists %s, which does not exist; skipped", folder / CAPTIONS_FILE, row["file"])
                    continue
                self.items.append((path, str(row.get("caption") or caption_from_name(path.stem))))
        else:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _PIL_EXTENSIONS and not p.name.startswith("."))
            self.items = [(p, caption_from_name(p.stem)) for p in files]

    def __len__(self) -> int:
        return len(self.items)

    def caption(self, i: int) -> str:
        return self.items[i][1]

    def read(self, i: int) -> bytes:
        return self.items[i][0].read_bytes()

    def name(self, i: int) -> str:
        return self.items[i][0].name


class _ParquetImages:
    """Parquet shards (LAION style): an image column (bytes, or a struct with 'bytes') and a caption column."""

    def __init__(self, files: list[Path], image_column: str, caption_column: str) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("reading parquet shards needs pyarrow (pip install pyarrow; extra: train)") from e
        self.images: list = []
        self.captions: list[str] = []
        self.names: list[str] = []
        for f in files:
            schema = pq.read_schema(f)
            for col in (image_column, caption_column):
                if col not in schema.names:
                    raise ValueError(f"{f} has no column {col!r} (columns: {', '.join(schema.names)})")
            table = pq.read_table(f, columns=[image_column, caption_column])
            self.images.extend(table.column(image_column).to_pylist())
            self.names.extend(f"{f.name}:{row}" for row in range(table.num_rows))
            self.captions.extend(str(c or "") for c in table.column(caption_column).to_pylist())

    def __len__(self) -> int:
        return len(self.images)

    def caption(self, i: int) -> str:
        return self.captions[i]

    def read(self, i: int) -> bytes:
        value = self.images[i]
        if isinstance(value, dict):
            value = value.get("bytes")
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"{self.names[i]} holds no image bytes")  # noqa: TRY004 - a bad sample, skipped by the caller
        return bytes(value)

    def name(self, i: int) -> str:
        return self.names[i]


class _TarImages:
    """Webdataset .tar shards: members key.(jpg|png|webp) with key.txt (or key.json {"caption"}) beside them."""

    def __init__(self, files: list[Path]) -> None:
        self.items: list[tuple[Path, str, str]] = []  # (shard, member name, caption)
        for f in files:
            with tarfile.open(f) as tar:
                members = {m.name: m for m in tar.getmembers() if m.isfile()}
                for name in sorted(members):
                    stem, ext = name.split(".", 1) if "." in name else (name, "")
                    if "." + ext.lower() not in _PIL_EXTENSIONS:
                        continue
                    caption = ""
                    if stem + ".txt" in members:
                        caption = tar.extractfile(members[stem + ".txt"]).read().decode("utf-8", "replace").strip()
                    elif stem + ".json" in members:
                        try:
                            caption = str(json.loads(tar.extractfile(members[stem + ".json"]).read()).get("caption", ""))
                        except (json.JSONDecodeError, AttributeError):
                            caption = ""
                    self.items.append((f, name, caption or caption_from_name(Path(stem).name)))

    def __len__(self) -> int:
        return len(self.items)

    def caption(self, i: int) -> str:
        return self.items[i][2]

    def read(self, i: int) -> bytes:
        shard, name, _ = self.items[i]
        with tarfile.open(shard) as tar:
            return tar.extractfile(name).read()

    def name(self, i: int) -> str:
        return f"{self.items[i][0].name}:{self.items[i][1]}"


def open_image_source(path: str | Path, image_column: str = "image", caption_column: str = "caption"):
    """The image source at `path`: a folder of images, a folder of .parquet/.tar shards, or one shard file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"image data {str(path)!r} does not exist")
    files = [path] if path.is_file() else sorted(path.iterdir())
    parquet = [f for f in files if f.suffix == ".parquet"]
    tars = [f for f in files if f.suffix == ".tar"]
    if parquet:
        source = _ParquetImages(parquet, image_column, caption_column)
    elif tars:
        source = _TarImages(tars)
    elif path.is_dir():
        source = _FolderImages(path)
    else:
        raise ValueError(f"{str(path)!r} is not an image folder, a .parquet shard or a .tar shard")
    if len(source) == 0:
        raise ValueError(f"no images found in {str(path)!r}")
    return source


def image_key(index: int) -> str:
    """The conditioning key of image `index` when images are conditioned on their own embedding."""
    return f"<image:{index}>"


class ImageDataset(Dataset):
    """Captioned RGB images: item (index, seed) -> {"image": (3, S, S) in [0, 1], "caption", "name"}.

    Each image is resized so its shorter side is `resolution` (matching the scale of the material crops), then a
    random `crop_size` crop is taken with a random mirror and quarter turn. Unreadable images are skipped. With
    `by_image`, an item's "caption" is its `image_key` (its embedding by an image encoder conditions it).
    """

    def __init__(
        self, source, crop_size: int, resolution: int = 0, flips: bool = True, rotations: bool = True,
        by_image: bool = False,
    ) -> None:  # fmt: skip
        if resolution and resolution < crop_size:
            raise ValueError(f"image resolution {resolution} is smaller than crop_size {crop_size}")
        self.source, self.crop_size, self.resolution = source, crop_size, resolution or crop_size
        self.flips, self.rotations, self.by_image = flips, rotations, by_image
        self._bad: set[int] = set()

    def condition(self, index: int) -> str:
        """What conditions image `index`: its caption, or its `image_key`."""
        return image_key(index) if self.by_image else self.source.caption(index)

    def __len__(self) -> int:
        return len(self.source)

    def load(self, index: int) -> torch.Tensor:
        """Image `index` resized so its shorter side is `resolution`: (3, H, W) in [0, 1]."""
        img = _decode_image(self.source.read(index))
        h, w = img.shape[-2:]
        scale = self.resolution / min(h, w)
        size = (max(self.crop_size, round(h * scale)), max(self.crop_size, round(w * scale)))
        if size != (h, w):
            img = torch.nn.functional.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        return img.clamp(0.0, 1.0)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        index, img = _first_readable(len(self), index, self.load, self._bad, "image", self.source.name)
        rng = np.random.default_rng(seed)
        img = random_crop(img, self.crop_size, rng, wrap=False, flips=self.flips, rotations=self.rotations, normals=False)
        return {"image": img, "caption": self.condition(index), "name": self.source.name(index)}


# ----------------------------------------------------------------------------------------------
# Sample order
# ----------------------------------------------------------------------------------------------


class ShardedBatchSampler(Sampler):
    """Infinite, resumable batches of (index, augmentation seed) keys for one of `world` processes.

    Epoch e is a permutation of range(n) drawn from (seed, e), padded by wrapping to a multiple of `world`; process
    `rank` takes positions rank, rank + world, ... of it. `start_batch` skips the batches a resumed run has used.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start_batch: int = 0) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside 0..{world - 1}")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.start_batch = start_batch
        self.per_rank = math.ceil(n / world)
        self._perm_epoch, self._perm = -1, np.arange(0)

    def _shard(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            padded = np.resize(perm, self.per_rank * self.world)
            self._perm_epoch, self._perm = epoch, padded[self.rank :: self.world]
        return self._perm

    def batch(self, k: int) -> list[tuple[int, int]]:
        """Batch number k of this process: [(dataset index, augmentation seed), ...]."""
        keys = []
        for p in range(k * self.batch_size, (k + 1) * self.batch_size):
            epoch, offset = divmod(p, self.per_rank)
            seed = int(np.random.default_rng([self.seed, self.rank, p, 7]).integers(2**63))
            keys.append((int(self._shard(epoch)[offset]), seed))
        return keys

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        k = self.start_batch
        while True:
            yield self.batch(k)
            k += 1

    def __len__(self) -> int:  # an infinite sampler; DataLoader only needs this for its own bookkeeping
        return 2**62


def collate(items: list[dict]) -> dict:
    """Stack tensors, keep strings as lists."""
    out: dict = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


def batch_stream(dataset: Dataset, sampler: ShardedBatchSampler, num_workers: int = 0) -> Iterator[dict]:
    """Endless collated batches in the sampler's order (optionally decoded by worker processes)."""
    # A private generator: the loader draws a base seed when iterated, which must not consume the global RNG
    # stream (a resumed run creates its loader after restoring that stream). Augmentation has its own seeds.
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers, persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(sampler.seed),
    )  # fmt: skip
    return iter(loader)

