"""benchmarks/capture.py end to end on tiny models: every method (the capture model, the luminance baseline (a) and
the image-prompt baseline (b)) is scored on every family, and the sheets and reports are written. The real figures
need the trained capture model; this keeps the benchmark's code paths working."""

from __future__ import annotations

import json

import numpy as np
import pytest
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
