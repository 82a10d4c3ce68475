"""Photo -> maps: the capture pipeline (tiny seeded predictor), tileable photos, capture metrics and training."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_material, write_texture_pairs
from PIL import Image

from stablematerials.capture import (
    StableMaterialsCapturePipeline,
    load_photo,
    output_size,
    tile_plan,
)
from stablematerials.material import Material
from stablematerials.metrics import capture_errors, max_seam_score, seam_score
from stablematerials.procedural import generate
from stablematerials.render import render_plane
from stablematerials.seamless import calm_overlap_width, make_tileable, min_cut_path
from stablematerials.tiny import tiny_capture_pipeline


def photo(h: int = 48, w: int = 72, seed: int = 0) -> np.ndarray:
    """A photo that does not tile: bumps under a light falling off from left to right, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    bumps = 0.5 + 0.3 * np.sin(x / 3.1 + 1.0) * np.cos(y / 4.3)
    light = 0.4 + 0.6 * x / w
    img = np.stack([bumps * light, 0.8 * bumps * light, 0.5 * light], -1) + rng.normal(0, 0.02, (h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def pipe() -> StableMaterialsCapturePipeline:
    return tiny_capture_pipeline(0)


def test_round_trip_through_save_and_load(pipe, tmp_path: Path) -> None:
    pipe.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "StableMaterialsCapturePipeline" and index["unet"] == ["diffusers", "UNet2DModel"]
    assert index["patch_size"] == 2 and (tmp_path / "model" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    (tmp_path / "model" / "pipeline.py").write_text("raise SystemExit('code from the folder must not run')\n")
    loaded = StableMaterialsCapturePipeline.from_pretrained(tmp_path / "model")
    a, b = pipe(photo()).images[0], loaded(photo()).images[0]
    assert isinstance(b, Material) and b.size == (48, 72)
    for name, arr in a.maps().items():
        np.testing.assert_array_equal(arr, getattr(b, name), err_msg=name)
    assert b.metadata["model"] == str(tmp_path / "model") and b.metadata["source"] == "capture"


def test_deterministic_and_output_types(pipe) -> None:
    img = photo()
    first = pipe(img).images[0]
    np.testing.assert_array_equal(first.normal, pipe(img).images[0].normal)
    # The same photo rounded to 8 bits (exact framing: the tileable crop may move with the rounding).
    framed, rounded = (pipe(x, tileable=False).images[0] for x in (img, Image.fromarray((img * 255).astype(np.uint8))))
    assert np.abs(framed.basecolor - rounded.basecolor).max() < 0.05
    arr = pipe(img, output_type="np").images[0]
    assert arr.shape == (48, 72, 9) and np.allclose(arr, first.to_numpy(), atol=1e-6)
    assert pipe(img, output_type="pt").images[0].shape == (9, 48, 72)
    published = pipe(img, output_type="pil").images[0]  # the published material object, as the text pipeline's
    assert set(published.as_dict()) == {"basecolor", "normal", "height", "roughness", "metallic"}
    assert published.basecolor.size == (72, 48)


def brick_photo() -> np.ndarray:
    """A 64 x 56 photo of procedural bricks under a near point light: textured, and not tileable."""
    maps = generate("bricks", 3, 64).to_tensors()
    return render_plane(maps, torch.tensor([[[1.5, 0.5, 1.5]]]))[0].permute(1, 2, 0).numpy()[:, :56]


def test_tileable_maps_wrap_and_exact_framing_does_not(pipe) -> None:
    img = brick_photo()
    assert max(seam_score(img, 0), seam_score(img, 1)) > 2.0  # the photo itself does not tile
    tiled = pipe(img).images[0]
    assert tiled.size == (64, 56) and max_seam_score(tiled) <= 1.05
    assert tiled.metadata["photo_crop"] == [0, 0, *make_tileable(load_photo(img), 0.125).shape[-2:]]
    assert tiled.metadata["tileable"]
    framed = pipe(img, tileable=False).images[0]
    assert framed.size == (64, 56) and framed.metadata["photo_crop"] == [0, 0, 64, 56]
    # Exact framing: the network on the photo as it is (zero padding, no wrap), pixel for pixel.
    direct = Material.from_model_tensor(pipe.predict(load_photo(img)[None], circular=False))
    np.testing.assert_allclose(framed.to_numpy(), direct.to_numpy(), atol=1e-6)
    assert np.abs(framed.basecolor - tiled.basecolor).mean() > 0.01


def test_circular_prediction_is_shift_equivariant(pipe) -> None:
    x, _ = pipe.prepare_photo(load_photo(photo(64, 96)), (64, 96), tileable=True, overlap=0.125)
    out = pipe.predict(x, circular=True)
    shifted = pipe.predict(torch.roll(x, (8, 16), dims=(-2, -1)), circular=True)
    torch.testing.assert_close(torch.roll(shifted, (-8, -16), dims=(-2, -1)), out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(40, 90), (90, 40), (33, 57)])
def test_non_square_photos(pipe, shape) -> None:
    for tileable in (True, False):
        m = pipe(photo(*shape), tileable=tileable).images[0]
        assert m.size == shape
        assert np.isfinite(m.to_numpy()).all() and np.allclose(np.linalg.norm(m.normal, axis=-1), 1, atol=1e-4)


def test_output_size_limit_and_large_outputs_in_tiles(pipe) -> None:
    assert output_size(3000, 1000, 1024) == (1024, 341) and output_size(500, 300, 1024) == (500, 300)
    assert output_size(3000, 1000, None) == (3000, 1000)
    img = photo(150, 100)
    small = pipe(img, max_size=64).images[0]
    assert small.size == (64, 43)
    # Above tile_size the maps come from overlapping tiles: still the right size, and still wrapping.
    big = pipe(brick_photo(), tile_size=32, max_size=None).images[0]
    assert big.size == (64, 56) and max_seam_score(big) <= 1.05
    framed = pipe(img, tile_size=32, tileable=False).images[0]
    assert framed.size == (150, 100) and np.isfinite(framed.to_numpy()).all()


def test_tile_plan_covers_every_pixel() -> None:
    for n, wrap in [(100, False), (100, True), (40, True), (40, False), (257, True)]:
        length, starts, _ = tile_plan(n, 48, 12, wrap)
        covered = np.zeros(n, int)
        for s in starts:
            covered[(np.arange(length) + s) % n] += 1
        assert covered.min() >= 1 and (wrap or max(starts) + length <= n), (n, wrap)


@pytest.mark.parametrize(
    "bad, words",
    [
        ("/no/such/photo.png", "is not a file"),
        (np.zeros((40, 40, 5)), "(H, W, 3)"),
        (np.zeros((10, 40, 3)), "at least 24"),
        (np.full((40, 40, 3), np.nan, np.float32), "NaN"),
        (torch.zeros(2, 3, 32, 32), "(3, H, W)"),
        (np.zeros((40, 40, 3), dtype=np.int64), "uint8"),
        ([], "empty list"),
    ],
)
def test_bad_photos_raise_one_clear_line(pipe, bad, words) -> None:
    with pytest.raises(ValueError) as info:
        pipe(bad)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_unreadable_file_and_bad_options(pipe, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="object of type NoneType as a photo"):
        pipe(None)
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        pipe(str(junk))
    for kwargs, words in [({"output_type": "latent"}, "output_type"), ({"max_size": 3}, "max_size"),
                          ({"overlap": 0.7}, "overlap"), ({"tile_size": 30}, "tile_size")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            pipe(photo(), **kwargs)
    with pytest.raises(ValueError, match="no model_index.json"):
        StableMaterialsCapturePipeline.from_pretrained(tmp_path)


def test_make_tileable_wraps_and_keeps_the_photo_elsewhere() -> None:
    img = torch.from_numpy(photo(80, 120)).permute(2, 0, 1)
    out = make_tileable(img, 0.125)
    _, h, w = out.shape
    assert 80 - h in range(8, 16) and 120 - w in range(8, 23)  # 0.5-1.5 x (0.125 * 80 = 10, 0.125 * 120 = 15)
    arr = out.permute(1, 2, 0).numpy()
    assert max(seam_score(arr, 0), seam_score(arr, 1)) <= 1.0
    bh, bw = 80 - h, 120 - w
    np.testing.assert_array_equal(arr[bh:, bw:], photo(80, 120)[bh:h, bw:w])  # untouched outside the overlap band


def test_the_overlap_keeps_whole_periods_and_a_calm_wrap() -> None:
    """The overlap band of a 120 px wide photo may be 8-22 px (0.5-1.5 x 15). A pattern repeating every 26 px is cut
    to 104 = 4 x 26 px (b = 16); a strong edge at the nominal wrap (columns 104 | 105, b = 15) is avoided."""
    x = torch.arange(120, dtype=torch.float32)
    stripes = (0.5 + 0.3 * torch.sin(2 * math.pi * x / 26)).expand(1, 3, 40, 120)
    noise = 0.01 * torch.randn(1, 3, 40, 120, generator=torch.Generator().manual_seed(0))
    assert calm_overlap_width(stripes + noise, 0.125) == 16
    img = torch.from_numpy(photo(40, 120)).permute(2, 0, 1)[None].clone()
    img[..., 120 - 15 :] += 0.5  # a bright stripe starting exactly at the nominal wrap
    assert calm_overlap_width(img, 0.125) != 15
    out = make_tileable(img, 0.125)[0].permute(1, 2, 0).numpy()
    assert seam_score(out, 1) <= 1.0
    flat = torch.zeros(1, 3, 40, 120)  # nothing to choose between: the nominal width
    assert calm_overlap_width(flat, 0.125) == 15


def test_min_cut_path_follows_the_cheap_column_and_closes_when_cyclic() -> None:
    cost = np.ones((30, 10))
    cost[:, 6] = 0.0
    assert (min_cut_path(cost, margin=1) == 6).all()
    cost = np.random.default_rng(0).random((50, 12))
    path = min_cut_path(cost, margin=2, cyclic=True)
    assert abs(int(path[0]) - int(path[-1])) <= 1 and np.abs(np.diff(path)).max() <= 1
    assert path.min() >= 2 and path.max() <= 9


def test_capture_errors() -> None:
    m = make_material(32)
    zero = capture_errors(m, m)
    assert zero["basecolor"] < 1e-9 and zero["normal_deg"] < 0.05 and zero["metallic_accuracy"] == 1.0
    # Half the exposure in linear light costs nothing after exposure normalisation; a flat normal costs its angle.
    darker = m.maps() | {"basecolor": (m.basecolor**2.2 * 0.5) ** (1 / 2.2)}
    assert capture_errors(Material(**darker), m)["basecolor"] < 0.01
    flat = Material(**(m.maps() | {"normal": np.broadcast_to(np.float32([0, 0, 1]), m.normal.shape)}))
    expected = np.degrees(np.arccos(np.clip(m.normal[..., 2], -1, 1))).mean()
    assert abs(capture_errors(flat, m)["normal_deg"] - expected) < 1e-3
    inverted = Material(**(m.maps() | {"metallic": 1 - m.metallic}))
    assert capture_errors(inverted, m)["metallic_accuracy"] == 0.0


TINY_RUN = [
    "--model.block_out_channels=8,16", "--model.norm_num_groups=4", "--data.crop_size=32", "--data.material_size=64",
    "--data.pool_size=4", "--data.refresh_steps=2", "--eval.size=32", "--eval.count=2", "--train.batch_size=2",
    "--train.max_steps=4", "--train.checkpoint_every=2", "--train.log_every=1", "--train.sample_every=2",
    "--train.warmup_steps=1",
]  # fmt: skip


def test_training_smoke_resumes_exactly(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from training import train_capture

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_capture.main(["--output_dir", str(straight), *TINY_RUN]) == 0
    assert train_capture.main(["--output_dir", str(split), *TINY_RUN, "--train.stop_at=2"]) == 0
    assert not (split / "model").exists() and (split / "checkpoints" / "checkpoint-00000002").is_dir()
    assert train_capture.main(["--output_dir", str(split), *TINY_RUN, "--resume", "latest"]) == 0

    def records(run: Path) -> list[dict]:
        return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]

    assert [r["step"] for r in records(split)] == [1, 2, 3, 4]
    assert records(split) == records(straight)  # the same data, weights and optimiser state after the resume
    weights = [load_file(run / "model" / "unet" / "diffusion_pytorch_model.safetensors") for run in (straight, split)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    evals = [json.loads(line) for line in (straight / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4] and "normal_deg" in evals[-1]
    pipe = StableMaterialsCapturePipeline.from_pretrained(straight / "model")
    assert pipe(photo()).images[0].size == (48, 72)


def test_real_texture_pairs_read_in_the_librarys_convention(tmp_path: Path) -> None:
    from training.texture_pairs import RealPairs

    truth = write_texture_pairs(tmp_path / "textures")
    walls = tmp_path / "textures" / "walls"
    shutil.copy(walls / "gl.png", walls / "ufo.png")  # UFO:AI's name for a normal map: NAME_nm
    shutil.copy(walls / "gl_norm.png", walls / "ufo_nm.png")
    pairs = RealPairs(tmp_path / "textures")
    assert [(c.name, n.name) for c, n in pairs.pairs] == [("dx.png", "dx_norm.png"), ("gl.png", "gl_norm.png"), ("ufo.png", "ufo_nm.png")]
    for i in range(3):  # the DirectX map is read back as OpenGL: all give the true normal (to 8-bit rounding)
        normal = Material.from_model_tensor(pairs.get(i)).normal
        assert np.abs(normal - truth).mean() < 0.02
    with pytest.raises(ValueError, match="no NAME.EXT"):
        RealPairs(tmp_path / "textures", exclude=("walls",))
    with pytest.raises(ValueError, match="is not a folder"):
        RealPairs(tmp_path / "missing")


def straight_and_resumed_records(tmp_path: Path, flags: list[str]) -> tuple[list[dict], list[dict]]:
    """losses.jsonl of a straight TINY_RUN with `flags` and of the same run stopped at step 2 and resumed."""
    from training import train_capture

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_capture.main(["--output_dir", str(straight), *TINY_RUN, *flags]) == 0
    assert train_capture.main(["--output_dir", str(split), *TINY_RUN, *flags, "--train.stop_at=2"]) == 0
    assert train_capture.main(["--output_dir", str(split), *TINY_RUN, *flags, "--resume", "latest"]) == 0
    runs = [[json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()] for run in (straight, split)]
    return runs[0], runs[1]


def test_training_with_the_real_stream_resumes_exactly(tmp_path: Path) -> None:
    """The real stream's views are a function of (seed, step): a run stopped and resumed logs what a straight run
    logs, real terms included."""
    from training import train_capture

    write_texture_pairs(tmp_path / "textures")
    real = ["--real.textures", str(tmp_path / "textures"), "--real.batch_size=1", "--real.max_side=96"]
    straight, resumed = straight_and_resumed_records(tmp_path, real)
    assert straight == resumed and all(r["real_normal"] > 0 and r["real_height"] > 0 for r in straight)
    with pytest.raises(ValueError, match="real.weight"):
        train_capture.main(["--output_dir", str(tmp_path / "bad"), *TINY_RUN, *real, "--real.weight=-1"])


def test_unlabeled_photos_skip_maps_and_wrap(tmp_path: Path) -> None:
    from stablematerials.metrics import seam_score
    from training.texture_pairs import RealPhotos, photo_files

    write_texture_pairs(tmp_path / "textures")
    (tmp_path / "textures" / "walls" / "notes.txt").write_text("not a picture")
    assert [p.name for p in photo_files(tmp_path / "textures")] == ["alone.png", "dx.png", "gl.png"]
    assert [p.name for p in photo_files(tmp_path / "textures", exclude=("gl", "dx"))] == ["alone.png"]
    photos = RealPhotos(tmp_path / "textures", max_side=80)
    colour = Material.from_model_tensor(photos.get(0)).basecolor
    assert max(colour.shape[:2]) <= 80 and max(seam_score(colour, axis) for axis in (0, 1)) <= 1.05  # made tileable: wrapped views show no seam
    with pytest.raises(ValueError, match="no colour images"):
        RealPhotos(tmp_path / "textures", exclude=("walls",))
    from training.capture_config import CaptureDataConfig, PhotoConfig
    from training.capture_data import real_batch_for_step

    (tmp_path / "small").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "small" / "tiny.png")  # under 64 px: unusable
    with pytest.raises(ValueError, match="unlabeled.photos .*small.*unusable"):
        real_batch_for_step(RealPhotos(tmp_path / "small"), CaptureDataConfig(), PhotoConfig(), 0, 0, 1)


def test_training_with_the_unlabeled_stream_resumes_exactly(tmp_path: Path) -> None:
    """The semi-supervised stream: photos without maps, their predicted maps judged by a discriminator. Its state is
    checkpointed with the model's, so a stopped and resumed run logs what a straight run logs."""
    from training import train_capture

    write_texture_pairs(tmp_path / "textures")
    unlabeled = ["--unlabeled.photos", str(tmp_path / "textures"), "--unlabeled.batch_size=2", "--unlabeled.start=1"]
    straight, resumed = straight_and_resumed_records(tmp_path, unlabeled)
    assert straight == resumed
    assert "disc" not in straight[0] and all(r["disc"] > 0 and "adversarial" in r for r in straight[1:])
    with pytest.raises(ValueError, match="unlabeled.batch_size"):
        train_capture.main(["--output_dir", str(tmp_path / "bad"), *TINY_RUN, *unlabeled, "--unlabeled.batch_size=3"])


def test_training_with_both_real_streams_under_accelerate_launch(tmp_path: Path) -> None:
    """Two processes (gloo), each with its own synthetic, real and unlabeled views, through one DDP model and
    discriminator: the run finishes and saves a loadable model."""
    from training_helpers import accelerate_launch

    write_texture_pairs(tmp_path / "textures")
    streams = ["--real.textures", str(tmp_path / "textures"), "--real.batch_size=1", "--real.max_side=96",
               "--unlabeled.photos", str(tmp_path / "textures"), "--unlabeled.batch_size=1"]  # fmt: skip
    result = accelerate_launch("training.train_capture", ["--output_dir", str(tmp_path / "run"), *TINY_RUN, *streams])
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["real_normal"] > 0 and r["disc"] > 0 for r in records)
    assert StableMaterialsCapturePipeline.from_pretrained(tmp_path / "run" / "model")(photo()).images[0].size == (48, 72)


def test_training_continues_a_trained_model(tmp_path: Path) -> None:
    """init_from: the run starts from the given capture model's weights (here a model folder holding capture/) and
    its architecture; model.* may not be set beside it."""
    from training import train_capture
    from training.capture_config import CaptureConfig
    from training.config import parse_config

    base = tiny_capture_pipeline(3)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model_index.json").write_text("{}")  # a model folder: the capture model is in capture/
    base.save_pretrained(tmp_path / "base" / "capture")
    cfg = parse_config(CaptureConfig, ["--init_from", str(tmp_path / "base")])
    unet, patch_size = train_capture.initial_predictor(cfg)
    assert patch_size == base.config.patch_size
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), base.unet.state_dict().values()))
    data_flags = [f for f in TINY_RUN if not f.startswith("--model.")]
    out = tmp_path / "run"
    assert train_capture.main(["--output_dir", str(out), "--init_from", str(tmp_path / "base"), *data_flags]) == 0
    trained = StableMaterialsCapturePipeline.from_pretrained(out / "model")
    assert list(trained.unet.config.block_out_channels) == list(base.unet.config.block_out_channels)
    assert not torch.equal(trained.unet.conv_in.weight, base.unet.conv_in.weight)  # it trained from there
    with pytest.raises(ValueError, match="init_from"):
        parse_config(CaptureConfig, ["--init_from", str(tmp_path / "base"), "--model.layers_per_block=2"])


def test_training_config_rejects_bad_values(tmp_path: Path) -> None:
    from training import train_capture

    with pytest.raises(ValueError, match="unknown material families"):
        train_capture.main(["--output_dir", str(tmp_path), *TINY_RUN, "--data.exclude_families=granite"])
    with pytest.raises(ValueError, match="data.scale_max"):
        train_capture.main(["--output_dir", str(tmp_path), "--data.scale_max=0.1"])


def test_photo_files_16_bit_grey_and_exif_turn(tmp_path: Path) -> None:
    grey = (np.random.default_rng(0).random((40, 60)) * 65535).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    loaded = load_photo(tmp_path / "grey16.png")
    assert loaded.shape == (3, 40, 60) and torch.allclose(loaded[1], torch.from_numpy(grey / 65535.0).float(), atol=1e-6)
    turned = Image.fromarray((photo(40, 60) * 255).astype(np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    turned.save(tmp_path / "turned.jpg", exif=exif)
    assert load_photo(str(tmp_path / "turned.jpg")).shape == (3, 60, 40)


def test_the_basecolor_is_the_photos_colour_plus_a_correction() -> None:
    """With the network's output zeroed, the basecolor is the photo itself: colour never has to be made up."""
    from stablematerials.capture import run_predictor

    pipe = tiny_capture_pipeline(0)
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    img = torch.from_numpy(photo(32, 48)).permute(2, 0, 1)[None]
    maps = run_predictor(pipe.unet, img, pipe.config.patch_size)
    torch.testing.assert_close(maps[:, 0:3], img * 2 - 1)
    assert torch.equal(maps[:, 3:], torch.zeros_like(maps[:, 3:]))
