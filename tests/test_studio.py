"""The web UI's engine without gradio: request checks, generation with a tiny model, and the picture/file builders."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from stablematerials.io import load_material
from stablematerials.material import MAP_NAMES
from stablematerials.studio import (
    GenerationRequest,
    Limits,
    Studio,
    folder_native_size,
    glb_for,
    light_direction,
    map_images,
    material_name,
    preview_image,
    prune_outputs,
    tiled_view,
    zip_material,
)
from studio_helpers import save_tiny_student_model, write_photo

SMALL = Limits(max_resolution=64, max_variations=3, max_steps=20)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_student_model(tmp_path_factory.mktemp("studio") / "tiny")


@pytest.fixture(scope="module")
def studio(model_dir) -> Studio:
    return Studio(model_dir, limits=SMALL)


@pytest.fixture(scope="module")
def result(studio):
    steps = []
    request = GenerationRequest(prompt="mossy cobblestone path", width=32, height=32, variations=2, seed=11)
    out = studio.generate(request, lambda done, total: steps.append((done, total)))
    return out, steps


@pytest.fixture
def no_embedded_model(monkeypatch, tmp_path):
    monkeypatch.setenv("STABLEMATERIALS_MODEL", str(tmp_path / "no-such-model"))


# ----------------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------------


def test_a_plain_text_request_is_valid():
    GenerationRequest(prompt="rusty metal").validate()
    GenerationRequest(prompt="rusty metal", width=1024, height=512, seed=0, steps=4, variations=4).validate()


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(prompt="   "), "give a text prompt"),
        (dict(prompt="a", image="x.png"), "'x.png' is not a file"),  # text and image together are fine
        ({"prompt": "a", "image_weight": 1.5}, "image weight must be a number from 0 to 1, got 1.5"),
        (dict(prompt="a", width=4096, height=4096), "4096 px is over this server's maximum of 1024"),
        (dict(prompt="a", width=100, height=100), "multiple of 8 pixels, got 100"),
        (dict(prompt="a", width=0, height=64), "width must be a positive multiple of 8"),
        (dict(prompt="a", steps=0), "steps must be a whole number from 1 to 100, got 0"),
        (dict(prompt="a", steps=2.5), "got 2.5"),
        (dict(prompt="a", guidance=float("nan")), "guidance must be a number"),
        (dict(prompt="a", guidance=-1), "got -1"),
        (dict(prompt="a", seed=-3), "seed must be a whole number from 0"),
        (dict(prompt="a", variations=9), "variations must be a whole number from 1 to 4, got 9"),
        (dict(prompt="a", naming="blender"), "naming must be one of plain, ambientcg, polyhaven, got 'blender'"),
        (dict(prompt="a", normal_convention="vulkan"), "got 'vulkan'"),
        (dict(prompt="a", bit_depth=12), "bit depth must be 8 or 16, got 12"),
        (dict(prompt="a", variant="fast"), "model variant must be one of auto, student, teacher, got 'fast'"),
        (dict(prompt="a", tileable="yes"), "tileable must be true or false"),
        (dict(prompt="a", model="/no/such/folder"), "model folder '/no/such/folder' does not exist"),
    ],
)
def test_bad_requests_name_the_bad_value(fields, message):
    with pytest.raises(ValueError) as err:
        GenerationRequest(**fields).validate()
    assert message in str(err.value)


def test_image_prompt_must_be_an_image(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is text, not pixels")
    with pytest.raises(ValueError, match="photo.png' is not a readable image"):
        GenerationRequest(image=str(fake)).validate()
    with pytest.raises(ValueError, match="is not a file"):
        GenerationRequest(image=str(tmp_path / "missing.jpg")).validate()
    GenerationRequest(image=str(write_photo(tmp_path / "real.png"))).validate()


def test_unreadable_model_folders_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no model_index.json"):
        GenerationRequest(prompt="a", model=str(empty)).validate()
    (empty / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="is unreadable: model_index.json"):
        GenerationRequest(prompt="a", model=str(empty)).validate()


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_resolution must be a multiple of 8"):
        Limits(max_resolution=100)
    with pytest.raises(ValueError, match="max_variations must be a positive integer"):
        Limits(max_variations=0)
    with pytest.raises(ValueError, match="over this server's maximum of 64"):
        GenerationRequest(prompt="a", width=128, height=128).validate(SMALL)


def test_the_library_does_not_import_gradio():
    code = "import sys, stablematerials, stablematerials.studio, stablematerials.cli; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def test_model_choices_and_defaults(studio, model_dir):
    choices = studio.model_choices()
    assert [c.path for c in choices][:1] == [model_dir.resolve()]
    assert studio.default_steps() == 4  # the folder has a student UNet
    assert folder_native_size(model_dir) == 16  # tiny UNet sample 8 x VAE scale 2
    done = studio.complete(GenerationRequest(prompt="a"))
    # Default size: the training size but at least 256 px, capped by the server's limit (64 px here).
    assert (done.steps, done.width, done.height) == (4, 64, 64)
    assert isinstance(done.seed, int) and 0 <= done.seed < 2**31
    kept = studio.complete(GenerationRequest(prompt="a", steps=3, width=32, height=24, seed=5))
    assert (kept.steps, kept.width, kept.height, kept.seed) == (3, 32, 24, 5)


def test_without_a_model_generation_says_what_to_do(no_embedded_model):
    studio = Studio(None)
    assert studio.model_choices() == [] and studio.default_model is None
    with pytest.raises(ValueError, match="no model is available: start the app with --model PATH"):
        studio.generate(GenerationRequest(prompt="moss"))


def test_other_folders_can_be_disabled(model_dir, tmp_path, no_embedded_model):
    other = save_tiny_student_model(tmp_path / "other")
    locked = Studio(model_dir, allow_model_folders=False)
    with pytest.raises(ValueError, match="other model folders are disabled"):
        locked.resolve_model(str(other))
    assert locked.resolve_model(str(model_dir)) == model_dir.resolve()
    assert Studio(model_dir).resolve_model(str(other)) == other.resolve()


def test_pipelines_load_once_even_when_asked_from_many_threads(model_dir, tmp_path):
    studio = Studio(model_dir, cache_size=1)
    got = []
    threads = [threading.Thread(target=lambda: got.append(studio.pipeline())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(p is got[0] for p in got)
    assert got[0].is_student
    other = save_tiny_student_model(tmp_path / "other")
    assert studio.pipeline(str(other)) is not got[0]
    assert studio.pipeline() is not got[0]  # cache_size=1: the first model was unloaded, then loaded again


def test_the_request_picks_the_student_or_the_teacher(studio, model_dir, tmp_path):
    assert studio.default_variant() == "student"
    assert studio.uses_student() and studio.uses_student(variant="student") and not studio.uses_student(variant="teacher")
    assert studio.default_steps(variant="teacher") == 50
    fast, full = studio.pipeline(variant="student"), studio.pipeline(variant="teacher")
    assert fast.is_student and not full.is_student and studio.pipeline() is fast
    assert studio.complete(GenerationRequest(prompt="a", variant="teacher")).steps == 50
    request = GenerationRequest(prompt="moss", width=16, height=16, seed=3, steps=2)
    student_made = studio.generate(request).materials[0]
    teacher_made = studio.generate(dataclasses.replace(request, variant="teacher")).materials[0]
    assert not np.allclose(student_made.basecolor, teacher_made.basecolor)  # another UNet sampled
    # A folder with only one of the two UNets: the other one is refused by name.
    only_student = tmp_path / "only_student"
    shutil.copytree(model_dir, only_student)
    shutil.rmtree(only_student / "unet")
    with pytest.raises(ValueError, match="ships only its fast 4-step student .* choose the fast model"):
        studio.generate(dataclasses.replace(request, model=str(only_student), variant="teacher"))
    only_teacher = tmp_path / "only_teacher"
    shutil.copytree(model_dir, only_teacher)
    shutil.rmtree(only_teacher / "unet_lcm")
    assert studio.default_variant(str(only_teacher)) == "teacher" and studio.default_steps(str(only_teacher)) == 50
    with pytest.raises(ValueError, match="has no fast 4-step student .* choose the full model"):
        studio.generate(dataclasses.replace(request, model=str(only_teacher), variant="student"))


def test_a_model_that_prefers_its_teacher_samples_with_it_by_default(studio, model_dir, tmp_path):
    """model_index.json's `prefer_teacher` and `teacher_steps` (the default model v3: its student speckles) make
    "auto" the teacher at the model's own step count, in the studio, load_pipeline and a saved copy alike."""
    from stablematerials.loading import load_pipeline

    folder = tmp_path / "prefers_teacher"
    shutil.copytree(model_dir, folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "prefer_teacher": True, "teacher_steps": 6}))
    assert studio.default_variant(str(folder)) == "teacher" and studio.default_steps(str(folder)) == 6
    assert studio.default_steps(str(folder), "student") == 4 and studio.uses_student(str(folder), "student")
    assert studio.complete(GenerationRequest(prompt="a", model=str(folder))).steps == 6
    pipe = load_pipeline(folder, device="cpu")
    assert not pipe.is_student and pipe.default_num_inference_steps == 6
    assert load_pipeline(folder, student=True, device="cpu").is_student
    pipe.save_pretrained(tmp_path / "saved")  # the settings travel with the model
    saved = json.loads((tmp_path / "saved" / "model_index.json").read_text())
    assert saved["prefer_teacher"] is True and saved["teacher_steps"] == 6
    # the plain tiny model keeps the published behaviour: the student, and 50 teacher steps
    assert studio.default_variant() == "student" and studio.default_steps(variant="teacher") == 50
    (folder / "model_index.json").write_text(json.dumps({**index, "teacher_steps": 0}))
    with pytest.raises(ValueError, match="teacher_steps must be a positive whole number or None, got 0"):
        load_pipeline(folder, student=False, device="cpu")


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


def test_generate_returns_materials_seeds_progress_and_seams(result):
    out, steps = result
    assert steps == [(k, 4) for k in range(1, 5)]  # the student's default 4 steps, both variations in one batch
    assert out.seed == 11 and out.seeds == (11, 12)
    assert out.request.steps == 4 and out.request.seed == 11
    assert len(out.materials) == 2 and all(m.size == (32, 32) for m in out.materials)
    assert not np.allclose(out.materials[0].basecolor, out.materials[1].basecolor)
    assert [m.metadata["seed"] for m in out.materials] == [11, 12]
    assert out.materials[0].metadata["name"] == "mossy_cobblestone_path_11"
    assert out.seconds > 0
    for seam in out.seam:
        assert set(seam) == set(MAP_NAMES)
        assert all(np.isfinite(v) and v >= 0 for pair in seam.values() for v in pair)


def test_a_variations_seed_alone_reproduces_it(studio, result):
    out, _ = result
    again = studio.generate(GenerationRequest(prompt="mossy cobblestone path", width=32, height=32, seed=12))
    np.testing.assert_allclose(again.materials[0].basecolor, out.materials[1].basecolor, atol=1e-5)


def test_random_seed_is_drawn_and_reported(studio):
    out = studio.generate(GenerationRequest(prompt="sand", width=16, height=16, steps=1))
    assert out.seed == out.materials[0].metadata["seed"]


def test_image_prompt_generation(studio, tmp_path):
    photo = write_photo(tmp_path / "bark.png")
    out = studio.generate(GenerationRequest(image=str(photo), width=16, height=16, steps=1, seed=1))
    assert out.materials[0].metadata["prompt"] == "<image:bark.png>"
    assert out.materials[0].metadata["name"] == "bark_1"


def test_generate_validates_before_loading(studio):
    with pytest.raises(ValueError, match="over this server's maximum of 64"):
        studio.generate(GenerationRequest(prompt="a", width=72, height=72))


# ----------------------------------------------------------------------------------------------
# Pictures and files
# ----------------------------------------------------------------------------------------------


def test_map_images_in_order_with_normal_convention(material):
    gl = map_images(material)
    dx = map_images(material, "directx")
    assert [label for _, label in gl] == ["Base color", "Normal", "Height", "Roughness", "Metallic"]
    assert gl[0][0].mode == "RGB" and gl[2][0].mode == "L" and gl[0][0].size == (32, 32)
    g_gl = np.asarray(gl[1][0])[..., 1].astype(int)
    g_dx = np.asarray(dx[1][0])[..., 1].astype(int)
    assert np.abs(g_gl + g_dx - 255).max() <= 1  # green flipped


def test_tiled_view_repeats_the_map(material):
    view = tiled_view(material, "height")
    expected = np.round(np.tile(material.height, (2, 2)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(view), expected)
    big = tiled_view(material, "basecolor", n=3, min_side=200)
    assert big.size == (288, 288)  # 3 x 32 = 96 px, enlarged by a whole factor ceil(200 / 96) = 3
    np.testing.assert_array_equal(np.asarray(big)[::3, ::3], np.asarray(tiled_view(material, "basecolor", n=3)))
    small = tiled_view(material, "normal", max_side=40)
    assert small.size == (40, 40)
    with pytest.raises(ValueError, match="unknown map 'albedo'"):
        tiled_view(material, "albedo")
    with pytest.raises(ValueError, match="n must be a whole number from 1 to 8"):
        tiled_view(material, n=0)


def test_preview_follows_the_light(material):
    left = preview_image(material, light_direction(180, 40), size=32)
    right = preview_image(material, light_direction(0, 40), size=32)
    assert left.size == (64, 32) and left.mode == "RGB"
    assert np.abs(np.asarray(left, float) - np.asarray(right, float)).mean() > 2


def test_light_direction():
    np.testing.assert_allclose(light_direction(0, 90), (0, 0, 1), atol=1e-12)
    np.testing.assert_allclose(light_direction(90, 0.0001)[:2], (0, 1), atol=1e-5)
    x, y, z = light_direction(130, 52)
    assert abs(x * x + y * y + z * z - 1) < 1e-12 and x < 0 < y
    with pytest.raises(ValueError, match="light elevation must be above the surface"):
        light_direction(0, 0)
    with pytest.raises(ValueError, match="light azimuth must be a finite number"):
        light_direction(float("inf"), 30)


@pytest.mark.parametrize(
    "naming, convention, expected",
    [
        ("plain", "opengl", {"basecolor.png", "normal.png", "height.png", "roughness.png", "metallic.png"}),
        ("ambientcg", "directx", {"bumps_7_Color.png", "bumps_7_NormalDX.png", "bumps_7_Displacement.png",
                                  "bumps_7_Roughness.png", "bumps_7_Metalness.png"}),
        ("polyhaven", "both", {"bumps_7_diff.png", "bumps_7_nor_gl.png", "bumps_7_nor_dx.png", "bumps_7_disp.png",
                               "bumps_7_rough.png", "bumps_7_metal.png"}),
    ],
)  # fmt: skip
def test_zip_holds_the_material_folder_in_the_chosen_naming(material, tmp_path, naming, convention, expected):
    material.metadata["name"] = "bumps_7"
    path = zip_material(material, naming, convention, 16, out_dir=tmp_path)
    assert path.name == "bumps_7.zip" and path.parent.parent == tmp_path
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {n.split("/", 1)[0] for n in names} == {"bumps_7"}
        assert {n.split("/", 1)[1] for n in names} == expected | {"metadata.json"}
        archive.extractall(tmp_path / "x")
    assert json.loads((tmp_path / "x" / "bumps_7" / "metadata.json").read_text())["naming"] == naming
    back = load_material(tmp_path / "x" / "bumps_7")
    np.testing.assert_allclose(back.height, material.height, atol=1 / 65535 + 1e-6)
    np.testing.assert_allclose(back.normal, material.normal, atol=2e-3)
    np.testing.assert_allclose(back.basecolor, material.basecolor, atol=0.5 / 255 + 1e-6)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing half-written left beside it


def test_zip_height_bit_depth(material, tmp_path):
    material.metadata["name"] = "bumps"
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        path = zip_material(material, "plain", "opengl", depth, out_dir=tmp_path)
        with zipfile.ZipFile(path) as archive:
            data = np.frombuffer(archive.read("bumps/height.png"), np.uint8)
        assert cv2.imdecode(data, cv2.IMREAD_UNCHANGED).dtype == dtype
    with pytest.raises(ValueError, match="bit_depth must be 8 or 16"):
        zip_material(material, "plain", "opengl", 12, out_dir=tmp_path)


def test_glb_for_plane_and_sphere(material, tmp_path):
    import pygltflib

    material.metadata["name"] = "bumps"
    for shape in ("plane", "sphere"):
        path = glb_for(material, shape, out_dir=tmp_path)
        assert path.name == f"bumps_{shape}.glb"
        data = path.read_bytes()
        assert data[:4] == b"glTF"
        gltf = pygltflib.GLTF2.load_from_bytes(data)
        assert len(gltf.materials) == 1 and len(gltf.images) == 3
    with pytest.raises(ValueError, match="shape must be one of plane, sphere, got 'cube'"):
        glb_for(material, "cube", out_dir=tmp_path)


def test_prune_outputs_removes_only_old_download_folders(material, tmp_path):
    old = zip_material(material, out_dir=tmp_path).parent
    new = glb_for(material, out_dir=tmp_path).parent
    keep = tmp_path / "not-a-download"
    keep.mkdir()
    past = time.time() - 7200
    os.utime(old, (past, past))
    os.utime(keep, (past, past))
    assert prune_outputs(tmp_path, 3600) == 1
    assert not old.exists() and new.exists() and keep.exists()
    assert prune_outputs(tmp_path / "missing", 1) == 0


def test_material_name():
    assert material_name("Mossy  Cobblestone, path!", 42) == "mossy_cobblestone_path_42"
    assert material_name("", None) == "material"
    assert len(material_name("x" * 200, 1)) <= 42


def test_requests_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GenerationRequest(prompt="a").prompt = "b"  # type: ignore[misc]


def test_save_pictures_writes_pngs_in_a_fresh_folder(tmp_path):
    from PIL import Image

    from stablematerials.studio import save_pictures

    red = Image.new("RGB", (4, 4), (255, 0, 0))
    first = save_pictures({"a": red, "b": red.convert("L")}, tmp_path)
    second = save_pictures({"a": red}, tmp_path)
    assert first["a"].parent == first["b"].parent != second["a"].parent  # one new folder per call, never reused
    assert Image.open(first["a"]).getpixel((0, 0)) == (255, 0, 0) and Image.open(first["b"]).mode == "L"
    assert save_pictures({}, tmp_path) == {}
    for bad in ("../x", ".hidden", ""):
        with pytest.raises(ValueError, match="picture names must be plain file names"):
            save_pictures({bad: red}, tmp_path)


# ----------------------------------------------------------------------------------------------
# Photo capture
# ----------------------------------------------------------------------------------------------


def test_capture_reads_a_photo_with_the_models_capture_model(studio, model_dir, tmp_path):
    from stablematerials.capture_request import CaptureRequest

    photo = write_photo(tmp_path / "wall.png", size=40)
    result = studio.capture(CaptureRequest(photo=str(photo), max_size=64))
    m = result.material
    assert m.size == (40, 40) and m.metadata["source"] == "capture" and m.metadata["prompt"] == "<photo:wall.png>"
    assert set(result.seam) == set(MAP_NAMES) and result.seconds > 0
    assert studio.capture_pipeline() is studio.capture_pipeline(str(model_dir))  # loaded once
    again = studio.capture(CaptureRequest(photo=str(photo), max_size=64)).material
    np.testing.assert_array_equal(m.basecolor, again.basecolor)  # deterministic


def test_capture_checks_before_loading_and_names_the_problem(studio, model_dir, tmp_path):
    from stablematerials.capture_request import CaptureRequest

    photo = write_photo(tmp_path / "wall.png")
    with pytest.raises(ValueError, match="max size 128 px is over this server's maximum of 64 px per side"):
        studio.capture(CaptureRequest(photo=str(photo), max_size=128))
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("capture"))
    with pytest.raises(ValueError, match="has no photo-capture model"):
        studio.capture(CaptureRequest(photo=str(photo), model=str(bare), max_size=64))
