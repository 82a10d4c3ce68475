"""Batch generation: prompt files, failures recorded, resume after a stop and after a kill, two processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from PIL import Image

from stablematerials import load_material
from stablematerials.batch import derive_seed, expand_tasks, read_items
from stablematerials.generation import GenerationRequest
from stablematerials.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
RUN_ARGS = ["--size", "32", "--steps", "2", "--preview-size", "32", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny model gains nothing from two, and on a busy shared CPU two are several times
    slower. Restored after the module; subprocesses get OMP_NUM_THREADS=1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight pipeline saved as a model folder."""
    from stablematerials.tiny import tiny_pipeline

    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny_pipeline(seed=0).save_pretrained(path)
    return path


def write_inputs(folder: Path) -> dict[str, Path]:
    """A JSONL and a CSV describing the same items, with a readable and an unreadable image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / "photo.png")
    (folder / "broken.png").write_bytes(b"this is not a png file")
    jsonl = folder / "items.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "red clay bricks", "name": "bricks", "seed": 11}),
                json.dumps({"prompt": "weathered oak planks", "name": "oak", "variations": 2, "guidance": 5}),
                json.dumps({"image": "photo.png", "name": "photo", "seed": 3, "tileable": False}),
                json.dumps({"image": "broken.png", "name": "broken"}),
                json.dumps({"prompt": "blue tiles", "name": "tiles", "colour": "blue"}),
            ]
        )
        + "\n"
    )
    csv_path = folder / "items.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "prompt", "image", "seed", "variations", "guidance", "tileable"])
        w.writerow(["bricks", "red clay bricks", "", "11", "", "", ""])
        w.writerow(["oak", "weathered oak planks", "", "", "2", "5", ""])
        w.writerow(["photo", "", "photo.png", "3", "", "", "false"])
        w.writerow(["broken", "", "broken.png", "", "", "", ""])
        w.writerow(["tiles", "blue tiles", "", "many", "", "", ""])
    return {"jsonl": jsonl, "csv": csv_path}


GOOD = ["bricks", "oak_v1", "oak_v2", "photo"]


@pytest.fixture(scope="module")
def reference_run(model_dir, tmp_path_factory):
    """One single-process run of the mixed JSONL batch: (inputs, output folder, exit code)."""
    inputs = write_inputs(tmp_path_factory.mktemp("inputs"))
    out = tmp_path_factory.mktemp("ref") / "out"
    args = ["batch", str(inputs["jsonl"]), "--out", str(out), "--model", str(model_dir), "--orm", "--glb", *RUN_ARGS]
    code = cli_main(args)
    return inputs, out, code


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def maps_close(a: Path, b: Path) -> bool:
    ma, mb = load_material(a), load_material(b)
    return all(np.allclose(x, y, atol=1.5 / 255) for x, y in zip(ma.maps().values(), mb.maps().values(), strict=True))


# ----------------------------------------------------------------------------------------------
# Reading prompt files
# ----------------------------------------------------------------------------------------------


def test_read_txt_csv_jsonl_and_image_folder(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("# materials\nmossy stone\n\n  rusty metal plate  \n# the end\nmossy stone\n")
    items = read_items(txt, GenerationRequest(steps=3, width=64, height=64, tileable=False))
    assert [it.request.prompt for it in items] == ["mossy stone", "rusty metal plate", "mossy stone"]
    assert [it.name for it in items] == ["mossy_stone", "rusty_metal_plate", "mossy_stone_2"]  # unique names
    assert all(it.error is None and it.request.steps == 3 and it.request.width == 64 for it in items)
    assert all(it.request.tileable is False and it.request.variations == 1 for it in items)
    assert items[1].source == "p.txt:4"

    inputs = write_inputs(tmp_path / "in")
    by_name = {it.name: it for it in read_items(inputs["csv"])}
    oak, photo = by_name["oak"].request, by_name["photo"].request
    assert oak.variations == 2 and oak.guidance == 5.0 and oak.seed is None
    assert photo.image == str(tmp_path / "in" / "photo.png") and photo.tileable is False and photo.prompt == ""
    assert "seed must be a whole number" in by_name["tiles"].error and "'many'" in by_name["tiles"].error

    items = read_items(inputs["jsonl"])
    assert [it.error is None for it in items] == [True, True, True, True, False]
    assert "unknown field 'colour'" in items[4].error

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a", "name": "x"}\n[1, 2]\n{"name": "y", "seed": 1}\n{oops\n'
        '{"prompt": "c", "name": "x"}\n{"prompt": "d", "size": 30}\n{"prompt": "e", "steps": true}\n'
        '{"prompt": "f", "image_weight": 0.5}\n{"prompt": "g", "image": "c.png", "image_weight": 3}\n'
        '{"prompt": "blue", "image": "c.png", "image_weight": 0.3}\n'
    )
    items = read_items(bad)
    errors = [it.error for it in items]
    assert errors[0] is None
    assert "expected a JSON object" in errors[1]
    assert "give a prompt, an image, or both" in errors[2]
    assert "image_weight mixes a prompt with an image; give both" in errors[7]
    assert "image_weight must be a number from 0 to 1, got 3" in errors[8]
    assert errors[9] is None and items[9].request.image_weight == 0.3 and items[9].request.prompt == "blue"
    assert "not valid JSON" in errors[3]
    assert "duplicate name 'x'" in errors[4]
    assert "size: width must be a positive multiple of 8 pixels, got 30" in errors[5]
    assert "steps must be a whole number from 1 to 1000, got True" in errors[6]

    images = tmp_path / "images"
    images.mkdir()
    for n in ("b", "a"):
        Image.new("RGB", (8, 8)).save(images / f"{n}.png")
    (images / "notes.md").write_text("not an image")
    assert [(it.name, Path(it.request.image).name) for it in read_items(images)] == [("a", "a.png"), ("b", "b.png")]

    with pytest.raises(ValueError, match="must end in"):
        read_items(tmp_path / "in" / "photo.png")
    with pytest.raises(ValueError, match="neither a file nor a folder"):
        read_items(tmp_path / "nothing.txt")


def test_seeds_are_fixed_per_task_whatever_the_order():
    items = read_items_from_lines(
        ['{"prompt": "a", "name": "a", "seed": 7, "variations": 3}', '{"prompt": "b", "variations": 2}']
    )
    tasks = expand_tasks(items, base_seed=1)
    assert [(t.output_name, t.variation) for t in tasks] == [
        ("a_v1", 1),
        ("a_v2", 2),
        ("a_v3", 3),
        ("b_v1", 1),
        ("b_v2", 2),
    ]
    assert [t.seed for t in tasks[:3]] == [7, 8, 9]
    assert tasks[3].seed == derive_seed(1, "b", 1) and tasks[4].seed == derive_seed(1, "b", 2)
    assert tasks[3].seed != tasks[4].seed and 0 <= tasks[3].seed < 2**63
    reordered = expand_tasks(list(reversed(items)), base_seed=1)
    assert {t.output_name: t.seed for t in reordered} == {t.output_name: t.seed for t in tasks}
    assert derive_seed(2, "b", 1) != derive_seed(1, "b", 1)
    # An item whose output folder another item already uses is invalid.
    clash = expand_tasks(
        read_items_from_lines(['{"prompt": "a", "name": "a", "variations": 2}', '{"prompt": "b", "name": "a_v1"}'])
    )
    assert "already used" in clash[-1].item.error


def read_items_from_lines(lines: list[str]):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return read_items(path)


# ----------------------------------------------------------------------------------------------
# A batch run
# ----------------------------------------------------------------------------------------------


def test_batch_writes_materials_summary_and_records_failures(reference_run):
    _, out, code = reference_run
    assert code == 1  # some items failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"generated": 4, "skipped": 0, "failed": 2, "pending": 0}
    rows = {r["name"]: r for r in summary["items"]}
    assert sorted(n for n, r in rows.items() if r["status"] == "generated") == sorted(GOOD)
    assert "broken.png" in rows["broken"]["reason"] and "not a readable image" in rows["broken"]["reason"]
    assert "items.jsonl:5" in rows["tiles"]["reason"] and "unknown field 'colour'" in rows["tiles"]["reason"]
    assert rows["bricks"]["seed"] == 11 and rows["oak_v1"]["seed"] == derive_seed(0, "oak", 1)
    for name in GOOD:
        folder = out / name
        assert rows[name]["path"] == str(folder)
        assert set(rows[name]["seam"]) == {"basecolor", "normal", "height", "roughness", "metallic"}
        assert all(np.isfinite(v) for v in rows[name]["seam"].values())
        material = load_material(folder)
        assert material.size == (32, 32)
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["batch"]["seed"] == rows[name]["seed"] and meta["seed"] == rows[name]["seed"]
        assert (folder / "orm.png").is_file()
        glb = pygltflib.GLTF2.load_from_bytes((folder / f"{name}.glb").read_bytes())
        assert glb.materials[0].name == name and len(glb.images) == 3
        with Image.open(folder / "preview.png") as preview:
            assert preview.size == (64, 32)  # render_preview: sphere and plane side by side
    assert load_material(out / "photo").metadata["tileable"] is False
    assert not any(p.name.startswith(".") for p in out.iterdir())  # nothing half-written or partial left
    assert not (out / "broken").exists() and not (out / "tiles").exists()

    with (out / "summary.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["name"] for r in csv_rows] == ["bricks", "oak_v1", "oak_v2", "photo", "broken", "tiles"]
    assert csv_rows[0]["status"] == "generated" and float(csv_rows[0]["seam_height"]) >= 0
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width >= 2 * 128 and sheet.height >= 2 * 128  # four thumbnails in a 2 x 2 grid


def test_resume_after_stop_does_each_material_once(reference_run, model_dir, tmp_path):
    inputs, ref, _ = reference_run
    out = tmp_path / "out"
    args = ["batch", str(inputs["jsonl"]), "--out", str(out), "--model", str(model_dir), "--orm", *RUN_ARGS]
    assert cli_main(args + ["--max-items", "2"]) == 1
    first = json.loads((out / "summary.json").read_text())
    # Invalid items fail without generating; the unreadable image is found only when its turn comes.
    assert first["counts"] == {"generated": 2, "skipped": 0, "failed": 1, "pending": 3}
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_dir()}
    assert sorted(done) == ["bricks", "oak_v1"]

    assert cli_main(args) == 1
    second = json.loads((out / "summary.json").read_text())
    assert second["counts"] == {"generated": 2, "skipped": 2, "failed": 2, "pending": 0}
    status = {r["name"]: r["status"] for r in second["items"]}
    assert status == {"bricks": "skipped", "oak_v1": "skipped", "oak_v2": "generated", "photo": "generated",
                      "broken": "failed", "tiles": "failed"}  # fmt: skip
    assert {n: (out / n).stat().st_mtime_ns for n in done} == done  # the finished folders were not rewritten
    skipped = {r["name"]: r for r in second["items"] if r["status"] == "skipped"}
    assert skipped["bricks"]["seconds"] is not None and skipped["bricks"]["seam"]  # read back from the folder
    for name in GOOD:  # the same materials as the uninterrupted run
        assert maps_close(out / name, ref / name), name

    assert cli_main(args) == 1  # a third run has nothing left to generate
    assert json.loads((out / "summary.json").read_text())["counts"]["generated"] == 0


def test_resume_after_kill_leaves_nothing_corrupt(model_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"material number {k}" for k in range(12)) + "\n")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.batch",
        str(prompts),
        "--out",
        str(out),
        "--model",
        str(model_dir),
        *RUN_ARGS,
    ]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            out.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in out.iterdir())
        ):
            time.sleep(0.05)
        time.sleep(0.1)  # let it get into the middle of the next material
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    visible = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert 1 <= len(visible) < 12, visible
    for name in visible:  # every visible folder is complete
        assert (out / name / "preview.png").is_file() and load_material(out / name).size == (32, 32)
    before = {n: (out / n).stat().st_mtime_ns for n in visible}
    # What a kill in the middle of writing leaves (if this one did not): a half-written folder and temporaries.
    (out / ".material_number_11.k3j2.partial").mkdir(exist_ok=True)
    (out / ".material_number_11.k3j2.partial" / "basecolor.png").write_bytes(b"half")
    (out / ".summary.json.x1.tmp").write_text("{")
    (out / ".summary.part-3.json").write_text("[]")

    assert cli_main(["batch", str(prompts), "--out", str(out), "--model", str(model_dir), *RUN_ARGS]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["skipped"] == len(visible) and summary["counts"]["generated"] == 12 - len(visible)
    assert {n: (out / n).stat().st_mtime_ns for n in visible} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"material_number_{k}" for k in range(12)] + ["summary.json", "summary.csv", "contact_sheet.png"]
    )  # no partial folder or temporary file left


def test_two_processes_split_without_overlap_and_match_one_process(reference_run, model_dir, tmp_path):
    inputs, ref, _ = reference_run
    out = tmp_path / "out2"
    # accelerate 1.x starts several CPU processes (gloo) through its multi-GPU launcher; `--cpu` there would start one.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "pipelines.batch", str(inputs["csv"]), "--out", str(out), "--model", str(model_dir), "--cpu", "--orm",
           *RUN_ARGS]  # fmt: skip
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    summary_path = out / "summary.json"
    assert summary_path.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode != 0  # an item failed, and the exit code says so
    summary = json.loads(summary_path.read_text())
    rows = summary["items"]
    assert summary["counts"] == {"generated": 4, "skipped": 0, "failed": 2, "pending": 0}
    assert len({r["name"] for r in rows}) == len(rows) == 6  # every task exactly once
    assert {r["process_index"] for r in rows} == {0, 1}  # really two processes
    tasks = expand_tasks(read_items(inputs["csv"]))
    owner = {t.output_name: k % 2 for k, t in enumerate(tasks)}
    assert all(r["process_index"] == owner[r["name"]] for r in rows)  # round-robin split
    reasons = {r["name"]: r["reason"] for r in rows if r["status"] == "failed"}
    assert set(reasons) == {"broken", "tiles"} and "seed must be a whole number" in reasons["tiles"]
    for name in GOOD:  # same items and seeds -> the same materials as the single-process JSONL run
        assert maps_close(out / name, ref / name), name
    assert (out / "contact_sheet.png").is_file() and not any(p.name.startswith(".") for p in out.iterdir())


def test_missing_model_is_a_clear_error_before_any_work(tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("stone\n")
    monkeypatch.setenv("STABLEMATERIALS_MODEL", str(tmp_path / "no-model"))
    assert cli_main(["batch", str(prompts), "--out", str(tmp_path / "out")]) == 2
    assert "pass --model PATH" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert (
        cli_main(["batch", str(prompts), "--out", str(tmp_path / "out"), "--model", str(tmp_path), "--size", "30"]) == 2
    )
    assert "--size: width must be a positive multiple of 8 pixels, got 30" in capsys.readouterr().err
