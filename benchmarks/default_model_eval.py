"""Does the default model make what the prompt asks for? Family, colour, metal, gloss, seams, diversity, speed, VAE.

    python -m benchmarks.default_model_eval --model v2=assets/default-model [--model v3=PATH] [--work /work/runs/eval]
    python -m benchmarks.default_model_eval --model v2=assets/default-model --vae-only
    python -m benchmarks.default_model_eval --classifier-only

Steps (issue 12, "Evaluation first"):
1. The family classifier (WORK/classifier): trained on train-split procedural materials if missing (about 10 minutes
   on 2 cores, deterministic by --classifier-seed), verified on test-split materials generated at 512 and 256 px.
2. Per model, the VAE round trip of test-split procedural materials (every family, 256 and 512 px): the figures and
   WORK/sheets/<label>_vae_<size>px_*.png (inputs above reconstructions).
3. Per model, every prompt of the prompt file x --seeds seeds at the user's default settings (the CLI's: the student
   when there is one, its default steps, guidance 7.5, tileable; --size 512), records kept in WORK/runs (a stopped
   run resumes); then the classifier's family, colour / metal / gloss checks, seams, normal/height agreement,
   diversity and time per material; contact sheets WORK/sheets/<label>_contact_*.png.
4. The tables (targets beside the figures; several --model side by side) printed and written to WORK/report.md.
Run by hand (it takes tens of minutes), never in CI; the fast checks of its parts are tests/test_material_eval.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np


from benchmarks.material_eval import report, sheets  # noqa: E402
from benchmarks.material_eval.classifier import predict_proba  # noqa: E402
from benchmarks.material_eval.errors import fail  # noqa: E402
from benchmarks.material_eval.classifier_data import FAMILY_NAMES, procedural_set  # noqa: E402
from benchmarks.material_eval.classifier_train import TrainConfig, confusion_lines, ensure_classifier, verify_classifier  # noqa: E402
from benchmarks.material_eval.diversity import CLEAR_COLOUR, CLEAR_STRUCTURE, seed_diversity  # noqa: E402
from benchmarks.material_eval.generation import Settings, generate_all, load_record, record_path  # noqa: E402
from benchmarks.material_eval.prompts import DEFAULT_PROMPTS, load_prompts  # noqa: E402
from benchmarks.material_eval.speckle import chroma_speckle  # noqa: E402
from benchmarks.material_eval.vae_eval import evaluate_vae  # noqa: E402
from stablematerials.io import atomic_write_text  # noqa: E402

logger = logging.getLogger("default_model_eval")
REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="a pipeline folder, optionally labelled (repeat to compare; default v2=assets/default-model)")
    p.add_argument("--work", type=Path, default=Path("/work/runs/eval"), help="classifier, records, sheets, report")
    p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS, help="JSON-lines prompt file")
    p.add_argument("--only", default="", help="only these prompt ids (comma-separated)")
    p.add_argument("--seeds", type=int, default=4, help="seeds per prompt (0 .. N-1); diversity needs 2 or more")
    p.add_argument("--size", type=int, default=512, help="output size in pixels")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the pipeline's)")
    p.add_argument("--guidance", type=float, default=7.5, help="guidance scale (the CLI's default 7.5)")
    p.add_argument("--student", action=argparse.BooleanOptionalAction, default=None,
                   help="the 4-step student (default: when the model has one, as the CLI)")
    p.add_argument("--tileable", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--patched", action=argparse.BooleanOptionalAction, default=None,
                   help="windowed attention (default: above the model's training size, as the CLI)")
    p.add_argument("--vae-only", action="store_true", help="only the VAE reconstruction figures")
    p.add_argument("--skip-vae", action="store_true", help="no VAE figures")
    p.add_argument("--vae-sizes", default="256,512")
    p.add_argument("--vae-per-family", type=int, default=4, help="held-out materials per family and size")
    p.add_argument("--classifier-only", action="store_true", help="train (if missing) and verify the classifier only")
    p.add_argument("--classifier-seed", type=int, default=0)
    p.add_argument("--classifier-steps", type=int, default=TrainConfig.steps, help="training steps (smoke runs: a few)")
    p.add_argument("--classifier-per-family", type=int, default=TrainConfig.per_family, help="training materials per family")
    p.add_argument("--verify-per-family", type=int, default=20, help="test materials per family and size")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.size <= 0 or args.size % 8:
        p.error(f"--size must be a positive multiple of 8, got {args.size}")
    return args


def parse_models(specs: list[str]) -> dict[str, Path]:
    """{'label': folder} from 'LABEL=PATH' or 'PATH' (labelled by its folder name); exit code 2 on a bad one."""
    models: dict[str, Path] = {}
    for spec in specs or ["v2=assets/default-model"]:
        label, _, path = spec.rpartition("=")
        folder = Path(path) if Path(path).is_absolute() else (Path.cwd() / path if (Path.cwd() / path).exists() else REPO / path)
        label = label or folder.name
        if not (folder / "model_index.json").is_file():
            fail(f"--model {spec!r}: {folder} is not a pipeline folder (no model_index.json)")
        if label in models:
            fail(f"--model label {label!r} is given twice")
        models[label] = folder
    return models


def classifier_section(args: argparse.Namespace):
    """Train (if missing) and verify the classifier; returns (net, Markdown)."""
    work = args.work / "classifier"
    cfg = TrainConfig(seed=args.classifier_seed, steps=args.classifier_steps, per_family=args.classifier_per_family)
    net = ensure_classifier(work, cfg)
    verify = verify_classifier(net, work, args.verify_per_family)
    train = json.loads((work / "classifier_train.json").read_text())
    lines = ["## Family classifier", "",
             f"Trained on {train['config']['per_family']} train-split procedural materials per family (generated at "
             f"{' and '.join(map(str, train['config'].get('sizes', (512, 256))))} px in turn), {train['config']['steps']} steps of batch {train['config']['batch']}, seed "
             f"{train['config']['seed']}: {train['data_seconds']:.0f} s data + {train['train_seconds']:.0f} s training on "
             f"{train['threads']} threads. Verified on test-split materials (never trained on):", "",
             "| test set | accuracy | errors (true -> predicted: count) |", "|---|---|---|"]  # fmt: skip
    for name, r in verify.items():
        errors = "; ".join(confusion_lines(r["confusion"])) or "none"
        lines.append(f"| {name} ({r['n']} materials) | {100 * r['accuracy']:.1f} % | {errors} |")
    lines += ["", "(perturbed: hue rotated at random, saturation 0-1.6x, brightness 0.6-1.4x, contrast, gamma, blur "
              "sigma 1 px, noise 0.03)"]  # fmt: skip
    return net, "\n".join(lines)


def procedural_reference(args: argparse.Namespace) -> tuple[str, float]:
    """The diversity measure on 4 procedural test seeds per family (the reference for 'clearly different') and the
    basecolor speckle of the test materials: a line for the report, and the speckle's 90th percentile (the limit)."""
    sources, labels = procedural_set("test", max(4, args.verify_per_family), (512,), args.work / "classifier" / "cache")
    divs = [seed_diversity(list(sources[labels == k][:4])) for k in range(len(FAMILY_NAMES))]
    speckle = np.array([chroma_speckle(s) for s in sources])
    limit = float(np.percentile(speckle, 90))
    return (f"Reference: 4 procedural test seeds of each family give {100 * np.mean([d['clear_pairs'] for d in divs]):.0f} % "
            f"clearly different pairs (colour distance >= {CLEAR_COLOUR} or structure distance >= {CLEAR_STRUCTURE}), "
            f"mean colour / structure distance {np.mean([d['colour'] for d in divs]):.3f} / "
            f"{np.mean([d['structure'] for d in divs]):.2f}. Their basecolor speckle "
            f"(benchmarks/material_eval/speckle.py; {len(sources)} test materials): median {np.median(speckle):.4f}, "
            f"90th percentile {limit:.4f} (the limit above).", limit)  # fmt: skip


def vae_section(args: argparse.Namespace, models: dict[str, Path]) -> str:
    from stablematerials.loading import load_pipeline

    sizes = tuple(int(s) for s in args.vae_sizes.split(",") if s)
    results: dict = {}
    for label, folder in models.items():
        t0 = time.perf_counter()
        pipe = load_pipeline(folder)
        out = evaluate_vae(pipe, sizes, args.vae_per_family)
        for size, r in out.items():
            fams = list(r["examples"])
            for page, part in enumerate((fams[:10], fams[10:])):
                path = args.work / "sheets" / f"{label}_vae_{size}px_{page + 1}.png"
                sheets.vae_figure({f: r["examples"][f] for f in part}, path, f"{label} VAE at {size} px: input above reconstruction")
                logger.info("wrote %s", path)
        results[label] = {size: {k: v for k, v in r.items() if k != "examples"} for size, r in out.items()}
        logger.info("%s VAE figures: %.0f s", label, time.perf_counter() - t0)
    atomic_write_text(args.work / "vae.json", json.dumps(results, indent=2))
    return "\n\n".join([f"## VAE reconstruction (held-out procedural materials, {args.vae_per_family} per family)",
                        report.vae_table(results), "Per family (mean over its materials):", report.vae_family_table(results)])


def prompts_section(args: argparse.Namespace, models: dict[str, Path], net) -> str:
    prompts = load_prompts(args.prompts)
    if args.only:
        wanted = set(args.only.split(","))
        prompts = [p for p in prompts if p.id in wanted]
        if not prompts:
            fail(f"--only {args.only!r} matches no prompt id")
    settings = Settings(size=args.size, seeds=args.seeds, steps=args.steps, guidance=args.guidance,
                        student=args.student, tileable=args.tileable, patched=args.patched)  # fmt: skip
    summaries, rows_by_label, per_prompt = {}, {}, []
    reference, speckle_limit = procedural_reference(args)
    for label, folder in models.items():
        patched = "" if args.patched is None else f"_patched{args.patched}"
        run = args.work / "runs" / f"{label}_{args.size}px_g{args.guidance:g}_{args.steps or 'default'}steps_{args.student}{patched}"
        info = generate_all(folder, prompts, settings, run)
        records = [[load_record(record_path(run, p, s)) for s in range(args.seeds)] for p in prompts]
        probs = predict_proba(net, np.stack([r["source"] for recs in records for r in recs])).reshape(len(prompts), args.seeds, -1)
        verdicts = [[report.material_verdict(p, r["meta"], pr) for r, pr in zip(recs, ps)] for p, recs, ps in zip(prompts, records, probs)]
        rows = [report.prompt_summary(p, [r["meta"] for r in recs], vs, [r["source"] for r in recs])
                for p, recs, vs in zip(prompts, records, verdicts)]  # fmt: skip
        speckle = [chroma_speckle(r["source"]) for recs in records for r in recs]
        summaries[label] = report.model_summary(prompts, rows, verdicts, [[r["meta"] for r in recs] for recs in records], info,
                                                (speckle, speckle_limit))  # fmt: skip
        rows_by_label[label] = rows
        sheet_rows = [{"lines": sheets.row_lines(row, vs), "sources": [r["source"] for r in recs], "render": recs[0]["render"]}
                      for row, vs, recs in zip(rows, verdicts, records)]  # fmt: skip
        for path in sheets.contact_sheets(sheet_rows, args.work / "sheets", f"{label} at {args.size} px, seeds 0-{args.seeds - 1}"):
            logger.info("wrote %s", path)
        atomic_write_text(args.work / f"prompts_{label}.json", json.dumps({"summary": summaries[label], "rows": rows}, indent=2))
        per_prompt.append(f"### Per prompt: {label}\n\n{report.prompt_table(rows)}")
    settings_line = (f"{len(prompts)} prompts x {args.seeds} seeds at {args.size} px; " + "; ".join(
        f"{lab}: {'student' if s['info']['student'] else 'teacher'}, steps {args.steps or 'default'}, guidance "
        f"{args.guidance:g}, tileable {args.tileable}, patched {s['info']['patched']} (training size "
        f"{s['info']['native_size']} px), {s['info']['threads']} threads, warm-up call {s['info']['warmup_seconds']:.1f} s"
        for lab, s in summaries.items()))  # fmt: skip
    return "\n\n".join(["## Prompts", settings_line, report.summary_table(summaries), reference,
                        "### Family by family", report.family_table(prompts, rows_by_label), *per_prompt])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    models = {} if args.classifier_only else parse_models(args.model)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = []
    net, text = classifier_section(args)
    parts.append(text)
    if not args.classifier_only and not args.skip_vae:
        parts.append(vae_section(args, models))
    if not args.classifier_only and not args.vae_only:
        parts.append(prompts_section(args, models, net))
    labels = ", ".join(f"{k} = {v}" for k, v in models.items()) or "classifier only"
    text = f"# Default model evaluation\n\n{labels}; total {time.perf_counter() - t0:.0f} s\n\n" + "\n\n".join(parts) + "\n"
    atomic_write_text(args.work / "report.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
