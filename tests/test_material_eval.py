"""The default-model evaluation's parts (benchmarks/material_eval): checks, prompt file, classifier code, records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from benchmarks.material_eval import attributes, diversity, report, sheets
from benchmarks.material_eval.classifier import eval_views, predict_proba, source_array, to_input
from benchmarks.material_eval.classifier_data import (
    FAMILY_NAMES,
    augment,
    flip_horizontal,
    hue_rotation,
    rotate_normals,
    split_seeds,
)
from benchmarks.material_eval.classifier_train import TrainConfig, load_classifier, train_classifier
from benchmarks.material_eval.generation import Settings, generate_all, load_record, material_measures, record_path
from benchmarks.material_eval.prompts import DEFAULT_PROMPTS, EvalPrompt, load_prompts
from benchmarks.material_eval.speckle import chroma_speckle
from benchmarks.material_eval.vae_eval import reconstruct, reconstruction_errors
from stablematerials.material import Material, normal_from_height
from stablematerials.procedural import FAMILIES, generate, sample_params
from stablematerials.procedural import masonry, metal, textile
from stablematerials.procedural.color import srgb
from stablematerials.procedural.dataset import split_of
from stablematerials.procedural.noise import Streams

# ----------------------------------------------------------------------------------------------
# Colour, metal, gloss
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, params, colour, wrong",
    [
        ("bricks", {"color": "red"}, "red", "blue"),
        ("bricks", {"color": "yellow"}, "yellow", "grey"),
        ("bricks", {"color": "orange"}, "orange", "green"),
        ("square_tiles", {"color": "white"}, "white", "black"),
        ("square_tiles", {"color": "black"}, "black", "white"),
        ("square_tiles", {"color": "blue"}, "blue", "red"),
        ("square_tiles", {"color": "pink"}, "pink", "brown"),
        ("hex_tiles", {"color": "green"}, "green", "blue"),
        ("painted_metal", {"paint_color": "red"}, "red", "brown"),
        ("painted_metal", {"paint_color": "yellow"}, "yellow", "orange"),
        ("marble", {"kind": "carrara"}, "white", "cream"),
        ("marble", {"kind": "nero"}, "black", "white"),
        ("concrete", {"color": "grey"}, "grey", "brown"),
        ("plaster", {"color": "cream"}, "cream", "white"),
        ("fabric", {"color": "navy"}, "blue", "brown"),
        ("leather", {"color": "brown"}, "brown", "red"),
        ("sand", {"color": "volcanic"}, "black", "grey"),
        ("polished_metal", {"metal": "gold"}, "yellow", "white"),
    ],
)
def test_colour_check_on_procedural_colours(family, params, colour, wrong):
    m = generate(family, 3, 64, **params)
    assert attributes.colour_matches(colour, m.basecolor)
    assert not attributes.colour_matches(wrong, m.basecolor)


@pytest.mark.parametrize(
    "table, names",
    [
        (masonry.BRICK_COLORS, {"red": "red", "brown": "brown", "orange": "orange", "yellow": "yellow", "grey": "grey", "white": "white"}),
        (masonry.TILE_COLORS, {"white": "white", "cream": "cream", "black": "black", "blue": "blue", "green": "green", "grey": "grey", "pink": "pink"}),
        (metal.PAINT_COLORS, {"red": "red", "blue": "blue", "green": "green", "yellow": "yellow", "white": "white", "grey": "grey", "black": "black", "orange": "orange"}),
        (textile.FABRIC_COLORS, {"white": "white", "beige": "cream", "red": "red", "navy": "blue", "green": "green", "black": "black", "grey": "grey", "indigo": "blue", "pink": "pink"}),
    ],
)  # fmt: skip
def test_colour_rules_hold_for_the_table_swatches(table, names):
    for swatch, colour in names.items():
        pixel = np.broadcast_to(srgb(table[swatch]), (4, 4, 3))
        assert attributes.colour_matches(colour, pixel), (swatch, colour, attributes.hsv(srgb(table[swatch])))


def test_the_issues_brown_is_brown_only():
    brown = np.broadcast_to(np.float32([0.48, 0.39, 0.29]), (4, 4, 3))  # v2's mean basecolor, issue 12
    assert attributes.colour_names(brown) == ["brown"]


def test_unknown_colour_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown colour name 'purple'"):
        attributes.colour_matches("purple", np.zeros((2, 2, 3)))


def test_metal_and_gloss_checks():
    steel = generate("brushed_metal", 0, 64, metal="steel", roughness=0.2)
    stone = generate("flagstone", 0, 64)
    metal_of = lambda m: float(m.metallic.mean())  # noqa: E731
    rough_of = lambda m: float(m.roughness.mean())  # noqa: E731
    assert attributes.metal_matches("metal", metal_of(steel)) and not attributes.metal_matches("metal", metal_of(stone))
    assert attributes.metal_matches("not metal", metal_of(stone)) and not attributes.metal_matches("not metal", metal_of(steel))
    assert attributes.gloss_matches("glossy", rough_of(steel)) and not attributes.gloss_matches("matte", rough_of(steel))
    assert attributes.gloss_matches("matte", rough_of(stone)) and not attributes.gloss_matches("glossy", rough_of(stone))
    assert not attributes.gloss_matches("glossy", 0.5) and not attributes.gloss_matches("matte", 0.5)  # satin: neither
    with pytest.raises(ValueError, match="gloss expectation must be one of"):
        attributes.gloss_matches("shiny", 0.1)


def test_gloss_thresholds_separate_procedural_finishes():
    glossy = [generate("square_tiles", s, 64, glaze="glossy", wear=0.2) for s in range(3)]
    glossy += [generate("wood_planks", s, 64, finish="glossy") for s in range(3)]
    matte = [generate("leather", s, 64, finish="matte") for s in range(3)]
    matte += [generate("square_tiles", s, 64, glaze="matte") for s in range(3)]
    assert all(attributes.gloss_matches("glossy", float(m.roughness.mean())) for m in glossy)
    assert all(attributes.gloss_matches("matte", float(m.roughness.mean())) for m in matte)


# ----------------------------------------------------------------------------------------------
# The prompt file
# ----------------------------------------------------------------------------------------------


def test_prompt_file_covers_every_family():
    prompts = load_prompts(DEFAULT_PROMPTS)
    assert len(prompts) >= 60
    per_family = {f: sum(p.family == f for p in prompts) for f in FAMILIES}
    assert min(per_family.values()) >= 3, per_family
    assert sum(p.family is None for p in prompts) >= 5
    assert sum(p.colour is not None for p in prompts) >= 30
    assert {p.metal for p in prompts} >= {"metal", "not metal"} and {p.gloss for p in prompts} >= {"glossy", "matte"}


def test_prompts_are_not_procedural_captions():
    prompts = {p.prompt.lower() for p in load_prompts(DEFAULT_PROMPTS)}
    for name, fam in FAMILIES.items():
        for seed in range(200):
            params = sample_params(name, Streams(seed, name)("params"))
            assert fam.caption(params, Streams(seed, name)("caption")).lower() not in prompts


def test_bad_prompt_files_are_clear_errors(tmp_path):
    good = {"id": "a", "prompt": "red bricks", "family": "bricks", "colour": "red", "metal": "not metal", "gloss": None}
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(good | {"family": "brick"}) + "\n")
    with pytest.raises(ValueError, match="family 'brick' is not null or one of"):
        load_prompts(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ValueError, match="duplicate prompt ids"):
        load_prompts(path)
    path.write_text(json.dumps(good | {"color": "red"}) + "\n")
    with pytest.raises(ValueError, match="unknown fields"):
        load_prompts(path)


# ----------------------------------------------------------------------------------------------
# Diversity
# ----------------------------------------------------------------------------------------------


def test_diversity_ignores_shifts_and_sees_new_layouts_and_colours():
    a = source_array(generate("bricks", 1, 256))
    shifted = np.roll(a, (40, 90), axis=(1, 2))
    other = source_array(generate("cobblestone", 2, 256))
    recoloured = a.copy()
    recoloured[0] = (recoloured[0] * 0.6).astype(np.uint8)
    assert diversity.structure_distance(a, shifted) < 0.01 and diversity.colour_distance(a, shifted) == 0
    assert not diversity.clearly_different(a, shifted)
    assert diversity.clearly_different(a, other)
    assert diversity.clearly_different(a, recoloured)
    d = diversity.seed_diversity([a, shifted, other])
    assert d["clear_pairs"] == pytest.approx(2 / 3) and d["all_different"] == 0.0


# ----------------------------------------------------------------------------------------------
# The classifier's code (no real training here)
# ----------------------------------------------------------------------------------------------


def test_split_seeds_follow_the_dataset_split():
    seeds = split_seeds("marble", "test", 5)
    assert len(seeds) == 5 and all(split_of(s) == "test" and s % len(FAMILY_NAMES) == FAMILY_NAMES.index("marble") for s in seeds)
    assert not set(seeds) & set(split_seeds("marble", "train", 200))


def _source_from_height(height: np.ndarray) -> torch.Tensor:
    n = normal_from_height(torch.from_numpy(height)[None, None], 4.0)[0]
    return torch.cat([torch.zeros(3, *height.shape), n[:2] * 0.5 + 0.5, torch.zeros(3, *height.shape)])


def test_rotating_and_mirroring_turn_the_normals_with_the_image():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32] / 32
    height = (0.5 + 0.2 * np.sin(2 * np.pi * (2 * x + rng.random())) * np.cos(2 * np.pi * (y + 0.3 * x))).astype(np.float32)
    src = _source_from_height(height)
    for k in range(4):
        expected = _source_from_height(np.ascontiguousarray(np.rot90(height, k)))
        assert torch.allclose(rotate_normals(src, k)[3:5], expected[3:5], atol=1e-5)
    assert torch.allclose(flip_horizontal(src)[3:5], _source_from_height(np.ascontiguousarray(height[:, ::-1]))[3:5], atol=1e-5)


def test_hue_rotation_turns_red_to_green_and_keeps_grey():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    grey = torch.full((1, 3, 1, 1), 0.4)
    out = hue_rotation(red - red.mean(1, keepdim=True), torch.tensor([2 * math.pi / 3])) + red.mean(1, keepdim=True)
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
    assert torch.allclose(hue_rotation(grey - 0.4, torch.tensor([1.0])) + 0.4, grey)


def test_views_inputs_and_augmentation_shapes():
    src = source_array(generate("fabric", 5, 512))
    assert src.shape == (8, 256, 256) and src.dtype == np.uint8
    views = eval_views(src)
    assert views.shape == (5, 8, 128, 128)
    x = to_input(views)
    assert x.shape == (5, 6, 128, 128) and torch.isfinite(x).all()
    g = torch.Generator().manual_seed(0)
    batch = augment(np.stack([src, src]), g)
    assert batch.shape == (2, 8, 128, 128) and 0 <= float(batch.min()) and float(batch.max()) <= 1
    assert not torch.allclose(batch[0], batch[1])  # two random views differ
    again = augment(np.stack([src, src]), torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)  # deterministic by seed


def test_tiny_training_run_saves_and_loads(tmp_path):
    cfg = TrainConfig(per_family=1, sizes=(64,), steps=2, batch=4, widths=(8, 8))
    net = train_classifier(cfg, tmp_path)
    loaded = load_classifier(tmp_path)
    src = np.load(next((tmp_path / "cache").glob("train_*[0-9].npy")))[:2]
    p1, p2 = predict_proba(net, src), predict_proba(loaded, src)
    assert p1.shape == (2, len(FAMILY_NAMES)) and np.allclose(p1.sum(1), 1, atol=1e-5)
    assert np.allclose(p1, p2, atol=1e-6)
    assert json.loads((tmp_path / "classifier_train.json").read_text())["config"]["steps"] == 2


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from benchmarks.material_eval import classifier_train

    cfg = TrainConfig(per_family=1, sizes=(64,), steps=4, batch=4, widths=(8, 8))
    straight = train_classifier(cfg, tmp_path / "a", checkpoint_every=2)
    real_augment, calls = classifier_train.augment, []

    def dying_augment(sources, g):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during step 3
        return real_augment(sources, g)

    monkeypatch.setattr(classifier_train, "augment", dying_augment)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(cfg, tmp_path / "b", checkpoint_every=2)
    assert (tmp_path / "b" / "classifier_checkpoint.pt").is_file()
    monkeypatch.setattr(classifier_train, "augment", real_augment)
    resumed = train_classifier(cfg, tmp_path / "b", checkpoint_every=2)
    assert json.loads((tmp_path / "b" / "classifier_train.json").read_text())["resumed_at"] == 2
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_classifier_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no classifier at"):
        load_classifier(tmp_path)


# ----------------------------------------------------------------------------------------------
# Measures, records, VAE round trip, report, sheets
# ----------------------------------------------------------------------------------------------


def test_procedural_material_measures():
    m = generate("bricks", 4, 128, color="red")
    meas = material_measures(m)
    assert meas["max_seam"] <= 1.05  # procedural materials tile by construction
    assert meas["normal_height"] > 0.99  # their normals are derived from their heights
    assert meas["metallic"] == 0 and 0.8 < meas["roughness"] < 1


def test_reconstruction_errors_of_a_perfect_copy(material):
    e = reconstruction_errors(material, material)
    assert e["psnr"] > 100 and e["colour_shift"] == 0 and e["normal_deg"] < 0.1
    assert e["height_mae"] == e["roughness_mae"] == e["metallic_mae"] == 0 and e["metal_kept"] == 1.0
    shifted = Material(**(material.maps() | {"basecolor": np.clip(material.basecolor + 0.05, 0, 1)}))
    assert reconstruction_errors(material, shifted)["colour_shift"] == pytest.approx(0.05, abs=0.01)


def test_vae_round_trip_runs_through_the_pipeline(tiny_pipe):
    m = generate("hex_tiles", 0, 64)
    rebuilt = reconstruct(tiny_pipe, m)
    assert rebuilt.size == m.size
    assert set(reconstruction_errors(m, rebuilt)) >= {"psnr", "colour_shift", "normal_deg", "metal_kept"}


def test_vae_round_trip_of_a_colour_latent_model_keeps_the_mean_colour():
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(0, vision=False, color_latents=True)  # untrained VAE: only the colour latents keep colour
    m = generate("square_tiles", 0, 64, color="blue")
    errors = reconstruction_errors(m, reconstruct(pipe, m))
    assert errors["colour_shift"] < 0.03


def test_generation_records_resume_and_report(tiny_model_dir, tmp_path):
    prompt = EvalPrompt("p", "red bricks", "bricks", "red", "not metal", "matte")
    settings = Settings(size=32, seeds=2, steps=2)
    info = generate_all(tiny_model_dir, [prompt], settings, tmp_path)
    assert info["student"] is False and info["patched"] == (32 > info["native_size"])
    recs = [load_record(record_path(tmp_path, prompt, s)) for s in range(2)]
    assert recs[0]["source"].shape == (8, 256, 256) and recs[0]["render"].shape[2] == 3
    mtime = record_path(tmp_path, prompt, 0).stat().st_mtime_ns
    generate_all(tiny_model_dir, [prompt], settings, tmp_path)
    assert record_path(tmp_path, prompt, 0).stat().st_mtime_ns == mtime  # kept, not regenerated
    forced = generate_all(tiny_model_dir, [prompt], Settings(size=32, seeds=1, steps=2, patched=True), tmp_path / "patched")
    assert forced["patched"] is True  # the --patched choice overrides the CLI's size rule

    probs = np.full(len(FAMILY_NAMES), 0.01)
    probs[FAMILY_NAMES.index("bricks")] = 0.9
    verdicts = [report.material_verdict(prompt, r["meta"], probs) for r in recs]
    assert all(v["family_ok"] for v in verdicts)
    row = report.prompt_summary(prompt, [r["meta"] for r in recs], verdicts, [r["source"] for r in recs])
    speckle = [chroma_speckle(r["source"]) for r in recs]
    summary = report.model_summary([prompt], [row], [verdicts], [[r["meta"] for r in recs]], info, (speckle, 1.0))
    assert summary["family"] == (1.0, 2) and summary["speckle_ok"] == (1.0, 2)
    table = report.summary_table({"tiny": summary})
    assert "| family accuracy (classifier, in-family materials) | >= 90 % | 100 % (2/2) |" in table
    paths = sheets.contact_sheets([{"lines": sheets.row_lines(row, verdicts), "sources": [r["source"] for r in recs],
                                    "render": recs[0]["render"]}], tmp_path / "sheets", "tiny test")  # fmt: skip
    assert len(paths) == 1 and paths[0].stat().st_size > 1000


def test_speckle_counts_hue_noise_between_cells_but_not_luminance_detail():
    m = generate("concrete", 3, 256, color="grey")
    clean = source_array(m)
    rng = np.random.default_rng(0)
    cells = rng.normal(0, 0.06, (3, 64, 64))  # independent colour per 4 px cell: pastel speckle
    grey = rng.normal(0, 0.06, (1, 64, 64)).repeat(3, axis=0)  # the same change in all three channels: luminance
    def add(src, noise):
        out = src.copy()
        out[:3] = np.clip(src[:3] / 255.0 + noise.repeat(4, axis=1).repeat(4, axis=2), 0, 1) * 255
        return out.astype(np.uint8)
    assert chroma_speckle(clean) < 0.01
    assert chroma_speckle(add(clean, cells)) > 0.03
    assert chroma_speckle(add(clean, grey)) < chroma_speckle(clean) + 0.005


def test_vae_figure_writes_a_png(tmp_path, material):
    path = sheets.vae_figure({"a": (material, material), "b": (material, material)}, tmp_path / "v.png", "t", cell=32)
    from PIL import Image

    assert Image.open(path).size[0] > 64


def test_one_seed_per_prompt_reports_no_diversity_and_everything_else():
    prompt = EvalPrompt("p", "red bricks", "bricks", "red", "not metal", None)
    meta = {"mean_rgb": [0.6, 0.2, 0.1], "hsv": [11.0, 0.83, 0.6], "metallic": 0.0, "roughness": 0.9, "max_seam": 1.0,
            "seam": {"basecolor": 1.0}, "normal_height": 0.9, "seconds": 1.0}  # fmt: skip
    probs = np.full(len(FAMILY_NAMES), 0.01)
    probs[FAMILY_NAMES.index("bricks")] = 0.9
    verdicts = [report.material_verdict(prompt, meta, probs)]
    row = report.prompt_summary(prompt, [meta], verdicts, [np.zeros((8, 256, 256), np.uint8)])
    assert row["diversity"] is None and row["family"] == 1.0 and row["colour"] == 1.0
    summary = report.model_summary([prompt], [row], [verdicts], [[meta]], {}, ([0.03], 0.02))
    assert summary["speckle_ok"] == (0.0, 1)
    table = report.summary_table({"one seed": summary})
    assert "| prompts whose 4 seeds are all clearly different | 4 seeds clearly different | n/a (0/0) |" in table
    assert "| family accuracy (classifier, in-family materials) | >= 90 % | 100 % (1/1) |" in table
    assert "n/a (one seed)" in sheets.row_lines(row, verdicts)[-1] and "| n/a |" in report.prompt_table([row])


def test_caption_prompt_file_is_a_valid_prompt_file_of_test_captions(tmp_path):
    from benchmarks.caption_prompts import FIRST_SEED, main

    assert main(["--out", str(tmp_path / "c.jsonl"), "--per-family", "2"]) == 0
    prompts = load_prompts(tmp_path / "c.jsonl")  # what default_model_eval reads
    assert len(prompts) == 2 * len(FAMILIES) and {p.family for p in prompts} == set(FAMILIES)
    assert all(p.colour is None and p.metal is None and p.gloss is None for p in prompts)
    seeds = [s for s in range(FIRST_SEED, FIRST_SEED + 200) if split_of(s) == "test"][:2]
    first = sample_params("bricks", Streams(seeds[0], "bricks")("params"))
    assert prompts[0].prompt == FAMILIES["bricks"].caption(first, np.random.default_rng(seeds[0]))
    with pytest.raises(SystemExit, match="--per-family must be at least 1"):
        main(["--out", str(tmp_path / "x.jsonl"), "--per-family", "0"])
