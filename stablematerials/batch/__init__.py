"""Batch generation: prompt files -> material folders, resumable, split across processes, with a summary.

`read_items` / `expand_tasks` turn a prompt file into tasks with fixed seeds; `run_batch` runs one process's
share and merges the summary; `pipelines/batch.py` is the distributed entry point (accelerate).
"""

from __future__ import annotations

from .items import BatchItem, BatchTask, derive_seed, expand_tasks, read_items
from .report import TaskResult, contact_sheet, write_contact_sheet, write_summary
from .runner import BatchConfig, OutputOptions, exit_code, generate_task, run_batch, run_tasks

__all__ = [
    "BatchConfig",
    "BatchItem",
    "BatchTask",
    "OutputOptions",
    "TaskResult",
    "contact_sheet",
    "derive_seed",
    "exit_code",
    "expand_tasks",
    "generate_task",
    "read_items",
    "run_batch",
    "run_tasks",
    "write_contact_sheet",
    "write_summary",
]
