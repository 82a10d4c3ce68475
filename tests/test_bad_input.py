"""Bad input as a new user types it: one clear line on stderr, exit code 2, nothing half-written (issue 13, part 4).

A batch records a bad item as failed (exit code 1) and goes on; bad command-line options stop it with exit code 2
before any work."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials.cli import main
from stablematerials.conditioning import load_image_prompt
from stablematerials.io import AtomicFolder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny model with a teacher and a student, its DDIM schedule offset by one step as the published configs
    (`steps_offset` 1: 1000 steps would reach timestep 1000 of a 1000-step schedule)."""
    from studio_helpers import save_tiny_student_model

    folder = save_tiny_student_model(tmp_path_factory.mktemp("bad-input") / "tiny")
    config_file = folder / "scheduler" / "scheduler_config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text()) | {"steps_offset": 1}))
    return folder


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `stablematerials ARGS`; stderr must be one line."""
    code = main(args)
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err, err
    return code, err.strip()


def leftovers(folder: Path) -> list[str]:
    """Hidden files and folders (what an interrupted atomic write would leave)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A PNG that says it is side x side pixels (a decompression bomb): valid header, a few bytes of image data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grey
    data = zlib.compress(b"\0" * (side // 8 + 1) * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


# ----------------------------------------------------------------------------------------------
# Sizes the machine cannot hold
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "bricks", "--size", "100000"],
        ["batch", "PROMPTS", "--size", "100000"],
        ["procedural", "--family", "bricks", "--size", "100000"],
        ["dataset", "-n", "2", "--size", "100000"],
    ],
    ids=["generate", "batch", "procedural", "dataset"],
)
def test_sizes_above_the_limit_are_refused_naming_it(args, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("STABLEMATERIALS_MAX_SIZE", raising=False)
    prompts = tmp_path / "p.txt"
    prompts.write_text("bricks\n")
    args = [str(prompts) if a == "PROMPTS" else a for a in args] + ["--out", str(tmp_path / "out")]
    code, err = run_cli(args, capsys)
    assert code == 2 and "100000 px is over the limit of" in err and "set STABLEMATERIALS_MAX_SIZE=N to raise it" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# Output locations
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out", [".", "", ".."])
def test_the_current_folder_or_its_parent_is_not_an_output_folder(out, model_dir, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    code, err = run_cli(["generate", "bricks", "--out", out, "--overwrite", "--model", str(model_dir), "--size", "16"], capsys)
    assert code == 2 and ("is the current folder or one of its parents" in err or "the output path is empty" in err)
    assert leftovers(work) == [] and leftovers(tmp_path) == [] and (work / "notes.txt").read_text() == "mine"


def test_atomic_folder_cleans_up_when_the_final_rename_fails(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(OSError):
        with AtomicFolder(tmp_path / "sub" / "..", overwrite=True) as tmp:  # `..` cannot be renamed
            (tmp / "basecolor.png").write_bytes(b"x")
    assert leftovers(tmp_path / "sub") == [] and leftovers(tmp_path) == []


def test_an_unwritable_location_is_refused_before_generating(model_dir, capsys):
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs /sys (a read-only system folder)")
    code, err = run_cli(["generate", "bricks", "--out", "/sys/kernel/stablematerials-test", "--model", str(model_dir)], capsys)
    assert code == 2 and err == "stablematerials generate: error: cannot write into /sys/kernel: Operation not permitted"

def test_batch_into_an_unwritable_location(model_dir, tmp_path, capsys):
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs /sys (a read-only system folder)")
    prompts = tmp_path / "p.txt"
    prompts.write_text("bricks\n")
    code, err = run_cli(["batch", str(prompts), "--out", "/sys/kernel/x", "--model", str(model_dir)], capsys)
    assert code == 2 and err == "stablematerials batch: error: Operation not permitted: /sys/kernel/x"


def test_overwrite_never_replaces_a_folder_of_other_files(model_dir, tmp_path, capsys):
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "letter.txt").write_text("dear")
    code, err = run_cli(["generate", "bricks", "--out", str(documents), "--overwrite", "--model", str(model_dir)], capsys)
    assert code == 2 and "is not a material folder" in err and "refusing to replace it" in err
    assert (documents / "letter.txt").read_text() == "dear" and leftovers(tmp_path) == []
    material = tmp_path / "material"  # a material folder is replaced
    args = ["generate", "bricks", "--model", str(model_dir), "--size", "16", "--steps", "1", "--out", str(material)]
    assert main(args) == 0 and main(args + ["--overwrite", "--seed", "4"]) == 0
    assert json.loads((material / "metadata.json").read_text())["seed"] == 4 and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# Steps, guidance, seeds
# ----------------------------------------------------------------------------------------------


def test_steps_beyond_the_schedule_are_refused_before_loading(model_dir, tmp_path, capsys):
    base = ["--out", str(tmp_path / "out"), "--model", str(model_dir), "--no-student"]
    code, err = run_cli(["generate", "bricks", "--steps", "1000", *base], capsys)
    assert code == 2 and err.endswith("steps must be from 1 to 999 for this model (DDIMScheduler over 1000 training timesteps), got 1000")
    code, err = run_cli(["generate", "bricks", "--steps", "10000", *base], capsys)
    assert code == 2 and err.endswith("steps must be a whole number from 1 to 1000, got 10000")
    code, err = run_cli(["generate", "bricks", "--steps", "60", "--student", *base[:-1]], capsys)
    assert code == 2 and err.endswith("steps must be from 1 to 50 for this model (LCMScheduler over 1000 training timesteps), got 60")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "bricks", "steps": 1000}\n{"prompt": "tiles", "steps": 1, "size": 16}\n')
    code, err = run_cli(["batch", str(prompts), *base, "--steps", "1000"], capsys)
    assert code == 2 and "got 1000" in err and not (tmp_path / "out").exists()
    # An item's own steps: that item fails with the reason, the batch goes on.
    assert main(["batch", str(prompts), *base, "--no-progress", "--preview-size", "0"]) == 1
    rows = {r["name"]: r for r in json.loads((tmp_path / "out" / "summary.json").read_text())["items"]}
    assert rows["tiles"]["status"] == "generated" and rows["bricks"]["status"] == "failed"
    assert rows["bricks"]["reason"].startswith("steps must be from 1 to 999 for this model")


def test_huge_guidance_and_seed_get_clear_messages(model_dir, tiny_student, tmp_path, capsys):
    base = ["--out", str(tmp_path / "out"), "--model", str(model_dir)]
    code, err = run_cli(["generate", "bricks", "--guidance", "1e308", *base], capsys)
    assert code == 2 and err.endswith("guidance must be a number from 0 to 100, got 1e+308")
    code, err = run_cli(["generate", "bricks", "--seed", str(2**70), *base], capsys)
    assert code == 2 and err.endswith(f"seed must be a whole number from 0 to {2**63 - 1}, got {2**70}")
    with pytest.raises(ValueError, match="guidance_scale must be at most 1000, got 1e"):
        tiny_student("bricks", guidance_scale=1e308, num_inference_steps=1)


# ----------------------------------------------------------------------------------------------
# Image prompts and model folders
# ----------------------------------------------------------------------------------------------


def test_a_decompression_bomb_image_is_refused(model_dir, tmp_path, capsys):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 50_000
    code, err = run_cli(["generate", "--image", str(bomb), "--out", str(tmp_path / "out"), "--model", str(model_dir)], capsys)
    assert code == 2 and "bomb.png' is too large to open safely: Image size (400000000 pixels) exceeds limit" in err
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"image": "bomb.png"}\n')
    assert main(["batch", str(prompts), "--out", str(tmp_path / "b"), "--model", str(model_dir), "--no-progress"]) == 1
    (row,) = json.loads((tmp_path / "b" / "summary.json").read_text())["items"]
    assert row["status"] == "failed" and "bomb.png' is too large to open safely" in row["reason"]
    smaller = bomb_png(tmp_path / "big.png", side=10000)  # between the limit and twice it PIL only warns
    with pytest.raises(ValueError, match="big.png' is too large to open safely: 10000x10000 pixels, more than 89478485"):
        load_image_prompt(smaller)


def test_sixteen_bit_grey_and_exif_orientation(tmp_path):
    grey = np.full((8, 8), 32768, np.uint16)  # mid grey in 16 bits
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    loaded = np.asarray(load_image_prompt(tmp_path / "grey16.png"))
    assert loaded.shape == (8, 8, 3) and np.all(loaded == 128)  # not clipped to white
    photo = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; the picture shows upright when turned 90 degrees
    photo.save(tmp_path / "turned.jpg", exif=exif)
    assert load_image_prompt(tmp_path / "turned.jpg").size == (20, 40)
    assert load_image_prompt(torch.zeros(3, 4, 6)).size == (6, 4)


def test_model_folders_that_mislead(model_dir, tmp_path, capsys):
    a_file = tmp_path / "model.safetensors"
    a_file.write_bytes(b"x")
    base = ["generate", "bricks", "--out", str(tmp_path / "out")]
    code, err = run_cli([*base, "--model", str(a_file)], capsys)
    assert code == 2 and "is a file, not a model folder" in err
    no_unet = tmp_path / "no-unet"
    shutil.copytree(model_dir, no_unet)
    shutil.rmtree(no_unet / "unet")
    shutil.rmtree(no_unet / "unet_lcm")
    code, err = run_cli([*base, "--model", str(no_unet)], capsys)
    assert code == 2 and "has no UNet: neither unet/ nor unet_lcm/" in err
    truncated = tmp_path / "truncated"
    shutil.copytree(model_dir, truncated)
    weights = truncated / "unet_lcm" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, err = run_cli([*base, "--model", str(truncated)], capsys)
    assert code == 2 and "the weights file is damaged or incomplete" in err and not (tmp_path / "out").exists()
    pickled = tmp_path / "pickled"
    shutil.copytree(model_dir, pickled)
    vae = pickled / "vae" / "diffusion_pytorch_model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(vae), vae.with_suffix(".bin"))
    vae.unlink()
    code, err = run_cli([*base, "--model", str(pickled)], capsys)
    assert code == 2 and "convert them to safetensors" in err and "allow_pickle=True).save_pretrained" in err


# ----------------------------------------------------------------------------------------------
# Batch files
# ----------------------------------------------------------------------------------------------


def test_batch_files_with_problems(model_dir, tmp_path, capsys):
    base = ["--out", str(tmp_path / "out"), "--model", str(model_dir), "--no-progress", "--preview-size", "0"]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("bricks\nmossy stone\ncaf\xe9 tiles\n".encode("latin-1"))
    code, err = run_cli(["batch", str(latin1), *base], capsys)
    assert code == 2 and err.endswith("latin1.txt:3: not UTF-8 text (byte 0xe9); save the prompt file as UTF-8")
    no_header = tmp_path / "no_header.csv"
    no_header.write_text("mossy stone\nred bricks\n")
    code, err = run_cli(["batch", str(no_header), *base], capsys)
    assert code == 2 and "has no header line (its first line, 'mossy stone', names no field)" in err
    assert not (tmp_path / "out").exists()


def test_a_duplicate_name_fails_instead_of_passing_as_done(model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "red bricks", "name": "wall", "size": 16, "steps": 1}\n'
                       '{"prompt": "blue tiles", "name": "wall", "size": 16, "steps": 1}\n')  # fmt: skip
    args = ["batch", str(prompts), "--out", str(tmp_path / "out"), "--model", str(model_dir), "--no-progress"]
    assert main(args) == 1
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["items"]
    assert [(r["status"], r["reason"]) for r in rows] == [("generated", ""), ("failed", "p.jsonl:2: duplicate name 'wall'")]
    assert main(args) == 1  # and again on a re-run, where the first item's folder exists
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["items"]
    assert [r["status"] for r in rows] == ["skipped", "failed"]


def test_a_closed_pipe_ends_quietly():
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "stablematerials.cli", "procedural", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)  # fmt: skip
    assert proc.stdout is not None
    # The reader leaves before the first line, as `| true` does (closing after reading a line, as `| head -1` does,
    # races the writer: a fast writer may have flushed everything before the close, and then nothing breaks).
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err == b""
