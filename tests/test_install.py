"""Installed as users install it: the wheel built from this checkout, installed into a fresh virtual environment
outside the repository, generates with the embedded default model, starts the web UI and runs the training
commands. The venv reuses this interpreter's packages (`--system-site-packages`, `--no-deps --no-index`), so
nothing is downloaded and torch is not replaced; about 35 s on 2 CPU cores (wheel 5 s, install 2 s, the rest loading
torch in each subprocess and the UI's start)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio_helpers import free_port

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (REPO / "assets" / "default-model" / "model_index.json").is_file(), reason="needs the embedded default model"
)


def _source_copy(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied to `target`, so building leaves the tree clean."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=False)  # fmt: skip
    if listed.returncode != 0:  # not a git checkout: everything but build products
        ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
        return Path(shutil.copytree(REPO, target, ignore=ignore))
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict:
    """A fresh venv with the wheel installed, and an environment that does not point at the checkout."""
    root = tmp_path_factory.mktemp("install")
    start = time.perf_counter()
    source = _source_copy(root / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(source)], check=True, capture_output=True, cwd=root)  # fmt: skip
    (wheel,) = (root / "dist").glob("stablematerials-*.whl")
    built = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")],
                   check=True)  # fmt: skip
    python = root / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STABLEMATERIALS_MODEL", "VIRTUAL_ENV")}
    env |= {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "2"}
    work = root / "work"  # outside the repository: nothing of the checkout is importable from here
    work.mkdir()
    print(f"wheel built in {built - start:.1f} s, installed in {time.perf_counter() - built:.1f} s")
    return {"bin": root / "venv" / "bin", "python": python, "env": env, "work": work}


def run(venv: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*args], capture_output=True, text=True, env=venv["env"], cwd=venv["work"], timeout=timeout)


def test_generate_with_the_embedded_model(venv):
    site = venv["python"].parent.parent
    (package,) = site.glob("lib/python*/site-packages/stablematerials")
    assert (package / "default_model" / "unet_lcm" / "diffusion_pytorch_model.safetensors").is_file()
    assert (package.parent / "training" / "configs" / "ldm_small.yaml").is_file() and (package / "webui.py").is_file()
    out = run(venv, str(venv["bin"] / "stablematerials"), "generate", "red bricks", "--out", "x", "--size", "64")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("wrote x  (seed ") and (venv["work"] / "x" / "basecolor.png").is_file()
    # The model used is the wheel's copy (not the checkout's, which an editable install elsewhere could reach).
    metadata = json.loads((venv["work"] / "x" / "metadata.json").read_text())
    assert metadata["model"] == str(package / "default_model") and metadata["prompt"] == "red bricks"


def test_capture_with_the_embedded_model(venv):
    """A photo becomes its own maps with the capture model the wheel ships (default_model/capture)."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype="uint8")).save(venv["work"] / "wall.png")
    out = run(venv, str(venv["bin"] / "stablematerials"), "capture", "wall.png", "--out", "wall_maps")
    assert out.returncode == 0, out.stderr[-2000:]
    metadata = json.loads((venv["work"] / "wall_maps" / "metadata.json").read_text())
    site = venv["python"].parent.parent
    (package,) = site.glob("lib/python*/site-packages/stablematerials")
    assert metadata["model"] == str(package / "default_model" / "capture") and metadata["source"] == "capture"
    assert Image.open(venv["work"] / "wall_maps" / "normal.png").size == (96, 72)  # the photo's own size


def test_the_web_ui_starts(venv):
    port = free_port()
    server = subprocess.Popen([str(venv["bin"] / "stablematerials"), "app", "--port", str(port)], env=venv["env"],
                              cwd=venv["work"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline, page = time.monotonic() + 120, ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert "StableMaterials" in page, server.stderr.read().decode()[-2000:] if server.poll() is not None else ""
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_training_commands_run(venv):
    out = run(venv, str(venv["bin"] / "stablematerials"), "train", "ldm", "--help")
    assert out.returncode == 0 and "--train.max_steps int = " in out.stdout, out.stderr
    # (the module form, `python -m training.X`, and its one-line errors: tests/test_training_commands.py)
