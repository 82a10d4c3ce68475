"""The real-texture A/B of the semi-supervised stream: texture export, concepts and their colour scores, the verdict,
the training and evaluation command lines, and (slow) the whole protocol on tiny models."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import default_model_eval, semi_real
from benchmarks.material_eval.concepts import (
    colour_stats,
    concept_of,
    concept_prompts,
    concept_scores,
    group_concepts,
    mean_scores,
    nearest_concepts,
)
from training.config import LDMConfig, parse_config
from training.config_help import run_main
from training.data import ImageDataset, open_image_source
from training.export_textures import export_textures, png_name
from training.export_textures import main as export_main
from training.image_encoder_data import TEXTURE_PACKAGES, is_held_out

FAKE = {"fake-textures": ("usr/share/games/fake/textures.pk3", "CC0-1.0 (made by the test)")}
REAL_NAME = "openarena-081-textures"  # the layout of a package the library knows, for the command line
COLOURS = {"grass": (60, 140, 50), "lava": (230, 90, 20), "rock": (120, 120, 115)}


def _picture(colour, size: int = 80, fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.asarray(colour) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _members(per_concept: int = 3) -> dict[str, bytes]:
    """Textures of three concepts (each with a held-out and a training one), a same-stem pair of files, textures
    without a material name, a normal map, one undecodable and one too small."""
    members = {}
    for concept, colour in COLOURS.items():
        names = [f"textures/nature/{concept}{i:03d}.png" for i in range(200)]
        held = [n for n in names if is_held_out("fake-textures", n) and is_held_out(REAL_NAME, n)][:1]
        train = [n for n in names if not is_held_out("fake-textures", n) and not is_held_out(REAL_NAME, n)][:per_concept - 1]
        for i, name in enumerate(held + train):
            members[name] = _picture(colour, seed=i)
    members["textures/liquids/lava_flow.jpg"] = _picture(COLOURS["lava"], fmt="JPEG")
    members["textures/liquids/lava_flow.tga"] = _picture(COLOURS["lava"], fmt="TGA")
    members["textures/misc/office_sep01.png"] = _picture((200, 200, 200))  # no material (and no ice)
    members["textures/nature/grass01_nm.png"] = _picture((128, 128, 255))  # a normal map
    members["textures/stone/broken_stone.jpg"] = b"not a picture"
    members["textures/stone/small_stone.png"] = _picture(COLOURS["rock"], size=32)
    return members


def make_texture_root(root: Path, package: str, archive: str) -> Path:
    (root / package / archive).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / package / archive, "w") as z:
        for name, data in _members().items():
            z.writestr(name, data)
    return root


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------


def test_export_writes_pngs_captions_and_sources_and_a_rerun_keeps_them(tmp_path):
    root = make_texture_root(tmp_path / "textures", "fake-textures", FAKE["fake-textures"][0])
    out = tmp_path / "images"
    counts = export_textures(root, out, "all", packages=FAKE)
    assert counts == {"written": 11, "unreadable": 2}  # 9 concept textures, the .jpg/.tga pair; broken and small skipped
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert len(rows) == 11 and len({r["file"] for r in rows}) == 11
    assert {r["caption"] for r in rows} == {"grass", "lava", "rock"}
    assert all(r["licence"] == FAKE["fake-textures"][1] and r["package"] == "fake-textures" for r in rows)
    with Image.open(out / rows[0]["file"]) as im:
        assert im.mode == "RGB" and im.format == "PNG"
    sources = (out / "SOURCES.md").read_text()
    assert "| fake-textures | usr/share/games/fake/textures.pk3 | CC0-1.0 (made by the test) | 11 |" in sources

    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    again = export_textures(root, out, "all", packages=FAKE)
    assert again == {"kept": 11, "unreadable": 2}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps


def test_splits_partition_the_textures(tmp_path):
    root = make_texture_root(tmp_path / "textures", "fake-textures", FAKE["fake-textures"][0])
    n = {s: sum(export_textures(root, tmp_path / s, s, packages=FAKE).values()) for s in ("train", "held_out", "all")}
    assert n["train"] + n["held_out"] == n["all"] and n["held_out"] >= 3  # one held-out texture per concept


def test_exported_folder_is_what_the_semi_supervised_stream_reads(tmp_path):
    root = make_texture_root(tmp_path / "textures", "fake-textures", FAKE["fake-textures"][0])
    export_textures(root, tmp_path / "images", "train", packages=FAKE)
    rows = [json.loads(line) for line in (tmp_path / "images" / "captions.jsonl").read_text().splitlines()]
    data = ImageDataset(open_image_source(tmp_path / "images"), crop_size=32, resolution=64)
    item = data[(0, 7)]
    assert len(data) == len(rows) and item["image"].shape == (3, 32, 32) and item["caption"] == rows[0]["caption"]
    mean = item["image"].mean(dim=(1, 2)).numpy() * 255  # the texture's own colour came through
    assert np.abs(mean - np.asarray(COLOURS[rows[0]["caption"]])).max() < 20


def test_file_names_are_readable_and_keep_the_extension():
    a = png_name({"package": "nexuiz-textures", "member": "textures/liquids/#lava1.jpg"})
    b = png_name({"package": "nexuiz-textures", "member": "textures/liquids/#lava1.tga"})
    assert a == "nexuiz-textures__textures__liquids___lava1.jpg.png" and a != b


def test_command_line_exports_and_names_a_bad_texture_folder(tmp_path, capsys):
    root = make_texture_root(tmp_path / "textures", REAL_NAME, TEXTURE_PACKAGES[REAL_NAME][0])
    assert run_main(export_main, "export", ["--textures", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "unreadable" in capsys.readouterr().out and (tmp_path / "out" / "SOURCES.md").is_file()
    assert run_main(export_main, "export", ["--textures", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == f"export: error: --textures {str(tmp_path / 'nowhere')!r} is not a folder"
    (tmp_path / "empty").mkdir()
    assert run_main(export_main, "export", ["--textures", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds none of the texture packages" in err


# ----------------------------------------------------------------------------------------------
# Concepts and colour scores
# ----------------------------------------------------------------------------------------------


def _item(caption: str, held_out: bool = True, family: str | None = None) -> dict:
    return {"caption": caption, "family": family, "held_out": held_out}


def test_concepts_group_family_less_captions_by_their_noun():
    assert concept_of(_item("green grass")) == "grass"
    assert concept_of(_item("stone wall dark")) == "rock" and concept_of(_item("rocks")) == "rock"  # synonyms, plurals
    assert concept_of(_item("grass rock")) is None  # two concepts: the picture mixes them
    assert concept_of(_item("red brick", family="bricks")) is None  # a procedural family covers it
    items = [_item("grass"), _item("grass"), _item("dry grass"), _item("grass", held_out=False), _item("lava"),
             _item("lava"), _item("rock"), _item("stone"), _item("stone"), _item("stone")]  # fmt: skip
    groups = group_concepts(items, min_held_out=3)
    assert list(groups) == ["rock", "grass"]  # most held-out images first; lava has 2
    assert len(groups["grass"]["held_out"]) == 3 and len(groups["grass"]["train"]) == 1
    assert concept_prompts(groups["rock"]["held_out"], 4) == ["stone", "rock"]  # most frequent first
    assert concept_prompts(groups["grass"]["held_out"], 1) == ["grass"]


def test_colour_statistics_of_flat_and_two_tone_pictures():
    flat = np.full((50, 70, 3), (255, 0, 51), np.uint8)
    assert np.allclose(colour_stats(flat), [1.0, 0.0, 0.2, 0, 0, 0])
    checker = (((np.indices((256, 256)) // 32).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    assert np.allclose(colour_stats(checker), [0.5] * 3 + [0.5] * 3, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        colour_stats(flat.astype(np.float32))


def _stats(colour, n: int, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([np.asarray(colour, float) / 255 + rng.normal(0, 0.02, (n, 3)), np.full((n, 3), spread)], 1)


def test_scores_reward_the_concepts_colour_and_punish_another():
    images = {c: _stats(rgb, 5, seed=i) for i, (c, rgb) in enumerate(COLOURS.items())}
    right = concept_scores({c: _stats(rgb, 4, seed=10 + i) for i, (c, rgb) in enumerate(COLOURS.items())}, images)
    wrong = {"lava": _stats(COLOURS["grass"], 4, spread=0.15)} | {c: _stats(COLOURS[c], 4) for c in ("grass", "rock")}
    wrong = concept_scores(wrong, images)
    assert all(s["nearest_accuracy"] == 1.0 and s["colour_distance"] < 0.05 for s in right.values())
    assert wrong["lava"]["nearest_accuracy"] == 0.0 and wrong["lava"]["colour_distance"] > 0.5
    assert wrong["lava"]["spread_difference"] == pytest.approx(0.10)
    assert mean_scores(wrong)["colour_distance"] > mean_scores(right)["colour_distance"]
    assert mean_scores(wrong)["nearest_accuracy"] == pytest.approx(2 / 3)
    assert nearest_concepts(np.array([[1.0, 0, 0, 0, 0, 0]]), {"a": np.zeros(6), "b": np.array([0.9, 0, 0, 0, 0, 0])}) == ["b"]


def test_paired_difference_and_the_verdict():
    d = semi_real.paired_difference([1.0, 0.0, 1.0, None], [1.0, 1.0, 0.0, 1.0])
    assert d["n"] == 3 and d["difference"] == 0.0 and d["se"] == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(semi_real.paired_difference([1.0], [0.0])["se"])
    base = {"colour_distance": 0.2, "spread_difference": 0.0, "nearest_accuracy": 0.5}
    a = {c: dict(base) for c in ("grass", "lava", "rock")}
    b = {c: dict(base, colour_distance=0.1) for c in ("grass", "lava", "rock")}
    kept = {"family": {"difference": -0.02, "se": 0.03}, "colour": {"difference": 0.01, "se": 0.02}}
    assert semi_real.verdict({"A": a, "B": b}, kept)["helps"]
    lost = kept | {"colour": {"difference": -0.10, "se": 0.02}}  # a colour bleed beyond 2 SE
    v = semi_real.verdict({"A": a, "B": b}, lost)
    assert v["concepts_better"] and v["families_kept"] == {"family": True, "colour": False} and not v["helps"]
    b_mixed = b | {"lava": dict(base, colour_distance=0.9)}  # closer on 2 of 3, but further on average
    assert not semi_real.verdict({"A": a, "B": b_mixed}, kept)["concepts_better"]


# ----------------------------------------------------------------------------------------------
# The command lines the protocol runs
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "model_index.json").write_text("{}")
    (tmp_path / "latents").mkdir()
    save_file({"latents": torch.zeros(1, 4, 2, 2)}, tmp_path / "latents" / "shard_00000.safetensors", metadata={"size": "512"})
    make_texture_root(tmp_path / "textures", REAL_NAME, TEXTURE_PACKAGES[REAL_NAME][0])
    return {name: tmp_path / name for name in ("teacher", "latents", "textures", "work")}


def _args(inputs: dict[str, Path], *extra: str):
    return semi_real.parse_args([f"--{k}={v}" for k, v in inputs.items()] + list(extra))


def test_runs_a_and_b_continue_the_teacher_with_the_recipe_and_differ_by_the_images(inputs):
    args = _args(inputs)
    images = args.work / "images_train"
    cmd_a = semi_real.train_command(args, args.work / "run_A", None)
    cmd_b = semi_real.train_command(args, args.work / "run_B", images)
    assert cmd_a[1:3] == cmd_b[1:3] == ["-m", "training.train_ldm"]
    a, b = parse_config(LDMConfig, cmd_a[3:]), parse_config(LDMConfig, cmd_b[3:])  # as train_ldm parses them
    assert a.init_from == str(inputs["teacher"]) and a.data.latents == str(inputs["latents"])
    assert (a.data.crop_size, a.train.batch_size, a.seed, a.diffusion.snr_gamma) == (256, 16, 0, 0.0)  # ldm_v3.yaml
    assert (a.train.lr, a.train.lr_schedule, a.train.warmup_steps, a.train.max_steps) == (5e-5, "constant_with_warmup", 50, 1000)
    assert a.train.checkpoint_every == 100 and a.resume == "latest" and a.semi.images is None
    assert b.semi.images == str(images) and b.semi.resolution == 512  # the latents' material size
    assert (b.semi.view, b.semi.weight, b.semi.start_step) == ("basecolor", 0.05, 200)  # the stream's defaults
    b.semi.images, b.semi.resolution, b.output_dir = None, 0, a.output_dir
    assert b == a


def test_family_evaluation_arguments_parse_and_bad_inputs_exit_2(inputs, capsys):
    args = _args(inputs, "--train-arg=train.log_every=5")
    models = {"teacher": args.teacher, "A": args.work / "run_A" / "model", "B": args.work / "run_B" / "model"}
    e = default_model_eval.parse_args(semi_real.family_argv(args, models))
    assert e.model == [f"{k}={v}" for k, v in models.items()]
    assert (e.size, e.seeds, e.steps, e.student, e.skip_vae, e.work) == (256, 1, 25, False, True, args.work / "eval")
    for bad, message in ((["--steps=0"], "--steps must be at least 1"), (["--train-arg=--lr=1"], "KEY=VALUE"),
                         (["--teacher", str(inputs["latents"])], "not a pipeline folder")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            _args(inputs, *bad)
        assert e.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The whole protocol on tiny models
# ----------------------------------------------------------------------------------------------


def _tiny_inputs(tmp_path: Path) -> dict[str, Path]:
    """A tiny colour-latent teacher, latent shards of its VAE, textures, a tiny classifier and two prompts."""
    from benchmarks.material_eval.classifier_data import FAMILY_NAMES
    from benchmarks.material_eval.classifier_train import TrainConfig, train_classifier
    from stablematerials.tiny import tiny_pipeline
    from training import encode_latents

    tiny_pipeline(0, vision=False, color_latents=True).save_pretrained(tmp_path / "teacher")
    assert encode_latents.main(["--vae", str(tmp_path / "teacher"), "--output_dir", str(tmp_path / "latents"), "--n=4",
                                "--size=32", "--shard_size=4", "--captions=1", "--wrap_margin=8", "--workers=0"]) == 0  # fmt: skip
    make_texture_root(tmp_path / "textures", REAL_NAME, TEXTURE_PACKAGES[REAL_NAME][0])
    train_classifier(TrainConfig(per_family=1, sizes=(64,), steps=2, batch=4, widths=(8, 8)), tmp_path / "classifier")
    for per_family, size in ((1, 512), (1, 256), (4, 512)):  # the verification's test sets, left blank: not judged here
        labels = np.repeat(np.arange(len(FAMILY_NAMES)), per_family)
        np.save(tmp_path / "classifier" / "cache" / f"test_{per_family}_{size}.npy", np.zeros((len(labels), 8, 256, 256), np.uint8))
        np.save(tmp_path / "classifier" / "cache" / f"test_{per_family}_{size}_labels.npy", labels)
    lines = default_model_eval.DEFAULT_PROMPTS.read_text().splitlines()[:2]
    (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    return {name: tmp_path / name for name in ("teacher", "latents", "textures", "classifier")} | {"prompts": tmp_path / "prompts.jsonl"}


@pytest.mark.slow
def test_the_protocol_runs_end_to_end_on_tiny_models_and_resumes(tmp_path):
    inputs = _tiny_inputs(tmp_path)
    argv = [*(f"--{k}={v}" for k, v in inputs.items()), f"--work={tmp_path / 'work'}", "--steps=2", "--size=32",
            "--eval-steps=2", "--concept-materials=2", "--min-held-out=1", "--train-arg=data.crop_size=16",
            "--train-arg=train.batch_size=2", "--train-arg=sample.count=1", "--train-arg=sample.steps=2",
            "--train-arg=train.log_every=1", "--semi-arg=semi.start_step=0", "--semi-arg=semi.batch_size=2",
            "--eval-arg=--verify-per-family=1"]  # fmt: skip
    assert semi_real.main(argv) == 0
    work = tmp_path / "work"
    losses = {lab: (work / f"run_{lab}" / "losses.jsonl").read_text().splitlines() for lab in ("A", "B")}
    assert len(losses["A"]) == len(losses["B"]) == 2
    assert "g_adv" not in losses["A"][-1] and "g_adv" in json.loads(losses["B"][-1])  # only B had the image stream
    results = json.loads((work / "results.json").read_text())
    assert set(results["concept_scores"]) == {"teacher", "A", "B"}
    assert set(results["concepts"]) == {"grass", "lava", "rock"} and results["verdict"]["concepts"] == 3
    assert set(results["families"]["A"]) >= {"family", "colour"} and results["family_differences"]["family"]["n"] >= 1
    assert "**Verdict: B" in (work / "report.md").read_text()
    for lab in ("teacher", "A", "B"):
        with Image.open(work / "sheets" / f"{lab}_concepts.png") as sheet:
            assert sheet.height > 3 * 100
    stamps = {p: p.stat().st_mtime_ns for p in [*work.glob("run_*/model/model_index.json"), *work.glob("concepts/*/*.npz")]}
    assert semi_real.main(argv) == 0  # a rerun finds every stage done
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
