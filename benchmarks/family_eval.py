"""Shared by the training benchmarks: how close each model's materials are to a procedural family's real maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from stablematerials.io import load_material
from stablematerials.material import MAP_NAMES, Material
from stablematerials.metrics import map_distribution_distance
from stablematerials.pipeline import StableMaterialsPipeline
from training.data import discover_materials

EVAL_SEED = 10_000  # first sampling seed; sample i of every family uses EVAL_SEED + i


def family_distances(
    models: dict[str, Path], data: Path, families: list[str], *, per_family: int, steps: int, guidance: float,
    size: int, resolution: int, seed: int = EVAL_SEED,
) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """results[family][label][map]: distance of `per_family` materials generated from the family's test captions
    (fixed seeds, teacher sampling) to the family's test materials (per-map 1-D Wasserstein; lower is closer)."""
    split = "test" if (data / "test").is_dir() else "val"
    results: dict = {}
    for label, folder in models.items():
        pipe = StableMaterialsPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        for family in families:
            refs = discover_materials(data, split, families=[family])
            reference = [load_material(r.folder).resize(resolution) for r in refs]
            generated: list[Material] = []
            for i in range(per_family):
                g = torch.Generator().manual_seed(seed + i)
                generated += pipe(refs[i % len(refs)].caption, num_inference_steps=steps, guidance_scale=guidance,
                                  generator=g, height=size, width=size, tileable=True, output_type="material").images  # fmt: skip
            results.setdefault(family, {})[label] = map_distribution_distance(generated, reference)
    return results


def distance_table(results: dict, groups: dict[str, list[str]], labels: list[str]) -> str:
    """Markdown: one row per (family, map) and the mean, the two labelled models' distances and the change."""
    a, b = labels
    rows = [f"| family | map | {a} | {b} | change |", "|---|---|---|---|---|"]
    for group, fams in groups.items():
        for family in fams:
            for name in (*MAP_NAMES, "mean"):
                va = results[family][a].get(name, float(np.mean(list(results[family][a].values()))))
                vb = results[family][b].get(name, float(np.mean(list(results[family][b].values()))))
                rows.append(f"| {family} ({group}) | {name} | {va:.4f} | {vb:.4f} | {100 * (vb - va) / max(va, 1e-9):+.1f}% |")
    return "\n".join(rows)


def write_report(work: Path, name: str, title: str, budget: str, results: dict, table: str) -> str:
    """WORK/<name>.json and WORK/<name>.md; returns the Markdown."""
    report = f"# {title}\n\n{budget}\n\nMap distribution distance to ground truth (lower is better)\n\n{table}\n"
    (work / f"{name}.json").write_text(json.dumps({"budget": budget, "results": results}, indent=2))
    (work / f"{name}.md").write_text(report)
    return report
