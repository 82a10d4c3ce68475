"""The web UI end to end: `stablematerials.webui` served on a loopback port with a tiny model, called through
`gradio_client`; `app.py` and `stablematerials app` as its launchers."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client", reason="the web UI needs the `app` extra (gradio)")
pytest.importorskip("gradio", reason="the web UI needs the `app` extra (gradio)")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import stablematerials.webui as app  # noqa: E402
from stablematerials.studio import Limits, Studio  # noqa: E402
from stablematerials.studio.options import is_loopback  # noqa: E402
from studio_helpers import running_app, save_tiny_student_model, write_photo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Output order of /generate: maps, tiled, seam, preview, 3D model, zip, glb, (3 states skipped) history, seed, status.
MAPS, TILED, SEAM, PREVIEW, MODEL3D, ZIP, GLB, HISTORY, SEED, STATUS = range(10)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_student_model(tmp_path_factory.mktemp("app") / "tiny")


@pytest.fixture(scope="module")
def client(model_dir):
    engine = Studio(model_dir, limits=Limits(max_resolution=64, max_variations=3))
    with running_app(engine, max_queue=2) as url:
        yield Client(url, verbose=False, download_files=True)


@pytest.fixture(scope="module")
def made(client):
    return client.predict(prompt="mossy cobblestone path", resolution="32", random_seed=False, seed=7,
                          naming="ambientcg", normal_convention="directx", bit_depth=8, api_name="/generate")  # fmt: skip


def test_importing_app_starts_nothing():
    code = (
        "import sys, threading\n"
        "import stablematerials.webui as app\n"
        "assert callable(app.build_demo) and callable(app.main)\n"
        "print(threading.active_count(), 'stablematerials.pipeline' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "False", "False"]  # no thread, no server, no model code loaded
    assert not (REPO / "app.pyi").exists()  # gradio writes stubs beside modules that subclass components


def test_generate_returns_maps_views_and_files(made, tmp_path):
    maps = made[MAPS]
    assert [m["caption"] for m in maps] == ["Base color", "Normal", "Height", "Roughness", "Metallic"]
    images = [Image.open(m["image"]) for m in maps]
    assert all(im.size == (32, 32) for im in images)
    assert images[0].mode == "RGB" and images[2].mode in ("L", "RGB")
    tiled = Image.open(made[TILED])
    assert tiled.width == tiled.height and tiled.width % 64 == 0 and tiled.width >= 512  # 2x2 of 32 px, enlarged
    assert "Seam score" in made[SEAM] and "Base color" in made[SEAM]
    assert Image.open(made[PREVIEW]).size == (512, 256)  # sphere and plane side by side
    assert Path(made[MODEL3D]).read_bytes()[:4] == b"glTF" and Path(made[GLB]).name.endswith("_plane.glb")
    assert made[SEED] == 7 and "seed **7**" in made[STATUS]
    assert len(made[HISTORY]) == 1 and "seed 7" in made[HISTORY][0]["caption"]
    with zipfile.ZipFile(made[ZIP]) as archive:
        names = sorted(archive.namelist())
        height = np.asarray(Image.open(archive.open("mossy_cobblestone_path_7/mossy_cobblestone_path_7_Displacement.png")))
    assert Path(made[ZIP]).name == "mossy_cobblestone_path_7.zip"
    assert names == sorted(
        f"mossy_cobblestone_path_7/{n}"
        for n in ("metadata.json", "mossy_cobblestone_path_7_Color.png", "mossy_cobblestone_path_7_NormalDX.png",
                  "mossy_cobblestone_path_7_Displacement.png", "mossy_cobblestone_path_7_Roughness.png",
                  "mossy_cobblestone_path_7_Metalness.png")
    )  # fmt: skip
    assert height.dtype == np.uint8 and height.shape == (32, 32)  # 8-bit height as asked


def test_a_seed_reproduces_its_material_and_history_grows(client, made):
    again = client.predict(prompt="mossy cobblestone path", resolution="32", random_seed=False, seed=7,
                           api_name="/generate")  # fmt: skip
    np.testing.assert_array_equal(np.asarray(Image.open(again[MAPS][0]["image"])),
                                  np.asarray(Image.open(made[MAPS][0]["image"])))  # fmt: skip
    assert again[SEED] == 7
    varied = client.predict(prompt="rusty metal", resolution="16", variations=2, api_name="/generate")
    assert varied[SEED] != 7 and "2 materials" in varied[STATUS]
    # gradio_client keeps one session: the history holds this call's two materials first, then the earlier ones.
    assert len(varied[HISTORY]) >= 2 and varied[HISTORY][0]["caption"] == f"rusty metal · seed {varied[SEED]}"
    assert varied[HISTORY][1]["caption"] == f"rusty metal · seed {varied[SEED] + 1}"


def test_the_full_model_can_be_chosen(client):
    fast = client.predict(prompt="moss", resolution="16", random_seed=False, seed=5, steps=2, api_name="/generate")
    full = client.predict(prompt="moss", resolution="16", random_seed=False, seed=5, steps=2, variant="teacher",
                          api_name="/generate")  # fmt: skip
    assert "2 steps" in full[STATUS]
    fast_map, full_map = (np.asarray(Image.open(out[MAPS][0]["image"])) for out in (fast, full))
    assert not np.array_equal(fast_map, full_map)  # the teacher UNet sampled, not the student
    with pytest.raises(AppError, match="model variant must be one of auto, student, teacher, got 'quick'"):
        client.predict(prompt="moss", resolution="16", variant="quick", api_name="/generate")


def test_image_prompt(client, tmp_path):
    photo = write_photo(tmp_path / "bark.png")
    out = client.predict(image=handle_file(str(photo)), resolution="16", api_name="/generate")
    assert len(out[MAPS]) == 5
    assert out[HISTORY][0]["caption"].startswith("<image:bark.png>")
    both = client.predict(prompt="blue", image=handle_file(str(photo)), image_weight=0.3, resolution="16",
                          api_name="/generate")  # fmt: skip
    assert both[HISTORY][0]["caption"].startswith("<image:bark.png> x0.3 + blue")
    with pytest.raises(AppError, match="image weight must be a number from 0 to 1, got 2"):
        client.predict(prompt="blue", image=handle_file(str(photo)), image_weight=2, api_name="/generate")


# Output order of /capture: maps, tiled, seam, preview, 3D model, zip, glb, (3 states skipped) history, status.
C_MAPS, C_ZIP, C_HISTORY, C_STATUS = 0, 5, 7, 8


def test_photo_to_material(client, tmp_path):
    photo = write_photo(tmp_path / "old wall.png", size=48)
    out = client.predict(photo=handle_file(str(photo)), photo_size="64", api_name="/capture")
    assert len(out[C_MAPS]) == 5 and out[C_HISTORY][0]["caption"].startswith("<photo:old wall.png>")
    assert "old wall.png" in out[C_STATUS] and "48×48" in out[C_STATUS]
    with zipfile.ZipFile(out[C_ZIP]) as archive:
        meta = [n for n in archive.namelist() if n.endswith("metadata.json")]
        assert meta and '"source": "capture"' in archive.read(meta[0]).decode()
    framed = client.predict(photo=handle_file(str(photo)), photo_tileable=False, api_name="/capture")
    assert "the photo's framing" in framed[C_STATUS]
    with pytest.raises(AppError, match="add a photo of a surface first"):
        client.predict(api_name="/capture")
    fake = tmp_path / "photo.png"
    fake.write_text("not an image")
    with pytest.raises(AppError, match="photo.png' is not a readable image"):
        client.predict(photo=handle_file(str(fake)), api_name="/capture")


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(prompt=""), "give a text prompt"),
        (dict(prompt="moss", resolution="4096"), "4096 px is over this server's maximum of 64 px"),
        (dict(prompt="moss", resolution="huge"), "resolution must be a size in pixels such as 512"),
        (dict(prompt="moss", random_seed=False, seed=None), "enter a seed, or tick 'Random seed'"),
        (dict(prompt="moss", steps=0), "steps must be a whole number from 1 to 100"),
        (dict(prompt="moss", variations=4), "variations must be a whole number from 1 to 3"),
    ],
)
def test_bad_input_gets_a_clear_message(client, fields, message):
    with pytest.raises(AppError) as err:
        client.predict(api_name="/generate", **fields)
    assert message in str(err.value)


def test_bad_files_and_folders_get_a_clear_message_and_the_server_keeps_going(client, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("not an image")
    with pytest.raises(AppError, match="photo.png' is not a readable image"):
        client.predict(image=handle_file(str(fake)), api_name="/generate")
    empty = tmp_path / "model"
    empty.mkdir()
    with pytest.raises(AppError, match="is not a pipeline folder: it has no model_index.json"):
        client.predict(prompt="moss", model_folder=str(empty), api_name="/generate")
    out = client.predict(prompt="moss", resolution="16", api_name="/generate")
    assert len(out[MAPS]) == 5


def test_a_full_queue_says_the_server_is_busy(client):
    jobs = [client.submit(prompt=f"stone {k}", resolution="64", steps=6, api_name="/generate") for k in range(8)]
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(len(job.result(timeout=120)[MAPS]))
        except Exception as e:  # noqa: BLE001 - the busy answer is what is being checked
            outcomes.append(str(e))
    done = [o for o in outcomes if o == 5]
    busy = [o for o in outcomes if isinstance(o, str)]
    assert done and busy, outcomes
    assert all("Queue is full" in o for o in busy), busy
    assert len(done) + len(busy) == len(jobs)


def test_pictures_reach_gradio_as_files_not_images(model_dir, tmp_path):
    """Gradio saves a returned PIL image by truncating and rewriting its cache file, so two requests returning the
    same picture could serve it empty (seen once in CI under a full queue); every picture must go out as a file."""
    from stablematerials.material import Material

    demo = app.build_demo(Studio(model_dir, limits=Limits(max_resolution=64)), work_dir=tmp_path)
    handlers = {f.fn.__name__: f.fn for f in demo.fns.values()}
    form = dict(prompt="moss", negative_prompt="", steps=2, guidance=7.5, seed=3, random_seed=False, tileable=True,
                resolution="32", variations=1, model_folder="", variant="auto", naming="plain",
                normal_convention="opengl", bit_depth=8, tiled_map="basecolor", light_azimuth=30.0,
                light_elevation=45.0, shape="plane")  # fmt: skip
    out = {getattr(k, "elem_id", None) or type(v).__name__: v for k, v in handlers["on_generate"]([], **form).items()}
    material = out["Material"]
    assert isinstance(material, Material)
    light = handlers["on_light"](material, 10.0, 20.0)
    retiled = handlers["on_tiled_map"](material, "roughness")
    pictures = [p for p, _ in out["maps"] + out["history"]] + [out["tiled"], out["preview"], light]
    pictures += [v for v in retiled.values() if isinstance(v, str) and v.endswith(".png")]
    assert len(pictures) == 5 + 1 + 4
    for picture in pictures:
        assert isinstance(picture, str) and Path(picture).is_relative_to(tmp_path), picture
    basecolor = np.asarray(Image.open(out["maps"][0][0]))
    assert np.array_equal(basecolor, np.asarray(material.to_pil()["basecolor"]))


def test_page_loads_and_explains_when_no_model_exists(monkeypatch, tmp_path):
    monkeypatch.setenv("STABLEMATERIALS_MODEL", str(tmp_path / "no-model"))
    with running_app(Studio(None)) as url:
        html = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "StableMaterials" in html
        with pytest.raises(AppError, match="no model is available: start the app with --model PATH"):
            Client(url, verbose=False).predict(prompt="moss", api_name="/generate")


def test_request_from_form():
    form = dict(prompt=" moss ", image=None, negative_prompt="", steps=4.0, guidance=7.5, seed=12.0, random_seed=False,
                tileable=True, resolution="64x32", variations=2.0, model="/m", model_folder="  ", naming="plain",
                normal_convention="opengl", bit_depth=16)  # fmt: skip
    request = app.request_from_form(form)
    assert (request.steps, request.seed, request.width, request.height, request.variations) == (4, 12, 64, 32, 2)
    assert request.model == "/m" and request.prompt == " moss " and request.variant == "auto"
    assert app.request_from_form(form | {"variant": "teacher"}).variant == "teacher"
    assert app.request_from_form(form | {"model_folder": "/other"}).model == "/other"
    assert app.request_from_form(form | {"random_seed": True, "seed": None}).seed is None
    assert app.request_from_form(form | {"image": {"path": "/tmp/x.png", "orig_name": "x.png"}}).image == "/tmp/x.png"
    assert request.image_weight == 0.5  # the default share when the page leaves it out
    assert app.request_from_form(form | {"image_weight": 0.25}).image_weight == 0.25
    with pytest.raises(ValueError, match="seed must be a whole number, got 1.5"):
        app.request_from_form(form | {"seed": 1.5})


def test_handlers_work_on_typed_values_without_a_page(model_dir, tmp_path):
    """The page's handlers take a `GenerationRequest` and `ViewSettings` and give files and text: no server needed."""
    engine = Studio(model_dir, limits=Limits(max_resolution=64))
    request = app.GenerationRequest(prompt="moss", seed=4, steps=2, width=32, height=32, variations=2)
    made = app.generate_materials(engine, request, history=[], out_dir=tmp_path)
    assert [m.metadata["seed"] for m in made.history] == [4, 5] and made.seed == 4 and "2 materials" in made.status
    view = app.material_view(made.materials[1], app.ViewSettings(tiled_map="height", naming="polyhaven"), tmp_path)
    assert [label for _, label in view.maps] == ["Base color", "Normal", "Height", "Roughness", "Metallic"]
    assert "**Height**" in view.seam and view.zip.endswith("moss_5.zip") and view.glb.endswith("moss_5_plane.glb")
    assert all(Path(p).is_file() for p in (view.tiled, view.preview, view.zip, view.glb, *(p for p, _ in view.maps)))
    assert app.pick_from_history(made.history, 1) is made.materials[1]
    with pytest.raises(ValueError, match="no longer in this session's history"):
        app.pick_from_history(made.history, 2)


def test_command_line_options():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert app.main(["--max-queue", "0"]) == 2
    with pytest.raises(SystemExit):
        app.main(["--no-such-option"])


def test_launchers_show_the_same_options(capsys):
    """`python app.py` (a checkout) and `stablematerials app` (any install) start the same page with the same options;
    bad options fail before gradio loads."""
    import runpy

    from stablematerials.cli import main as cli_main

    launcher = runpy.run_path(str(REPO / "app.py"), run_name="app")  # as `import app`: defines, starts nothing
    assert launcher["main"] is app.main and launcher["build_demo"] is app.build_demo
    with pytest.raises(SystemExit):
        cli_main(["app", "--help"])
    assert "--max-queue" in capsys.readouterr().out
    assert cli_main(["app", "--max-size", "30"]) == 2
    assert capsys.readouterr().err == "stablematerials app: error: --max-size must be a positive multiple of 8, got 30\n"
