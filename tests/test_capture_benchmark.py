"""benchmarks/capture.py end to end on tiny models: every method (the capture model, the luminance baseline (a) and
the image-prompt baseline (b)) is scored on every family, and the sheets and reports are written. The real figures
need the trained capture model; this keeps the benchmark's code paths working."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_texture_pairs
from PIL import Image

from benchmarks.capture import main
from stablematerials.tiny import tiny_capture_pipeline


def test_capture_benchmark_runs_every_method(tmp_path, tiny_model_dir, capsys):
    tiny_capture_pipeline(0).save_pretrained(tmp_path / "capture")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(photos / "wall.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(photos / "floor.jpg")
    out = tmp_path / "bench"
    argv = ["--model", str(tmp_path / "capture"), "--out", str(out), "--n", "1", "--size", "64", "--skip-speed", "--families", "bricks,marble",
            "--image-prompt-model", str(tiny_model_dir), "--photos", str(photos)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "capture.json").read_text())
    assert set(result["summary"]) == {"capture", "luminance (a)", "image prompt (b)"}
    for method, groups in result["summary"].items():
        assert set(groups) == {"all", "seen", "held_out"}, method
        assert groups["all"]["photos"] == 2 and all(np.isfinite(v) for v in groups["all"].values())
    assert set(result["ratios"]) == {"normal_vs_luminance", "basecolor_vs_luminance", "held_out_vs_seen",
                                     "held_out_vs_seen_relative_to_luminance"}  # fmt: skip
    for sheet in ("contact_held_out.png", "contact_real.png"):
        assert Image.open(out / sheet).size[0] > 0
    assert "image prompt (b) (all)" in (out / "capture.md").read_text()
    assert "capture (held_out)" in capsys.readouterr().out


def test_capture_benchmark_rejects_unknown_families(tmp_path):
    tiny_capture_pipeline(0).save_pretrained(tmp_path / "capture")
    with pytest.raises(SystemExit, match="--families: unknown bogus"):
        main(["--model", str(tmp_path / "capture"), "--out", str(tmp_path / "bench"), "--families", "bricks,bogus"])


def test_real_maps_benchmark_scores_pairs_and_reads_the_y_convention(tmp_path, capsys):
    """benchmarks/capture_real_maps.py on a folder of texture pairs: a procedural material's render with its own
    normal map (alpha = height) in OpenGL, the same in DirectX (Y flipped on disk), a colour image without a normal
    map and a pair of different sizes (both skipped). The flat normal's error is the true relief's mean tilt."""
    from benchmarks.capture_real_maps import main as real_main

    tiny_capture_pipeline(0).save_pretrained(tmp_path / "capture")
    root = tmp_path / "textures"
    truth = write_texture_pairs(root)
    colour = Image.open(root / "walls" / "gl.png")
    colour.save(root / "odd.png")
    colour.resize((64, 64)).save(root / "odd_norm.png")
    out = tmp_path / "real.json"
    assert real_main(["--model", str(tmp_path / "capture"), "--textures", str(root), "--out", str(out), "--size", "64"]) == 0
    result = json.loads(out.read_text())
    rows = {r["texture"]: r for r in result["textures"]}
    assert set(rows) == {"walls/dx.png", "walls/gl.png"} and result["y_checked"] == 2 and result["y_flipped"] == 1
    assert min(rows["walls/gl.png"]["xy_agreement"]) > 0.5 and not rows["walls/gl.png"]["directx"]
    x, y = rows["walls/dx.png"]["xy_agreement"]
    assert x > 0.5 and y < -0.5 and rows["walls/dx.png"]["directx"] and result["depth_alpha"] == 0
    tilt = float(np.degrees(np.arccos(np.clip(truth[..., 2], -1, 1))).mean())
    for row in rows.values():  # the same relief once the Y convention is read: the same scores
        assert abs(row["flat"] - tilt) < 1.5 and row["capture"] == pytest.approx(rows["walls/gl.png"]["capture"], abs=0.05)
    assert result["summary"]["walls"]["textures"] == 2 and "| all | 2 |" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    for folder, words in ((tmp_path / "empty", "no NAME.EXT"), (tmp_path / "missing", "not a folder")):
        with pytest.raises(SystemExit, match=words):
            real_main(["--model", str(tmp_path / "capture"), "--textures", str(folder), "--out", str(out)])
