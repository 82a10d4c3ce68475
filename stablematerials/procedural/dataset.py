"""Write and read a split, captioned dataset of procedural materials (the layout the training code reads).

Layout (version 1)::

    ROOT/dataset.json                  {"families": [...], "size": S, "counts": {split: n}, "version": 1}
    ROOT/<split>/<family>_<seed:06d>/  a material folder (save_material, plain naming, 16-bit), split in train|val|test
    ROOT/<split>/captions.jsonl        one {"name", "family", "caption", "seed", "params"} per line, sorted by name

Item k of a run is seed `start + k`, of family `families[seed % len(families)]`, with parameters drawn from the
seed; its split depends on the seed alone (Fibonacci hashing), so a (family, seed) always lands in the same split
and the splits never overlap. Folders appear atomically, so a run can be stopped and resumed at any time.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..io import METADATA_FILE, atomic_write_text, save_material
from ..material import Material
from . import FAMILIES, generate_with, get_family, sample_params
from .family import check_seed, check_size
from .noise import Streams

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
DATASET_FILE = "dataset.json"
CAPTIONS_FILE = "captions.jsonl"
DATASET_VERSION = 1
_GOLDEN64 = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: Knuth's multiplicative (Fibonacci) hashing constant
_PARTIAL = re.compile(r"^\..+\.partial$")  # temporary folders left by an interrupted AtomicFolder


def split_of(seed: int, val_fraction: float = 0.05, test_fraction: float = 0.05) -> str:
    """The split of a seed: u = frac(seed / golden ratio), test if u < test_fraction, val if below both, else train.

    u is a low-discrepancy sequence in the seed, so any run of consecutive seeds splits in close to the
    requested fractions.
    """
    _check_fractions(val_fraction, test_fraction)
    u = ((check_seed(seed) * _GOLDEN64) % 2**64) / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def material_name(family: str, seed: int) -> str:
    """The folder name of a dataset item: `<family>_<seed:06d>`."""
    return f"{family}_{seed:06d}"


def dataset_material(family: str, seed: int, size: int) -> Material:
    """The dataset's material for (family, seed): parameters drawn from the seed, then generated."""
    params = sample_params(family, Streams(seed, family)("params"))
    return generate_with(family, params, seed, size)


@dataclass(frozen=True)
class Item:
    """One planned material of a dataset run."""

    family: str
    seed: int
    split: str

    @property
    def name(self) -> str:
        """The item's folder name."""
        return material_name(self.family, self.seed)


def plan(n: int, families: Sequence[str], start: int = 0, val_fraction: float = 0.05, test_fraction: float = 0.05) -> list[Item]:
    """The items of a run: seeds start .. start+n-1, family by seed modulo the family count, split by seed."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of materials must be a positive integer, got {n!r}")
    if not families:
        raise ValueError("at least one family is needed")
    for f in families:
        get_family(f)
    check_seed(start)
    return [
        Item(families[s % len(families)], s, split_of(s, val_fraction, test_fraction)) for s in range(start, start + n)
    ]


@dataclass
class DatasetReport:
    """What a dataset run did."""

    root: Path
    written: int
    skipped: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Materials written per second (0 when nothing was written)."""
        return self.written / self.seconds if self.written and self.seconds > 0 else 0.0


def write_dataset(
    root: str | Path,
    n: int,
    size: int = 256,
    families: Sequence[str] | None = None,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    workers: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetReport:
    """Write `n` materials (seeds seed .. seed+n-1) under `root`, skipping those already complete; rebuild the index.

    `workers` > 1 uses that many processes (one thread each). `progress(done, total)` is called after each item.
    """
    root = Path(root)
    size = check_size(size)
    families = list(families) if families is not None else list(FAMILIES)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    items = plan(n, families, seed, val_fraction, test_fraction)
    _check_existing(root, size)
    _check_split_moves(root, items)
    _remove_partials(root)
    todo = [it for it in items if not (root / it.split / it.name / METADATA_FILE).exists()]
    logger.info("%d of %d materials to write under %s", len(todo), len(items), root)
    start = time.perf_counter()
    done = 0
    for _ in _run(todo, root, size, workers):
        done += 1
        if progress is not None:
            progress(done, len(todo))
    seconds = time.perf_counter() - start
    counts = rebuild_index(root, size, families)
    return DatasetReport(root, len(todo), len(items) - len(todo), seconds, counts)


def _write_item(job: tuple[str, int, str, str, int]) -> str:
    """Generate and save one item (runs in a worker process); returns its name."""
    family, seed, split, root, size = job
    material = dataset_material(family, seed, size)
    name = material_name(family, seed)
    save_material(material, Path(root) / split / name, naming="plain", bit_depth=16, overwrite=True)
    return name


def _init_worker() -> None:
    """One thread per worker process: the workers are the parallelism."""
    import torch

    torch.set_num_threads(1)


@contextmanager
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one thread for the duration (restored after): per-map tensors are small, and on a busy machine
    torch's thread pool spends more time waiting for cores than it saves (measured: 285 ms vs 1 ms per normal map).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(todo: list[Item], root: Path, size: int, workers: int) -> Iterable[str]:
    """Write the items, in this process (workers == 1) or in a pool of spawned processes."""
    jobs = [(it.family, it.seed, it.split, str(root), size) for it in todo]
    if workers == 1 or len(jobs) <= 1:
        with _single_torch_thread():
            yield from map(_write_item, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(_write_item, jobs, chunksize=4)


def _check_existing(root: Path, size: int) -> None:
    """Refuse to add materials of another size to an existing dataset."""
    info_path = root / DATASET_FILE
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("size") != size:
            raise ValueError(f"{root} holds a dataset of {info.get('size')} px materials; cannot add {size} px ones")


def _check_split_moves(root: Path, items: list[Item]) -> None:
    """Refuse a run whose items already exist in another split (the split fractions were changed)."""
    for it in items:
        for other in SPLITS:
            if other != it.split and (root / other / it.name).exists():
                raise ValueError(
                    f"{it.name} already exists in {root / other}, but these fractions put it in {it.split}; "
                    "use the split fractions the dataset was made with"
                )


def _remove_partials(root: Path) -> None:
    """Delete temporary folders left by an interrupted run (they are hidden and never complete)."""
    for split in SPLITS:
        folder = root / split
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_dir() and _PARTIAL.match(p.name):
                    shutil.rmtree(p, ignore_errors=True)


def rebuild_index(root: str | Path, size: int, families: Sequence[str] = ()) -> dict[str, int]:
    """Rewrite every split's captions.jsonl and dataset.json from the material folders on disk; returns the counts."""
    root = Path(root)
    counts: dict[str, int] = {}
    found: set[str] = set()
    for split in SPLITS:
        rows = []
        folder = root / split
        for meta_path in sorted(folder.glob(f"*/{METADATA_FILE}")) if folder.is_dir() else []:
            if meta_path.parent.name.startswith("."):
                continue
            meta = json.loads(meta_path.read_text())
            rows.append(
                {
                    "name": meta_path.parent.name,
                    "family": meta["family"],
                    "caption": meta["caption"],
                    "seed": meta["seed"],
                    "params": meta["params"],
                }
            )
            found.add(meta["family"])
        atomic_write_text(folder / CAPTIONS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        counts[split] = len(rows)
    listed = set(families) | found
    info = {
        "families": [f for f in FAMILIES if f in listed] + sorted(listed - set(FAMILIES)),
        "size": size,
        "counts": counts,
        "version": DATASET_VERSION,
    }
    atomic_write_text(root / DATASET_FILE, json.dumps(info, indent=2) + "\n")
    return counts


def read_captions(root: str | Path, split: str) -> list[dict]:
    """The caption rows of one split: [{"name", "family", "caption", "seed", "params"}, ...] in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = Path(root) / split / CAPTIONS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (is {root} a procedural dataset?)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number} is not valid JSON: {e}") from e
    return rows


def read_dataset_info(root: str | Path) -> dict:
    """The dataset's dataset.json as a dict."""
    path = Path(root) / DATASET_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (is {root} a procedural dataset?)")
    return json.loads(path.read_text())


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both in [0, 1) and summing below 1, else ValueError naming them."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}")
