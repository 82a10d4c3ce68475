import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stablematerials.cli import main
from stablematerials.io import load_material


def test_generate_writes_materials(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "bars"
    code = main(["generate", "old rusty metal bars", "--out", str(out), "--model", str(tiny_model_dir),
                 "--steps", "2", "--seed", "3", "--size", "32", "--naming", "ambientcg"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "seed 3" in printed
    assert (out / "old_rusty_metal_bars_Color.png").exists()
    m = load_material(out)
    assert m.size == (32, 32) and m.metadata["prompt"] == "old rusty metal bars" and m.metadata["seed"] == 3
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tileable"] is True and meta["num_inference_steps"] == 2 and meta["guidance_scale"] == 7.5


def test_generate_several_is_reproducible_per_seed(tmp_path, tiny_model_dir):
    base = ["--model", str(tiny_model_dir), "--steps", "2", "--size", "16"]
    assert main(["generate", "bricks", "--out", str(tmp_path / "many"), "-n", "2", "--seed", "10", *base]) == 0
    assert main(["generate", "bricks", "--out", str(tmp_path / "one"), "--seed", "11", *base]) == 0
    second = load_material(tmp_path / "many" / "01")
    alone = load_material(tmp_path / "one")
    np.testing.assert_allclose(second.basecolor, alone.basecolor, atol=1 / 255)


def test_generate_from_image(tmp_path, tiny_model_dir):
    Image.new("RGB", (40, 30), (120, 60, 20)).save(tmp_path / "photo.jpg")
    code = main(["generate", "--image", str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "m"),
                 "--model", str(tiny_model_dir), "--steps", "1", "--size", "16"])
    assert code == 0 and load_material(tmp_path / "m").metadata["prompt"] == "<image:photo.jpg>"


def test_generate_from_text_and_image_together(tmp_path, tiny_model_dir):
    Image.new("RGB", (40, 30), (120, 60, 20)).save(tmp_path / "photo.jpg")
    base = ["--image", str(tmp_path / "photo.jpg"), "--model", str(tiny_model_dir), "--steps", "1", "--size", "16", "--seed", "3"]
    assert main(["generate", "blue", "--out", str(tmp_path / "m"), "--image-weight", "0.25", *base]) == 0
    m = load_material(tmp_path / "m")
    assert m.metadata["prompt"] == "<image:photo.jpg> x0.25 + blue"
    assert main(["generate", "--out", str(tmp_path / "i"), *base]) == 0  # the picture alone differs
    assert not np.allclose(load_material(tmp_path / "i").basecolor, m.basecolor)
    assert main(["generate", "blue", "--out", str(tmp_path / "bad"), "--image-weight", "2", *base]) == 2
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--out", "X"], "give a text prompt or --image"),
        (["generate", "x", "--out", "X", "--size", "abc"], "--size must be N or WxH in pixels (e.g. 512 or 768x512), got 'abc'"),
        (["generate", "x", "--out", "X", "--size", "30"], "--size: width must be a positive multiple of 8 pixels, got 30"),
        (["generate", "x", "--out", "X", "--image", "nope.png"], "'nope.png' is not a file"),
        (["generate", "x", "--out", "X", "--image-weight", "0.3"], "--image-weight mixes a text prompt with --image"),
        (["generate", "--image", "nope.png", "--out", "X"], "'nope.png' is not a file"),
        (["generate", "x", "--out", "X", "--steps", "0"], "steps must be a whole number from 1 to 1000, got 0"),
        (["generate", "x", "--out", "X", "-n", "0"], "-n must be a whole number from 1 to 64, got 0"),
    ],
)
def test_generate_bad_input(tmp_path, tiny_model_dir, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code = main(args + ["--model", str(tiny_model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "X").exists()  # nothing half-written


def test_generate_refuses_to_overwrite_and_bad_model(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "exists").mkdir()
    assert main(["generate", "x", "--out", str(tmp_path / "exists"), "--model", str(tiny_model_dir)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", "x", "--out", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "x", "--out", str(tmp_path / "o"), "--model", str(tmp_path)]) == 2
    assert "no model_index.json" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "stablematerials.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "generate" in out.stdout
