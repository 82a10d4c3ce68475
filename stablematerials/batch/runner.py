"""The resumable batch runner: generate each task's material into its own atomically written folder.

A task is done iff its folder exists: folders appear complete (maps, metadata.json with the batch record,
preview.png, optional .glb) or not at all, so a batch killed at any moment resumes without redoing or corrupting
anything. Several processes split the task list round-robin (task k goes to process k mod N), each with one
pipeline, and the main process merges their rows into the summary and the contact sheet.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..generation import GenerationRequest, Limits, local_limits
from ..io import METADATA_FILE
from .items import BatchTask, expand_tasks, read_items
from .report import (
    PARTIAL_PREFIX,
    SUMMARY_JSON,
    TaskResult,
    partial_path,
    read_partials,
    write_contact_sheet,
    write_partial,
    write_summary,
)

logger = logging.getLogger(__name__)

BATCH_KEY = "batch"  # the key of the batch record in each material's metadata.json


@dataclass(frozen=True)
class OutputOptions:
    """What each material folder holds besides the maps (their naming, normal convention and bit depth are the
    request's)."""

    orm: bool = False
    glb: bool = False
    preview_size: int = 256  # 0: no preview.png


@dataclass(frozen=True)
class BatchConfig:
    """Everything a batch run needs besides the process layout. `template` is the request every item starts from
    (the command line's model, variant, sampling defaults and file naming); an item's own fields replace its
    values. `base_seed` seeds the items that have no seed of their own (`derive_seed`)."""

    prompts: Path
    out_dir: Path
    template: GenerationRequest = field(default_factory=GenerationRequest)
    base_seed: int = 0
    output: OutputOptions = field(default_factory=OutputOptions)
    limits: Limits = field(default_factory=local_limits)
    max_items: int | None = None  # per process: stop after generating this many materials
    progress: bool = True


def _png_bytes(image) -> bytes:
    """A PIL image as PNG bytes."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _done_result(task: BatchTask, folder: Path, process_index: int) -> TaskResult:
    """The row of a task finished by an earlier run, from its folder's batch record."""
    record: dict[str, Any] = {}
    try:
        record = json.loads((folder / METADATA_FILE).read_text()).get(BATCH_KEY, {})
    except (OSError, json.JSONDecodeError) as e:
        logger.warning("%s: cannot read its batch record (%s)", folder, e)
    return TaskResult(
        index=task.item.index,
        item=task.item.name,
        variation=task.variation,
        name=task.output_name,
        status="skipped",
        reason="already done",
        seed=record.get("seed", task.seed),
        seconds=record.get("seconds"),
        seam=record.get("seam", {}),
        path=str(folder),
        process_index=process_index,
    )


def generate_task(
    pipe, task: BatchTask, out_dir: Path, options: OutputOptions, process_index: int = 0, limits: Limits | None = None
) -> TaskResult:
    """Generate one task's material and write its folder; a bad input gives a failed row instead of an exception."""
    from ..export import folder_format, get_format
    from ..generation import generate

    item = task.item
    folder = out_dir / task.output_name
    row = TaskResult(
        index=item.index, item=item.name, variation=task.variation, name=task.output_name, status="failed",
        seed=task.seed, process_index=process_index,
    )  # fmt: skip
    if item.error is not None:
        row.reason, row.seed = f"{item.source}: {item.error}", None
        return row
    start = time.perf_counter()
    try:
        request = task.request
        result = generate(pipe, request, limits=limits)
        material = result.materials[0]
        extra: dict[str, bytes] = {}
        if options.preview_size:
            from ..render import render_preview

            extra["preview.png"] = _png_bytes(render_preview(material, size=options.preview_size))
        if options.glb:
            glb = get_format("glb")
            extra[f"{task.output_name}{glb.suffix}"] = glb.encode(material, name=task.output_name)
        seams = {name: float(max(pair)) for name, pair in result.seam[0].items()}
        seconds = time.perf_counter() - start
        material.metadata[BATCH_KEY] = {
            "item": item.name, "index": item.index, "variation": task.variation, "seed": task.seed,
            "source": item.source, "image": request.image, "seconds": seconds, "seam": seams,
            "process_index": process_index, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }  # fmt: skip
        folder_format(request.naming).write(
            material,
            folder,
            name=task.output_name,
            normal_convention=request.normal_convention,
            bit_depth=request.bit_depth,
            orm=options.orm,
            extra_files=extra,
        )
    except Exception as e:  # noqa: BLE001 - one bad item must not stop the batch; the reason goes in the summary
        logger.warning("%s (%s) failed: %s", task.output_name, item.source, e, exc_info=not isinstance(e, ValueError))
        row.reason = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
        row.seconds = time.perf_counter() - start
        return row
    row.status, row.seconds, row.seam, row.path = "generated", seconds, seams, str(folder)
    return row


def run_tasks(
    load_pipe: Callable[[], Any],
    tasks: list[BatchTask],
    out_dir: Path,
    options: OutputOptions,
    *,
    process_index: int = 0,
    num_processes: int = 1,
    max_items: int | None = None,
    progress: bool = True,
    limits: Limits | None = None,
) -> list[TaskResult]:
    """Run this process's tasks in order; the pipeline is loaded (once) only if some task needs generating."""
    from tqdm.auto import tqdm

    pipe = None
    generated = 0
    results: list[TaskResult] = []
    desc = "materials" if num_processes == 1 else f"materials (process 0 of {num_processes}, its share)"
    bar = tqdm(total=len(tasks), desc=desc, unit="material", disable=not progress, dynamic_ncols=True)
    try:
        for task in tasks:
            folder = out_dir / task.output_name
            if task.item.error is not None:  # before the folder check: a duplicate's folder is another item's
                results.append(generate_task(pipe, task, out_dir, options, process_index))
            elif folder.is_dir():
                results.append(_done_result(task, folder, process_index))
            elif max_items is not None and generated >= max_items:
                results.append(
                    TaskResult(
                        index=task.item.index,
                        item=task.item.name,
                        variation=task.variation,
                        name=task.output_name,
                        status="pending",
                        reason="stopped at --max-items",
                        seed=task.seed,
                        process_index=process_index,
                    )  # fmt: skip
                )
            else:
                if pipe is None:
                    pipe = load_pipe()
                row = generate_task(pipe, task, out_dir, options, process_index, limits)
                generated += row.status == "generated"
                results.append(row)
            bar.update()
            bar.set_postfix(failed=sum(r.status == "failed" for r in results), refresh=False)
    finally:
        bar.close()
    return results


def clean_leftovers(out_dir: Path) -> int:
    """Remove what a killed run left half-written: hidden `*.partial` folders, `*.tmp` files, partial summaries."""
    removed = 0
    for path in out_dir.glob(".*"):
        if path.is_dir() and path.name.endswith(".partial"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and (path.name.endswith(".tmp") or path.name.startswith(PARTIAL_PREFIX)):
            path.unlink(missing_ok=True)
        else:
            continue
        removed += 1
    return removed


def run_batch(
    config: BatchConfig,
    *,
    load_pipe: Callable[[], Any] | None = None,
    process_index: int = 0,
    num_processes: int = 1,
    barrier: Callable[[], None] | None = None,
    device: Any = None,
) -> dict:
    """Run a batch (this process's share of it) and return the merged summary document.

    With several processes, call it in each with its `process_index`, the `num_processes` and a `barrier` that
    waits for all of them (accelerate's `PartialState.wait_for_everyone`): tasks are split round-robin without
    overlap, and the main process (0) merges the rows into summary.json / summary.csv / contact_sheet.png.
    Only one batch may write into an output folder at a time.
    """
    if not 0 <= process_index < num_processes:
        raise ValueError(f"process_index must be in [0, {num_processes}), got {process_index}")
    if config.max_items is not None and config.max_items < 0:
        raise ValueError(f"max_items must be >= 0, got {config.max_items}")
    wait = barrier or (lambda: None)
    out_dir = Path(config.out_dir)
    template = config.template
    template.validate_settings(config.limits)
    tasks = expand_tasks(read_items(config.prompts, template, config.limits), config.base_seed)
    if load_pipe is None:  # a missing model or too many steps for it is reported before any work
        from ..loading import check_model_steps, resolve_model, variant_student

        model = resolve_model(template.model)
        if template.steps is not None:
            check_model_steps(model, variant_student(template.variant), template.steps)
    main = process_index == 0
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        removed = clean_leftovers(out_dir)
        if removed:
            logger.info("removed %d leftovers of an interrupted run in %s", removed, out_dir)
    wait()

    def default_loader():
        from ..loading import load_pipeline, variant_student

        pipe = load_pipeline(template.model, variant_student(template.variant), device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    mine = tasks[process_index::num_processes]
    results = run_tasks(
        load_pipe or default_loader,
        mine,
        out_dir,
        config.output,
        process_index=process_index,
        num_processes=num_processes,
        max_items=config.max_items,
        progress=config.progress and main,
        limits=config.limits,
    )
    write_partial(out_dir, process_index, results)
    wait()
    if main:
        merged = read_partials(out_dir, num_processes)
        summary = write_summary(out_dir, merged)
        write_contact_sheet(out_dir, merged)
        for rank in range(num_processes):
            partial_path(out_dir, rank).unlink(missing_ok=True)
    wait()
    if not main:
        summary = json.loads((out_dir / SUMMARY_JSON).read_text())
    return summary


def exit_code(summary: dict) -> int:
    """1 if any task failed, else 0."""
    return 1 if summary["counts"].get("failed", 0) else 0
