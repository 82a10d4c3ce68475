"""The options `generate` and `batch` share, and the `GenerationRequest` they describe: one place for both, so the
two commands take the same settings with the same defaults."""

from __future__ import annotations

import argparse
from typing import Any

VARIANTS = {None: "auto", True: "student", False: "teacher"}  # --student / --no-student / neither


def add_request_arguments(p: argparse.ArgumentParser, sampling: Any = None, output: Any = None) -> None:
    """The model, sampling and output options, in `sampling` and `output` (argument groups; default: `p`)."""
    from ..defaults import DEFAULT_GUIDANCE, MAX_SIZE_ENV

    sampling, output = sampling or p, output or p
    p.add_argument("--model", help="pipeline folder or hub id (default: the embedded default model)")
    p.add_argument("--student", action=argparse.BooleanOptionalAction, default=None,
                   help="use the 4-step student UNet (unet_lcm; default: when the model has one and does not "
                        "prefer its teacher, see model_index.json's prefer_teacher)")  # fmt: skip
    sampling.add_argument("--steps", type=int, help="denoising steps (default: 4 for a student; for a teacher the model's "
                          "teacher_steps, else 50)")
    sampling.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                          help=f"guidance scale (default {DEFAULT_GUIDANCE})")  # fmt: skip
    sampling.add_argument("--negative", help="negative prompt")
    sampling.add_argument("--size", help="N or WxH in pixels, multiples of 8 (default: the model's training size, at "
                          f"least 256; at most 2048 unless ${MAX_SIZE_ENV} says more)")  # fmt: skip
    sampling.add_argument("--tileable", action=argparse.BooleanOptionalAction, default=True,
                          help="seamless output (default on)")  # fmt: skip
    sampling.add_argument("--patched", action=argparse.BooleanOptionalAction, default=None,
                          help="windowed attention for sizes above the training size (default: automatic)")  # fmt: skip
    add_output_arguments(output)


def add_output_arguments(output: Any) -> None:
    """How material folders are written: file naming, normal convention, bit depth (`generate`, `batch`, `capture`)."""
    output.add_argument("--naming", default="plain", choices=["plain", "ambientcg", "polyhaven"], help="file naming preset")
    output.add_argument("--normal", default="opengl", choices=["opengl", "directx", "both"], help="normal map convention")
    output.add_argument("--bit-depth", type=int, default=16, choices=[8, 16], help="height/normal PNG bit depth")


def request_from_args(args: argparse.Namespace, **fields: Any):
    """The `GenerationRequest` of the shared options, with `fields` (prompt, seed, variations, ...) set too."""
    from ..generation import GenerationRequest
    from ..values import parse_size

    height, width = parse_size("--size", args.size) if args.size else (None, None)
    return GenerationRequest(
        negative_prompt=args.negative or "",
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
        tileable=args.tileable,
        patched=args.patched,
        model=args.model,
        variant=VARIANTS[args.student],
        naming=args.naming,
        normal_convention=args.normal,
        bit_depth=args.bit_depth,
        **fields,
    )
