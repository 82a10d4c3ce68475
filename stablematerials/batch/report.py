"""Batch results: one row per task, per-process partial files, the merged summary (JSON + CSV), the contact sheet."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes, atomic_write_text, find_material_files, read_image
from ..maps import MAP_NAMES

logger = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
CONTACT_SHEET = "contact_sheet.png"
PARTIAL_PREFIX = ".summary.part-"
STATUSES = ("generated", "skipped", "failed", "pending")


@dataclass
class TaskResult:
    """One summary row. status: generated (this run), skipped (done by an earlier run), failed, pending (not
    reached: the run stopped at --max-items). `seam` holds the worst seam score of each map (both axes); `path` is
    the material folder, empty unless the material exists."""

    index: int
    item: str
    variation: int
    name: str
    status: str
    reason: str = ""
    seed: int | None = None
    seconds: float | None = None
    seam: dict[str, float] = field(default_factory=dict)
    path: str = ""
    process_index: int = 0

    def csv_row(self) -> dict[str, object]:
        """Flat row for summary.csv (one seam_<map> column per map)."""
        row = {k: v for k, v in asdict(self).items() if k != "seam"}
        row["seconds"] = "" if self.seconds is None else f"{self.seconds:.3f}"
        row["seed"] = "" if self.seed is None else self.seed
        for name in MAP_NAMES:
            value = self.seam.get(name)
            row[f"seam_{name}"] = "" if value is None else f"{value:.4f}"
        return row


CSV_COLUMNS = [
    "index", "item", "variation", "name", "status", "reason", "seed", "seconds",
    *[f"seam_{m}" for m in MAP_NAMES], "path", "process_index",
]  # fmt: skip


def partial_path(out_dir: Path, process_index: int) -> Path:
    """Where process `process_index` leaves its rows for the main process to merge."""
    return out_dir / f"{PARTIAL_PREFIX}{process_index}.json"


def write_partial(out_dir: Path, process_index: int, results: list[TaskResult]) -> Path:
    """Write one process's rows atomically."""
    path = partial_path(out_dir, process_index)
    atomic_write_text(path, json.dumps([asdict(r) for r in results]))
    return path


def read_partials(out_dir: Path, num_processes: int) -> list[TaskResult]:
    """All processes' rows, sorted by (item index, variation); a missing partial file is an error."""
    rows: list[TaskResult] = []
    for rank in range(num_processes):
        path = partial_path(out_dir, rank)
        if not path.is_file():
            raise RuntimeError(f"process {rank} left no results at {path}")
        rows.extend(TaskResult(**r) for r in json.loads(path.read_text()))
    return sorted(rows, key=lambda r: (r.index, r.variation))


def summarize(results: list[TaskResult]) -> dict:
    """The summary document: counts by status and every row."""
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return {"total": len(results), "counts": counts, "items": [asdict(r) for r in results]}


def write_summary(out_dir: Path, results: list[TaskResult]) -> dict:
    """Write summary.json and summary.csv atomically; return the summary document."""
    summary = summarize(results)
    atomic_write_text(out_dir / SUMMARY_JSON, json.dumps(summary, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for r in results:
        writer.writerow(r.csv_row())
    atomic_write_text(out_dir / SUMMARY_CSV, buf.getvalue())
    return summary


def contact_sheet(folders: list[tuple[str, Path]], thumb: int = 128, columns: int | None = None):
    """One image with the basecolor of every material folder, its name under it; None when there are none."""
    from PIL import Image, ImageDraw

    tiles = []
    for name, folder in folders:
        files = find_material_files(folder)
        if "basecolor" not in files:
            logger.warning("%s has no basecolor; left out of the contact sheet", folder)
            continue
        rgb = np.round(np.clip(read_image(files["basecolor"]), 0, 1) * 255).astype(np.uint8)
        rgb = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb
        tiles.append((name, Image.fromarray(rgb).resize((thumb, thumb), Image.Resampling.LANCZOS)))
    if not tiles:
        return None
    columns = columns or min(8, math.ceil(math.sqrt(len(tiles))))
    rows = math.ceil(len(tiles) / columns)
    label_h, pad = 14, 4
    cell_w, cell_h = thumb + 2 * pad, thumb + label_h + 2 * pad
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for k, (name, tile) in enumerate(tiles):
        x, y = (k % columns) * cell_w + pad, (k // columns) * cell_h + pad
        sheet.paste(tile, (x, y))
        label = name if draw.textlength(name) <= thumb else name[: max(1, thumb // 7)] + "..."
        draw.text((x, y + thumb + 2), label, fill=(230, 230, 230))
    return sheet


def write_contact_sheet(out_dir: Path, results: list[TaskResult], thumb: int = 128) -> Path | None:
    """contact_sheet.png of every finished material of the batch (written atomically), or None if none."""
    done = [(r.name, out_dir / r.name) for r in results if r.status in ("generated", "skipped")]
    sheet = contact_sheet(done, thumb)
    if sheet is None:
        return None
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    path = out_dir / CONTACT_SHEET
    atomic_write_bytes(path, buf.getvalue())
    return path
