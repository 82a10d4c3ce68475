"""`stablematerials finetune [OPTIONS]`: adapt a trained model (the default model unless --model) to a folder of your
own materials, as `python -m training.finetune` does: `stablematerials finetune --data.root my_materials/
--output_dir runs/my_style`; `stablematerials finetune --help` lists every option."""

from __future__ import annotations

import argparse

from .train import run_script

PASSTHROUGH_AFTER = 0  # every option (--help too) is the fine-tuning config's: its keys, defaults and reasons
HELP = "adapt a model to your own materials (LoRA on the teacher, the student re-distilled; options: finetune --help)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(options=[])  # filled by the CLI with everything after `finetune` (see PASSTHROUGH_AFTER)


def run(args: argparse.Namespace) -> int:
    return run_script("finetune", args.options)
