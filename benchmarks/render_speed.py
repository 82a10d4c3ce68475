"""Print timings of the preview renderer: render_preview (interactive use) and render_plane (training loss).

Run: python -m benchmarks.render_speed [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from stablematerials.material import Material, normal_from_height
from stablematerials.render import random_light_positions, render_plane, render_preview, render_sphere


def bumpy_material(size: int, seed: int = 0) -> Material:
    """A seeded tileable test material: sine bumps, half metal."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    height = (0.5 + 0.25 * np.sin(2 * np.pi * 4 * x) * np.sin(2 * np.pi * 4 * y)).astype(np.float32)
    normal = normal_from_height(torch.from_numpy(height)[None, None], 4.0)[0].permute(1, 2, 0).numpy()
    base = np.clip(rng.uniform(0.2, 0.9, 3) + 0.1 * height[..., None], 0, 1)
    return Material(base, normal, height, 0.2 + 0.6 * height, (x < 0.5).astype(np.float32))


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Fastest wall time of `repeats` calls after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    for texture_size in (512, 2048):
        big = bumpy_material(texture_size)
        t = best_of(lambda: render_preview(big, 256), args.repeats)
        print(f"render_preview {texture_size:4d} px material, size 256 (512x256 image): {t * 1000:7.1f} ms")
    material = bumpy_material(512)
    maps = material.to_tensors()
    with torch.inference_mode():
        t = best_of(lambda: render_sphere(maps, 256), args.repeats)
    print(f"render_sphere   512 px material, size 256:                   {t * 1000:7.1f} ms")

    batch = {k: v.expand(8, -1, -1, -1).contiguous() for k, v in bumpy_material(256).to_tensors().items()}
    for n_lights in (1, 3):
        positions = random_light_positions(8, n_lights, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            t = best_of(lambda: render_plane(batch, positions), args.repeats)
        print(f"render_plane   (8, ., 256, 256), {n_lights} light(s), forward:          {t * 1000:7.1f} ms")
        leaves = {k: v.clone().requires_grad_(True) for k, v in batch.items()}
        t = best_of(lambda: render_plane(leaves, positions).mean().backward(), args.repeats)
        print(f"render_plane   (8, ., 256, 256), {n_lights} light(s), forward+backward: {t * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
