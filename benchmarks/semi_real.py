"""Does the semi-supervised stream with real texture images help the default model v3? (issue 12, deliverable 4)

    /work/runs/bin/heavy python -m benchmarks.semi_real --teacher runs/v3/ldm/model --latents runs/v3/latents \
        --textures TEXTURES_ROOT --work runs/semi_ab [--steps 1000] [--classifier runs/eval/classifier]

Protocol (every stage resumes; a finished one is skipped on a rerun of the same command):
1. export  the training split of the real textures (Debian game packages, captions from file names; a fixed fifth
           of each package is held out) -> WORK/images_train (training.export_textures).
2. train   A: the teacher continued for --steps steps (train_ldm with init_from = the teacher, its latent shards,
           the recipe's crop, batch, seed and diffusion loss (training/configs/ldm_v3.yaml), LR 5e-5 constant after
           a warm-up of steps/20, checkpoints every 100 steps) -> WORK/run_A/model.
           B: the same command plus `--semi.images WORK/images_train` (the stream's defaults otherwise: basecolor
           view with the anchor, from semi.start_step on; images scaled so their shorter side is the latent
           materials' size: a texture stands for a whole material) -> WORK/run_B/model.
           Each is its own `python -m training.train_ldm` process, as a user runs it (WORK/run_X/ holds its log
           files and checkpoints; an interrupted run resumes from its last checkpoint).
3. families  benchmarks/default_model_eval.py on the teacher, A and B: the 74 prompts at --size px, --eval-seeds
           seeds, the 25-step teacher at the CLI's guidance 7.5, no VAE figures -> WORK/eval/ (classifier family,
           colour word, metal, gloss; contact sheets). A and B are compared prompt by prompt (paired differences).
4. concepts  real-texture concepts no procedural family covers (grass, lava, rock / stone, ...: groups of family-less
           captions with at least --min-held-out held-out images; benchmarks/material_eval/concepts.py): each
           model makes --concept-materials materials from the concept's held-out captions (up to --concept-prompts
           distinct ones, cycled over seeds) at guidance 5 (the stream's fakes and the v3 samples use 5), and their
           basecolors are compared in colour with the concept's held-out images (never trained on).
5. WORK/report.md, WORK/results.json, WORK/sheets/<label>_concepts.png (held-out images beside basecolors and renders).

What "helps" means (`verdict`): B against A, which had the same steps without images.
* image-only concepts: B's mean colour distance over concepts is lower than A's, B is closer on more than half of
  the concepts, and B's nearest-concept accuracy is not lower;
* annotated families: B loses no family or colour accuracy beyond noise: B - A, paired over prompts, is at least
  -2 standard errors for both.
The teacher's column shows what continued training alone changes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.material_eval import errors, sheets
from benchmarks.material_eval.concepts import colour_stats, concept_prompts, concept_scores, group_concepts, mean_scores
from benchmarks.material_eval.generation import Settings, generate_records, load_record
from benchmarks.material_eval.prompts import DEFAULT_PROMPTS
from stablematerials.io import atomic_write_text
from stablematerials.values import slug

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "training" / "configs" / "ldm_v3.yaml"
# What the continued runs take from the teacher's recipe (the architecture and schedule come with init_from).
RECIPE_KEYS = ("seed", "data.crop_size", "train.batch_size", "diffusion.snr_gamma", "diffusion.cond_dropout",
               "diffusion.ema_decay")  # fmt: skip
LR = 5e-5  # a trained model is continued, not retrained: a quarter of v3's peak rate, constant so A and B end alike
CONCEPT_GUIDANCE = 5.0  # the guidance of the stream's fakes (semi.guidance_scale) and of the v3 samples
LABELS = ("teacher", "A", "B")
FAMILY_FIGURES = ("family", "colour", "colour_not_brown", "metal", "gloss")  # default_model_eval's summary keys
JUDGED = ("family", "colour")  # what B must not lose


def fail(message: str) -> None:
    errors.fail(message, prog="semi_real")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", type=Path, required=True, help="the trained teacher pipeline folder (v3: runs/v3/ldm/model)")
    p.add_argument("--latents", type=Path, required=True, help="the latent shards it was trained on (runs/v3/latents)")
    p.add_argument("--textures", type=Path, required=True, help="folder of the unpacked Debian texture packages")
    p.add_argument("--work", type=Path, required=True, help="folder for the images, runs, evaluations and report")
    p.add_argument("--steps", type=int, default=1000, help="training steps of runs A and B")
    p.add_argument("--classifier", type=Path, help="a trained family classifier folder of default_model_eval "
                   "(classifier.pt, classifier_train.json, cache/) to reuse; default: train one (about 10 min)")
    p.add_argument("--size", type=int, default=256, help="output size of the evaluations (px)")
    p.add_argument("--eval-seeds", type=int, default=1, help="seeds per prompt in the family evaluation")
    p.add_argument("--eval-steps", type=int, default=25, help="denoising steps in both evaluations")
    p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS, help="default_model_eval's prompt file")
    p.add_argument("--concept-prompts", type=int, default=4, help="distinct held-out captions per concept, at most")
    p.add_argument("--concept-materials", type=int, default=8, help="materials per concept and model")
    p.add_argument("--min-held-out", type=int, default=3, help="held-out images a concept needs")
    p.add_argument("--recipe", type=Path, default=RECIPE, help=f"the teacher's train_ldm config (for {', '.join(RECIPE_KEYS)})")
    p.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE", help="extra train_ldm setting for A and B")
    p.add_argument("--semi-arg", action="append", default=[], metavar="KEY=VALUE", help="extra train_ldm setting for B only")
    p.add_argument("--eval-arg", action="append", default=[], metavar="ARG", help="extra default_model_eval argument")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Every input checked before anything runs; paths made absolute (the runs are other processes)."""
    from training.export_textures import check_texture_root

    for name in ("teacher", "latents", "textures", "work", "recipe", "prompts"):
        setattr(args, name, getattr(args, name).resolve())
    if not (args.teacher / "model_index.json").is_file():
        fail(f"--teacher {args.teacher} is not a pipeline folder (no model_index.json)")
    if not sorted(args.latents.glob("shard_*.safetensors")):
        fail(f"--latents {args.latents} holds no latent shards (shard_*.safetensors)")
    if args.classifier is not None and not (args.classifier / "classifier.pt").is_file():
        fail(f"--classifier {args.classifier} holds no classifier.pt")
    for name in ("steps", "size", "eval_seeds", "eval_steps", "concept_prompts", "concept_materials", "min_held_out"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    for value in args.train_arg + args.semi_arg:
        if "=" not in value or value.startswith("-"):
            fail(f"--train-arg / --semi-arg take KEY=VALUE (a train_ldm key without dashes), got {value!r}")
    try:
        check_texture_root(args.textures)
        recipe_args(args.recipe)
    except ValueError as e:
        fail(str(e))


# ----------------------------------------------------------------------------------------------
# 1-2. Images and the two runs
# ----------------------------------------------------------------------------------------------


def export_stage(args: argparse.Namespace) -> Path:
    """WORK/images_train: the training split of the real textures (skipped when its captions.jsonl exists)."""
    from training.export_textures import CAPTIONS_FILE, export_textures

    images = args.work / "images_train"
    if not (images / CAPTIONS_FILE).is_file():
        counts = export_textures(args.textures, images, "train", log=print)
        print(f"export: {counts['written']} images written, {counts['unreadable']} unreadable (skipped)", flush=True)
    return images


def recipe_args(path: Path) -> list[str]:
    """train_ldm overrides `--key=value` for RECIPE_KEYS from the teacher's config file."""
    from training.config import read_config_file

    config, out = read_config_file(path), []
    for key in RECIPE_KEYS:
        value = config
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise ValueError(f"recipe {path} does not set {key}")
            value = value[part]
        out.append(f"--{key}={value}")
    return out


def latent_material_size(latents: Path) -> int:
    """The pixel size of the materials the latent shards were encoded from (training.encode_latents metadata)."""
    from safetensors import safe_open

    shard = min(latents.glob("shard_*.safetensors"))
    with safe_open(shard, "pt") as f:
        return int((f.metadata() or {})["size"])


def train_command(args: argparse.Namespace, out: Path, images: Path | None) -> list[str]:
    """The train_ldm command of run A (`images` None) or B, as a user would type it."""
    cmd = [sys.executable, "-m", "training.train_ldm", f"--output_dir={out}", f"--init_from={args.teacher}",
           f"--data.latents={args.latents}", *recipe_args(args.recipe), f"--train.max_steps={args.steps}",
           f"--train.lr={LR}", "--train.lr_schedule=constant_with_warmup", f"--train.warmup_steps={args.steps // 20}",
           "--train.checkpoint_every=100", "--train.log_every=25", "--resume=latest",
           *(f"--{kv}" for kv in args.train_arg)]  # fmt: skip
    if images is not None:
        cmd += [f"--semi.images={images}", f"--semi.resolution={latent_material_size(args.latents)}",
                *(f"--{kv}" for kv in args.semi_arg)]  # fmt: skip
    return cmd


def check_run_steps(out: Path, steps: int) -> None:
    """A run folder started with another --steps cannot be reused (its schedule and checkpoints are for those)."""
    if (out / "config.json").is_file():
        started = json.loads((out / "config.json").read_text())["train"]["max_steps"]
        if started != steps:
            fail(f"{out} was started with {started} steps, not --steps {steps}: give the same --steps or another --work")


def train_stage(args: argparse.Namespace, images: Path) -> dict[str, Path]:
    """Runs A and B (each skipped when its model exists); returns their pipeline folders."""
    models = {}
    for label, stream in (("A", None), ("B", images)):
        out = args.work / f"run_{label}"
        check_run_steps(out, args.steps)
        if not (out / "model" / "model_index.json").is_file():
            cmd = train_command(args, out, stream)
            print(f"run {label}: python {' '.join(cmd[1:])}", flush=True)
            t0 = time.time()
            if subprocess.run(cmd, cwd=REPO, check=False).returncode != 0:
                print(f"semi_real: run {label} failed (see above); rerun the same command to resume it", file=sys.stderr)
                raise SystemExit(1)
            print(f"run {label}: trained in {(time.time() - t0) / 60:.1f} min", flush=True)
        models[label] = out / "model"
    return models


# ----------------------------------------------------------------------------------------------
# 3. Annotated families (default_model_eval)
# ----------------------------------------------------------------------------------------------


def family_argv(args: argparse.Namespace, models: dict[str, Path]) -> list[str]:
    """default_model_eval's command line for the three models."""
    return [*(f"--model={label}={path}" for label, path in models.items()), "--work", str(args.work / "eval"),
            "--prompts", str(args.prompts), "--size", str(args.size), "--seeds", str(args.eval_seeds),
            "--steps", str(args.eval_steps), "--no-student", "--skip-vae", *args.eval_arg]  # fmt: skip


def link_classifier(source: Path | None, target: Path) -> None:
    """Reuse a trained classifier: its weights, training record and procedural caches linked into `target` (the
    evaluation writes its verification beside them, not into `source`)."""
    if source is None or (target / "classifier.pt").exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in ("classifier.pt", "classifier_train.json", "cache"):
        if (source / name).exists() and not (target / name).exists():
            (target / name).symlink_to(source.resolve() / name)


def family_stage(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, dict]:
    """The per-model results of default_model_eval ({"summary", "rows"}), run unless done with the same arguments."""
    from benchmarks import default_model_eval

    work = args.work / "eval"
    argv = family_argv(args, models)
    marker = work / "semi_real_args.json"
    if not (marker.is_file() and json.loads(marker.read_text()) == argv):
        link_classifier(args.classifier, work / "classifier")
        default_model_eval.main(argv)
        atomic_write_text(marker, json.dumps(argv))
    return {label: json.loads((work / f"prompts_{label}.json").read_text()) for label in models}


def paired_difference(a: list[float | None], b: list[float | None]) -> dict[str, float]:
    """Mean of b - a over the items both have (per-prompt shares), its standard error and the count."""
    d = np.array([y - x for x, y in zip(a, b) if x is not None and y is not None], dtype=np.float64)
    return {"difference": float(d.mean()) if len(d) else math.nan,
            "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan, "n": len(d)}  # fmt: skip


def family_differences(results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """B - A per figure, paired prompt by prompt."""
    rows_a, rows_b = results["A"]["rows"], results["B"]["rows"]
    if [r["id"] for r in rows_a] != [r["id"] for r in rows_b]:
        raise ValueError("runs A and B were evaluated on different prompts")
    return {key: paired_difference([r[key] for r in rows_a], [r[key] for r in rows_b]) for key in ("family", "colour", "metal", "gloss")}


# ----------------------------------------------------------------------------------------------
# 4. Image-only concepts
# ----------------------------------------------------------------------------------------------


def concept_jobs(groups: dict, run: Path, prompts: int, materials: int) -> dict[str, list[tuple[str, int, Path]]]:
    """Per concept, `materials` (prompt, seed, record path): its held-out captions cycled, seeds 0, 1, ... per caption."""
    jobs = {}
    for concept, group in groups.items():
        captions = concept_prompts(group["held_out"], prompts)
        picks = [(captions[k % len(captions)], k // len(captions)) for k in range(materials)]
        jobs[concept] = [(c, s, run / f"{concept}__{slug(c)}_s{s}.npz") for c, s in picks]
    return jobs


def held_out_images(textures: Path, groups: dict, min_images: int) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Colour statistics (M, 6) of each concept's readable held-out images and two of them for the sheets (<= 256
    px); concepts left with fewer than `min_images` readable images are dropped from `groups`."""
    from training.image_encoder_data import read_texture

    stats, shown = {}, {}
    for concept in list(groups):
        images = [im for it in groups[concept]["held_out"] if (im := read_texture(textures, it)) is not None]
        if len(images) < min_images:
            del groups[concept]
            continue
        stats[concept] = np.stack([colour_stats(np.asarray(im)) for im in images])
        shown[concept] = [np.asarray(_shrunk(im, 256)) for im in images[:2]]
    return stats, shown


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def concept_stage(args: argparse.Namespace, models: dict[str, Path]) -> dict:
    """Generate (resumably) and score every model's materials for the image-only concepts; writes the sheets."""
    from training.image_encoder_data import real_textures

    groups = group_concepts(real_textures(args.textures), args.min_held_out)
    image_stats, shown = held_out_images(args.textures, groups, args.min_held_out)
    if not groups:
        fail(f"no concept outside the families has {args.min_held_out} readable held-out images in {args.textures}")
    out = {"groups": groups, "images": image_stats, "generated": {}, "scores": {}, "prompts": {},
           "ceiling": concept_scores(image_stats, image_stats)}  # the held-out images' own nearest-concept accuracy
    for label, model in models.items():
        records = concept_records(args, label, model, groups)
        out["prompts"] = {c: sorted({r["meta"]["prompt"] for r in recs}) for c, recs in records.items()}
        out["generated"][label] = {c: np.stack([colour_stats(_basecolor(r)) for r in recs]) for c, recs in records.items()}
        out["scores"][label] = concept_scores(out["generated"][label], image_stats)
        write_concept_sheet(args.work / "sheets" / f"{label}_concepts.png", label, groups, shown, records, out["scores"][label])
    return out


def concept_records(args: argparse.Namespace, label: str, model: Path, groups: dict) -> dict[str, list[dict]]:
    """A model's generation records per concept (WORK/concepts/<label>/), made where missing."""
    run = args.work / "concepts" / label
    jobs = concept_jobs(groups, run, args.concept_prompts, args.concept_materials)
    flat = [job for js in jobs.values() for job in js]
    if not all(path.is_file() for _, _, path in flat):
        settings = Settings(size=args.size, seeds=1, steps=args.eval_steps, guidance=CONCEPT_GUIDANCE, student=False)
        generate_records(model, flat, settings, run)
    return {c: [load_record(path) for _, _, path in js] for c, js in jobs.items()}


def _basecolor(record: dict) -> np.ndarray:
    """The (256, 256, 3) uint8 basecolor of a generation record."""
    return np.ascontiguousarray(record["source"][:3].transpose(1, 2, 0))


def write_concept_sheet(path: Path, label: str, groups: dict, shown: dict, records: dict, scores: dict) -> None:
    rows = []
    for concept, recs in records.items():
        s = scores[concept]
        rows.append({
            "lines": [concept, f"{len(groups[concept]['held_out'])} held-out / {len(groups[concept]['train'])} training images",
                      *textwrap.wrap("prompts: " + "; ".join(sorted({r["meta"]["prompt"] for r in recs})), 46)[:3],
                      f"colour distance {s['colour_distance']:.3f}", f"spread difference {s['spread_difference']:+.3f}",
                      f"nearest own concept {100 * s['nearest_accuracy']:.0f} %"],
            "images": shown[concept], "basecolors": [_basecolor(r) for r in recs], "renders": [r["render"] for r in recs[:2]],
        })  # fmt: skip
    sheets.concept_sheet(rows, path, f"{label}: image-only concepts, held-out images beside generated materials")
    print(f"wrote {path}", flush=True)


# ----------------------------------------------------------------------------------------------
# 5. Verdict and report
# ----------------------------------------------------------------------------------------------


def verdict(scores: dict[str, dict[str, dict]], differences: dict[str, dict[str, float]]) -> dict:
    """Whether B helps (module docstring): closer to the image-only concepts and no loss on the annotated families
    beyond 2 standard errors of the paired difference."""
    a, b = scores["A"], scores["B"]
    closer = sum(b[c]["colour_distance"] < a[c]["colour_distance"] for c in a)
    ma, mb = mean_scores(a), mean_scores(b)
    concepts_better = (mb["colour_distance"] < ma["colour_distance"] and closer > len(a) / 2
                       and mb["nearest_accuracy"] >= ma["nearest_accuracy"])  # fmt: skip
    kept = {k: bool(differences[k]["difference"] >= -2 * differences[k]["se"]) for k in JUDGED}
    return {"concepts_closer": closer, "concepts": len(a), "concepts_better": concepts_better, "families_kept": kept,
            "helps": concepts_better and all(kept.values())}  # fmt: skip


def _figure(pair: list) -> str:
    value, n = pair
    return "n/a" if n == 0 or math.isnan(value) else f"{100 * value:.0f} % (n={n})"


def family_markdown(families: dict[str, dict], differences: dict) -> str:
    out = ["| figure | " + " | ".join(LABELS) + " | B - A (paired over prompts) |", "|---|---|---|---|---|"]
    for key in FAMILY_FIGURES:
        d = differences.get(key)
        diff = "" if d is None or d["n"] == 0 else f"{100 * d['difference']:+.1f} ± {200 * d['se']:.1f} points (2 SE, {d['n']} prompts)"
        out.append(f"| {key} | " + " | ".join(_figure(families[lab]["summary"][key]) for lab in LABELS) + f" | {diff} |")
    return "\n".join(out)


def _rgb(v) -> str:
    return "(" + ", ".join(f"{x:.2f}" for x in v) + ")"


def concept_markdown(concepts: dict) -> str:
    out = ["| concept | held-out / training images | prompts | images: mean RGB, spread, nearest own | "
           + " | ".join(f"{lab}: mean RGB, distance, spread diff, nearest" for lab in LABELS) + " |",
           "|---|---|---|---|" + "---|" * len(LABELS)]  # fmt: skip
    for concept, group in concepts["groups"].items():
        img, own = concepts["images"][concept], concepts["ceiling"][concept]["nearest_accuracy"]
        cells = []
        for lab in LABELS:
            gen, s = concepts["generated"][lab][concept], concepts["scores"][lab][concept]
            cells.append(f"{_rgb(gen[:, :3].mean(0))}, {s['colour_distance']:.3f}, {s['spread_difference']:+.3f}, "
                         f"{100 * s['nearest_accuracy']:.0f} %")  # fmt: skip
        out.append(f"| {concept} | {len(group['held_out'])} / {len(group['train'])} | {'; '.join(concepts['prompts'][concept])} | "
                   f"{_rgb(img[:, :3].mean(0))}, {img[:, 3:].mean():.3f}, {100 * own:.0f} % | " + " | ".join(cells) + " |")  # fmt: skip
    means = {lab: mean_scores(concepts["scores"][lab]) for lab in LABELS}
    out += ["", "| mean over concepts | " + " | ".join(LABELS) + " |", "|---|---|---|---|"]
    for key, fmt in (("colour_distance", "{:.3f}"), ("abs_spread_difference", "{:.3f}"), ("nearest_accuracy", "{:.0%}")):
        out.append(f"| {key.replace('_', ' ')} | " + " | ".join(fmt.format(means[lab][key]) for lab in LABELS) + " |")
    return "\n".join(out)


def report_markdown(args: argparse.Namespace, families: dict, differences: dict, concepts: dict, v: dict) -> str:
    kept = ", ".join(f"{k} {'kept' if ok else 'lost'}" for k, ok in v["families_kept"].items())
    guidance = families["A"]["summary"]["info"]["settings"]["guidance"]
    return "\n\n".join([
        "# Semi-supervised stream with real texture images: A/B on the default model's teacher",
        f"Teacher {args.teacher}; runs A and B: {args.steps} steps each (WORK {args.work}). Families: "
        f"{args.eval_seeds} seed(s) per prompt at {args.size} px, {args.eval_steps} steps, guidance {guidance:g} "
        f"(details: eval/report.md). Concepts: {args.concept_materials} materials each at guidance {CONCEPT_GUIDANCE:g}.",
        f"**Verdict: {'B helps' if v['helps'] else 'B does not help'}.** Image-only concepts: B closer than A on "
        f"{v['concepts_closer']} of {v['concepts']} ({'better' if v['concepts_better'] else 'not better'} by the rule); "
        f"annotated families: {kept} (B - A >= -2 SE).",
        "## Annotated families (default_model_eval)", family_markdown(families, differences),
        "## Image-only concepts (held-out texture images)", concept_markdown(concepts),
        "Distance: mean basecolor against the images' mean colour (sRGB); spread diff: mean per-channel std of the "
        "materials minus the images'; nearest: materials whose colour statistic (mean and spread) is nearest to their "
        "own concept's images among all concepts ('nearest own' of the images themselves: what colour can tell apart).",
    ]) + "\n"  # fmt: skip


def results_record(args: argparse.Namespace, families: dict, differences: dict, concepts: dict, v: dict) -> dict:
    return {
        "settings": {k: str(x) if isinstance(x, Path) else x for k, x in vars(args).items()},
        "families": {lab: {k: families[lab]["summary"][k] for k in FAMILY_FIGURES} for lab in LABELS},
        "family_differences": differences,
        "concepts": {c: {"held_out": len(g["held_out"]), "train": len(g["train"]), "prompts": concepts["prompts"][c],
                         "images_nearest_own": concepts["ceiling"][c]["nearest_accuracy"]}
                     for c, g in concepts["groups"].items()},
        "concept_scores": concepts["scores"],
        "concept_means": {lab: mean_scores(concepts["scores"][lab]) for lab in LABELS},
        "verdict": v,
    }  # fmt: skip


def write_outputs(args: argparse.Namespace, families: dict, concepts: dict) -> str:
    """WORK/report.md and WORK/results.json; returns the report."""
    differences = family_differences(families)
    v = verdict(concepts["scores"], differences)
    text = report_markdown(args, families, differences, concepts, v)
    atomic_write_text(args.work / "report.md", text)
    atomic_write_text(args.work / "results.json", json.dumps(results_record(args, families, differences, concepts, v), indent=2))
    return text


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    images = export_stage(args)
    models = {"teacher": args.teacher, **train_stage(args, images)}
    families = family_stage(args, models)
    concepts = concept_stage(args, models)
    print(write_outputs(args, families, concepts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
