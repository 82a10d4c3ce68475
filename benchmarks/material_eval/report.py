"""From stored records to verdicts: per material, per prompt, per model, and the Markdown tables.

Accuracies are over materials (prompt x seed): "colour" is the share of the materials of colour-naming prompts whose
mean basecolor has the named colour, and so on; "family" is the share of in-family materials the classifier assigns
to the prompt's family. Targets are issue 12's.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .attributes import GLOSSY_MAX, MATTE_MIN, colour_names_of, gloss_matches, metal_matches
from .classifier_data import FAMILY_NAMES
from .diversity import seed_diversity
from .prompts import EvalPrompt

SEAM_TARGET = 1.05
TARGETS = {
    "family": ">= 90 %",
    "colour": ">= 90 %",
    "metal": ">= 90 %",
    "gloss": ">= 90 %",
    "seams": ">= 95 %",
    "diverse": "4 seeds clearly different",
    "seconds": "<= 3 s (student, 512 px)",
}


def material_verdict(prompt: EvalPrompt, meta: dict, probs: np.ndarray) -> dict:
    """One material against its prompt: the classifier's family and each asked-for attribute (None: not asked)."""
    seen = FAMILY_NAMES[int(np.argmax(probs))]
    colours = colour_names_of(*meta["hsv"])
    return {
        "family": seen,
        "family_ok": None if prompt.family is None else seen == prompt.family,
        "family_p": None if prompt.family is None else float(probs[FAMILY_NAMES.index(prompt.family)]),
        "colours": colours,
        "colour_ok": None if prompt.colour is None else prompt.colour in colours,
        "metal_ok": None if prompt.metal is None else metal_matches(prompt.metal, meta["metallic"]),
        "gloss_ok": None if prompt.gloss is None else gloss_matches(prompt.gloss, meta["roughness"]),
        "seams_ok": meta["max_seam"] <= SEAM_TARGET,
    }


def prompt_summary(prompt: EvalPrompt, metas: list[dict], verdicts: list[dict], sources: list[np.ndarray]) -> dict:
    """A prompt's seeds together: shares of passing seeds, the most common family, diversity, mean measures."""
    share = lambda key: None if verdicts[0][key] is None else float(np.mean([v[key] for v in verdicts]))  # noqa: E731
    families = Counter(v["family"] for v in verdicts)
    return {
        "id": prompt.id,
        "prompt": prompt.prompt,
        "expected": {"family": prompt.family, "colour": prompt.colour, "metal": prompt.metal, "gloss": prompt.gloss},
        "family_seen": families.most_common(1)[0][0],
        "families": dict(families),
        "family": share("family_ok"),
        "colour": share("colour_ok"),
        "metal": share("metal_ok"),
        "gloss": share("gloss_ok"),
        "seams": share("seams_ok"),
        "mean_rgb": np.mean([m["mean_rgb"] for m in metas], axis=0).tolist(),
        "hue": [m["hsv"][0] for m in metas],
        "metallic": float(np.mean([m["metallic"] for m in metas])),
        "roughness": float(np.mean([m["roughness"] for m in metas])),
        "max_seam": float(max(m["max_seam"] for m in metas)),
        "normal_height": float(np.mean([m["normal_height"] for m in metas])),
        "seconds": float(np.mean([m["seconds"] for m in metas])),
        "diversity": seed_diversity(sources) if len(sources) > 1 else None,  # one seed: nothing to compare
    }


def model_summary(prompts: list[EvalPrompt], rows: list[dict], verdicts: list[list[dict]], metas: list[list[dict]],
                  info: dict, speckle: tuple[list[float], float]) -> dict:  # fmt: skip
    """The figures of the summary table for one model. `speckle`: every material's basecolor speckle
    (`speckle.chroma_speckle`) and the limit it is judged against (procedural test materials' 90th percentile)."""
    flat_v = [v for vs in verdicts for v in vs]
    flat_m = [m for ms in metas for m in ms]

    def acc(key: str, where=lambda p: True) -> tuple[float, int]:
        vals = [v[key] for p, vs in zip(prompts, verdicts) if where(p) for v in vs if v[key] is not None]
        return (float(np.mean(vals)) if vals else float("nan")), len(vals)

    maps = list(flat_m[0]["seam"])
    brown = [("brown" in v["colours"]) for v in flat_v]
    diverse = [r["diversity"] for r in rows if r["diversity"] is not None]  # none with one seed per prompt

    def div(key: str) -> float:
        return float(np.mean([d[key] for d in diverse])) if diverse else float("nan")

    return {
        "family": acc("family_ok"),
        "family_majority": (float(np.mean([r["family_seen"] == p.family for p, r in zip(prompts, rows) if p.family])),
                            sum(1 for p in prompts if p.family)),
        "colour": acc("colour_ok"),
        "colour_not_brown": acc("colour_ok", lambda p: p.colour not in (None, "brown")),
        "metal": acc("metal_ok"),
        "metal_words": acc("metal_ok", lambda p: p.metal == "metal"),
        "non_metal": acc("metal_ok", lambda p: p.metal == "not metal"),
        "gloss": acc("gloss_ok"),
        "glossy": acc("gloss_ok", lambda p: p.gloss == "glossy"),
        "matte": acc("gloss_ok", lambda p: p.gloss == "matte"),
        "seams": (float(np.mean([v["seams_ok"] for v in flat_v])), len(flat_v)),
        "seams_per_map": {k: float(np.mean([m["seam"][k] <= SEAM_TARGET for m in flat_m])) for k in maps},
        "normal_height": float(np.mean([m["normal_height"] for m in flat_m])),
        "diverse_prompts": (div("all_different"), len(diverse)),
        "clear_pairs": div("clear_pairs"),
        "colour_distance": div("colour"),
        "structure_distance": div("structure"),
        "seconds": float(np.mean([m["seconds"] for m in flat_m])),
        "seconds_max": float(np.max([m["seconds"] for m in flat_m])),
        "mean_rgb": np.mean([m["mean_rgb"] for m in flat_m], axis=0).tolist(),
        "brown_share": float(np.mean(brown)),
        "speckle_median": float(np.median(speckle[0])),
        "speckle_ok": (float(np.mean([v <= speckle[1] for v in speckle[0]])), len(speckle[0])),
        "speckle_limit": speckle[1],
        "hue_median": float(np.median([m["hsv"][0] for m in flat_m])),
        "n_materials": len(flat_m),
        "info": info,
    }


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.0f} %"


def _acc(pair: tuple[float, int]) -> str:
    value, n = pair
    return f"{_pct(value)} ({round(value * n) if n else 0}/{n})"


def summary_table(summaries: dict[str, dict]) -> str:
    """Rows: the issue's figures; columns: target, then one per model label."""
    labels = list(summaries)
    rows = [
        ("family accuracy (classifier, in-family materials)", "family", "family", _acc),
        ("family, majority of 4 seeds (per prompt)", None, "family_majority", _acc),
        ("colour word right", "colour", "colour", _acc),
        ("colour word right, colours other than brown", "colour", "colour_not_brown", _acc),
        ("metal expectation right (all)", "metal", "metal", _acc),
        ("... metal words (steel, copper, ...): metallic >= 0.5", "metal", "metal_words", _acc),
        ("... named non-metals: metallic < 0.5", "metal", "non_metal", _acc),
        ("gloss word right (all)", "gloss", "gloss", _acc),
        (f"... glossy / polished: roughness <= {GLOSSY_MAX}", "gloss", "glossy", _acc),
        (f"... matte / rough: roughness >= {MATTE_MIN}", "gloss", "matte", _acc),
        (f"materials with every seam <= {SEAM_TARGET}", "seams", "seams", _acc),
        ("prompts whose 4 seeds are all clearly different", "diverse", "diverse_prompts", _acc),
        ("clearly different seed pairs", None, "clear_pairs", lambda v: _pct(v)),
        ("mean colour / structure distance between seeds", None, None,
         lambda s: f"{s['colour_distance']:.3f} / {s['structure_distance']:.2f}"),
        ("mean normal/height agreement (cosine)", None, "normal_height", lambda v: f"{v:.3f}"),
        ("seconds per material (warm; max)", "seconds", None, lambda s: f"{s['seconds']:.2f} ({s['seconds_max']:.2f})"),
        ("mean basecolor (RGB) / median hue", None, None,
         lambda s: "(" + ", ".join(f"{c:.2f}" for c in s["mean_rgb"]) + f") / {s['hue_median']:.0f} deg"),
        ("materials whose mean colour passes 'brown'", None, "brown_share", lambda v: _pct(v)),
        ("basecolor speckle, median (speckle.py)", None, "speckle_median", lambda v: f"{v:.4f}"),
        ("materials with speckle within the procedural 90th percentile", None, None,
         lambda s: f"{_acc(s['speckle_ok'])} (<= {s['speckle_limit']:.4f})"),
    ]  # fmt: skip
    out = ["| figure | target | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for name, target, key, fmt in rows:
        cells = [fmt(s[key]) if key else fmt(s) for s in summaries.values()]
        out.append(f"| {name} | {TARGETS.get(target, '') if target else ''} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def family_table(prompts: list[EvalPrompt], rows_by_label: dict[str, list[dict]]) -> str:
    """Per family: the share of its materials classified right, and what the classifier saw, per model."""
    labels = list(rows_by_label)
    out = ["| family | " + " | ".join(f"{lab}: right / seen" for lab in labels) + " |", "|---|" + "---|" * len(labels)]
    for family in FAMILY_NAMES:
        cells = []
        for lab in labels:
            rows = [r for p, r in zip(prompts, rows_by_label[lab]) if p.family == family]
            seen = Counter()
            for r in rows:
                seen.update(r["families"])
            right = np.mean([r["family"] for r in rows]) if rows else float("nan")
            cells.append(f"{_pct(right)} / " + ", ".join(f"{f} {n}" for f, n in seen.most_common(3)))
        out.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def prompt_table(rows: list[dict]) -> str:
    """Per prompt for one model: expectations, the shares of seeds that meet them, and the measures."""
    def cell(expected, share):
        return "" if expected is None else f"{expected}: {_pct(share)}"

    out = ["| prompt | family seen (seeds) | colour | metal | gloss | mean RGB | metallic / rough | worst seam | n/h | diverse pairs |",
           "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        e = r["expected"]
        fam = ", ".join(f"{f} {n}" for f, n in sorted(r["families"].items(), key=lambda kv: -kv[1]))
        mark = "" if e["family"] is None else (" ok" if r["family_seen"] == e["family"] else f" (asked {e['family']})")
        rgb = "(" + ", ".join(f"{c:.2f}" for c in r["mean_rgb"]) + ")"
        out.append(
            f"| {r['prompt']} | {fam}{mark} | {cell(e['colour'], r['colour'])} | {cell(e['metal'], r['metal'])} | "
            f"{cell(e['gloss'], r['gloss'])} | {rgb} | {r['metallic']:.2f} / {r['roughness']:.2f} | {r['max_seam']:.2f} | "
            f"{r['normal_height']:.3f} | {_pct(r['diversity']['clear_pairs'] if r['diversity'] else float('nan'))} |"
        )
    return "\n".join(out)


def vae_table(vae: dict[str, dict]) -> str:
    """Rows: the VAE figures with the issue's targets; columns: model label x size."""
    cols = [(lab, size) for lab, by_size in vae.items() for size in by_size]
    out = ["| figure | target | " + " | ".join(f"{lab}, {size} px" for lab, size in cols) + " |",
           "|---|---|" + "---|" * len(cols)]  # fmt: skip
    rows = [
        ("basecolor PSNR, mean (min)", ">= 30 dB", lambda s: f"{s['psnr_mean']:.1f} ({s['psnr_min']:.1f}) dB"),
        ("materials with PSNR >= 30 dB", "all", lambda s: _pct(s["psnr_ok"])),
        ("mean-colour shift, largest channel: mean (max)", "<= 0.02 every material",
         lambda s: f"{s['colour_shift_mean']:.3f} ({s['colour_shift_max']:.3f})"),
        ("materials with colour shift <= 0.02", "all", lambda s: _pct(s["colour_shift_ok"])),
        ("normal angle error, mean (max)", "<= 4 deg", lambda s: f"{s['normal_deg_mean']:.1f} ({s['normal_deg_max']:.1f}) deg"),
        ("height / roughness / metallic MAE", "<= 0.03",
         lambda s: f"{s['height_mae']:.3f} / {s['roughness_mae']:.3f} / {s['metallic_mae']:.3f}"),
        ("materials with all three MAE <= 0.03", "all", lambda s: _pct(s["mae_ok"])),
        ("metallic pixels that stay metallic", "all", lambda s: _pct(s["metal_kept"])),
    ]  # fmt: skip
    for name, target, fmt in rows:
        out.append(f"| {name} | {target} | " + " | ".join(fmt(vae[lab][size]["summary"]) for lab, size in cols) + " |")
    return "\n".join(out)


def vae_family_table(vae: dict[str, dict]) -> str:
    """Per family: PSNR, colour shift and normal error, averaged over its test materials."""
    cols = [(lab, size) for lab, by_size in vae.items() for size in by_size]
    out = ["| family | " + " | ".join(f"{lab}, {size} px: PSNR / shift / normal" for lab, size in cols) + " |",
           "|---|" + "---|" * len(cols)]  # fmt: skip
    for family in FAMILY_NAMES:
        cells = []
        for lab, size in cols:
            rows = [r for r in vae[lab][size]["materials"] if r["family"] == family]
            cells.append(f"{np.mean([r['psnr'] for r in rows]):.1f} / {np.mean([r['colour_shift'] for r in rows]):.3f} / "
                         f"{np.mean([r['normal_deg'] for r in rows]):.1f}")  # fmt: skip
        out.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(out)
