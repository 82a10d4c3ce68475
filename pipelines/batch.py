"""Distributed batch generation: `python -m pipelines.batch PROMPTS --out DIR ...`, or across processes / GPUs:

    accelerate launch --multi_gpu --num_processes 2 -m pipelines.batch prompts.txt --out out/ --cpu

(accelerate 1.x starts several CPU processes through its multi-GPU launcher, which falls back to gloo on a machine
without GPUs; `accelerate launch --cpu` alone starts one process unless MPI is set up. `torchrun --nproc_per_node N
-m pipelines.batch ...` works too.) Options are those of `stablematerials batch`. Each process loads the model
once and takes every N-th task; the main process merges the summary and reports. Exit code (of the main process):
0 all done, 1 some item failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from stablematerials.commands.batch import HELP, add_arguments

    parser = argparse.ArgumentParser(prog="pipelines.batch", description=HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    import torch
    from accelerate import PartialState

    from stablematerials.batch import exit_code, run_batch
    from stablematerials.commands.batch import config_from_args, report_line

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # Without a GPU, accelerate sets up several processes (gloo) only when told to use the CPU.
    state = PartialState(cpu=args.cpu or (world_size > 1 and not torch.cuda.is_available()))
    if state.num_processes != world_size:
        print(
            f"pipelines.batch: error: launched as {world_size} processes but accelerate set up {state.num_processes}; "
            "every process would make every material. Pass --cpu, or launch as described in the module docstring.",
            file=sys.stderr,
        )
        return 2
    try:
        config = config_from_args(args)
        summary = run_batch(
            config,
            process_index=state.process_index,
            num_processes=state.num_processes,
            barrier=state.wait_for_everyone,
            device=state.device,
        )
    except (ValueError, FileNotFoundError, NotADirectoryError) as e:
        print(f"pipelines.batch: error: {e}", file=sys.stderr)
        return 2
    if not state.is_main_process:
        return 0  # the main process reports the whole batch, and its exit code says whether an item failed
    print(report_line(summary, config.out_dir))
    for row in summary["items"]:
        if row["status"] == "failed":
            print(f"failed: {row['name']}: {row['reason']}")
    return exit_code(summary)


if __name__ == "__main__":
    sys.exit(main())
