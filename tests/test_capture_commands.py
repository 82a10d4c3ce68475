"""Photo to material where users are: `stablematerials capture` (one photo, folders, resume), the typed request and
the model lookup. The pipeline itself is tested in test_capture.py; the web UI tab in test_app.py / test_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials.capture_request import CaptureRequest, capture
from stablematerials.cli import main
from stablematerials.io import load_material
from stablematerials.loading import capture_model_path, load_capture_pipeline


def write_photo(path: Path, w: int = 60, h: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_capture_one_photo_writes_its_material(tmp_path, tiny_model_with_capture, capsys):
    photo = write_photo(tmp_path / "old wall.jpg")
    out = tmp_path / "wall"
    assert main(["capture", str(photo), "--out", str(out), "--model", str(tiny_model_with_capture),
                 "--naming", "ambientcg"]) == 0  # fmt: skip
    assert f"wrote {out}  (60x40" in capsys.readouterr().out
    m = load_material(out)
    assert m.size == (40, 60) and m.metadata["source"] == "capture" and m.metadata["prompt"] == "<photo:old wall.jpg>"
    assert (out / "old_wall_Color.png").is_file()
    # the same as the Python API on the same photo (16-bit height: compare within one 8-bit step)
    pipe = load_capture_pipeline(tiny_model_with_capture)
    direct = capture(pipe, CaptureRequest(photo=str(photo))).material
    np.testing.assert_allclose(m.basecolor, direct.basecolor, atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(m.height, direct.height, atol=1 / 65535 + 1e-6)


def test_capture_exact_framing_and_max_size(tmp_path, tiny_model_with_capture):
    photo = write_photo(tmp_path / "p.png", 100, 50)
    model = ["--model", str(tiny_model_with_capture)]
    assert main(["capture", str(photo), "--out", str(tmp_path / "a"), "--no-tileable", "--max-size", "64", *model]) == 0
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["tileable"] is False and meta["size"] == [64, 32] and meta["photo_crop"] == [0, 0, 50, 100]


def test_capture_a_folder_resumes_and_reports_bad_photos(tmp_path, tiny_model_with_capture, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "bricks.png")
    write_photo(photos / "Bricks.jpg", seed=1)  # same name, other photo: numbered, not overwritten
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    (photos / "notes.txt").write_text("not a photo")
    out, model = tmp_path / "maps", ["--model", str(tiny_model_with_capture)]
    assert main(["capture", str(photos), "--out", str(out), *model]) == 1  # one photo failed
    printed = capsys.readouterr().out
    assert "failed: " in printed and "broken.png" in printed and "not a readable image" in printed
    assert sorted(p.name for p in out.iterdir()) == ["Bricks", "bricks_2"]
    assert "3 photos: 2 written, 0 kept, 1 failed" in printed
    first = (out / "Bricks" / "metadata.json").read_bytes()
    (photos / "broken.png").unlink()
    assert main(["capture", str(photos), "--out", str(out), *model]) == 0  # resumed: both kept
    assert "2 photos: 0 written, 2 kept, 0 failed" in capsys.readouterr().out
    assert (out / "Bricks" / "metadata.json").read_bytes() == first


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.png"], "photo 'nope.png' is neither a file nor a folder"),
        (["PHOTO", "--max-size", "8"], "max size must be a whole number of pixels, at least 32, got 8"),
        (["PHOTO", "--max-size", "99999"], "max size 99999 px is over the limit of 2048 px per side"),
        (["PHOTO", "--model", "MODEL_WITHOUT"], "has no photo-capture model"),
        (["JUNK"], "is not a readable image"),
        (["PHOTO", "--out", "."], "is the current folder"),
    ],
)
def test_capture_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_model_dir, tiny_model_with_capture,
                                                         capsys, monkeypatch, args, message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "photo.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    names = {"PHOTO": "photo.png", "JUNK": "junk.png", "MODEL_WITHOUT": str(tiny_model_dir)}
    argv = ["capture", *(names.get(a, a) for a in args)]
    if "--out" not in argv:
        argv += ["--out", "X"]
    if "--model" not in argv:
        argv += ["--model", str(tiny_model_with_capture)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "X").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.png", "photo.png"]  # nothing half-written


def test_capture_model_lookup(tmp_path, tiny_model_with_capture, tiny_model_dir, monkeypatch):
    assert capture_model_path(tiny_model_with_capture) == tiny_model_with_capture / "capture"
    assert capture_model_path(tiny_model_with_capture / "capture") == tiny_model_with_capture / "capture"
    monkeypatch.setenv("STABLEMATERIALS_MODEL", str(tiny_model_with_capture))
    assert capture_model_path() == tiny_model_with_capture / "capture"
    monkeypatch.setenv("STABLEMATERIALS_MODEL", str(tiny_model_dir))
    with pytest.raises(ValueError, match="the default model .* has no photo-capture model"):
        capture_model_path()


def test_capture_request_validation(tmp_path):
    with pytest.raises(ValueError, match="give a photo"):
        CaptureRequest(photo=" ").validate()
    with pytest.raises(ValueError, match="tileable must be true or false"):
        CaptureRequest(photo="x", tileable="yes").validate(check_files=False)
    with pytest.raises(ValueError, match="naming must be one of"):
        CaptureRequest(photo="x", naming="weird").validate(check_files=False)
    with pytest.raises(ValueError, match="is not a file"):
        CaptureRequest(photo=str(tmp_path / "missing.png")).validate()


def test_add_capture_model_puts_a_float16_copy_in_capture(tmp_path, tiny_model_dir, capsys):
    import shutil

    from safetensors.torch import load_file

    from stablematerials.tiny import tiny_capture_pipeline
    from training.add_capture_model import main as add_main

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    index_before = (model / "model_index.json").read_text()
    tiny_capture_pipeline(0).save_pretrained(tmp_path / "run_model")
    assert add_main(["--capture", str(tmp_path / "run_model"), "--model", str(model)]) == 0
    assert "added the capture model" in capsys.readouterr().out
    assert capture_model_path(model) == model / "capture"
    assert (model / "model_index.json").read_text() == index_before  # the text model is untouched
    weights = load_file(model / "capture" / "unet" / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    # the shipped copy reads photos as the run's model does, up to float16 rounding
    photo = np.random.default_rng(1).random((64, 96, 3)).astype(np.float32)
    want = tiny_capture_pipeline(0)(photo, output_type="np").images[0]
    got = load_capture_pipeline(model)(photo, output_type="np").images[0]
    assert np.abs(got - want).max() < 2e-2
    assert add_main(["--capture", str(tmp_path / "run_model"), "--model", str(tmp_path / "nothing")]) == 2
    assert "has no model_index.json" in capsys.readouterr().err
