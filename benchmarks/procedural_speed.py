"""Procedural material speed: materials per second per family (and overall) on one thread, i.e. per core.

    python -m benchmarks.procedural_speed [--size 256] [--count 10] [--families a,b] [--save]

Each family generates `count` materials with parameters drawn from their seeds (as the dataset command does),
after one warm-up material. `--save` also times writing each one as a 16-bit material folder (what the dataset
command pays per item). The dataset command runs one such process per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core: set before numpy/torch load
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from stablematerials.io import save_material  # noqa: E402
from stablematerials.procedural import FAMILIES  # noqa: E402
from stablematerials.procedural.dataset import dataset_material, material_name  # noqa: E402


def time_family(family: str, size: int, count: int, save_to: Path | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per material of `family`: mean over `count` seeds, after one warm-up.

    CPU time is what one core spends; wall time also counts waiting for a core when the machine is shared.
    """
    dataset_material(family, 10_000, size)
    cpu, wall = time.process_time(), time.perf_counter()
    for seed in range(count):
        material = dataset_material(family, seed, size)
        if save_to is not None:
            save_material(material, save_to / material_name(family, seed), bit_depth=16, overwrite=True)
    return (time.process_time() - cpu) / count, (time.perf_counter() - wall) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--count", type=int, default=10, help="materials per family")
    parser.add_argument("--families", default="", help="comma-separated (default: all)")
    parser.add_argument("--save", action="store_true", help="include writing the material folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    families = [f for f in args.families.split(",") if f] or list(FAMILIES)
    what = "generate + save (16-bit PNG)" if args.save else "generate"
    print(f"{what}, {args.size} px, {args.count} materials per family, 1 thread")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'family':16s} {'CPU ms/mat':>11s} {'mat/s/core':>11s} {'wall ms/mat':>12s}")
    total_cpu = total_wall = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            cpu, wall = time_family(family, args.size, args.count, Path(tmp) if args.save else None)
            total_cpu, total_wall = total_cpu + cpu, total_wall + wall
            print(f"{family:16s} {cpu * 1000:11.1f} {1 / cpu:11.1f} {wall * 1000:12.1f}")
    cpu, wall = total_cpu / len(families), total_wall / len(families)
    print(f"{'overall':16s} {cpu * 1000:11.1f} {1 / cpu:11.1f} {wall * 1000:12.1f}   (families weighted equally)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
