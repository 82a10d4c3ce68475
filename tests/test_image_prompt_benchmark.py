"""benchmarks/image_prompt.py's generation check and contact sheets run end to end on a tiny model with an image
encoder (the real benchmark needs the default model; these keep its code paths working)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.image_prompt import (
    Held,
    generation,
    mix,
    mix_word,
    photo_folder,
    picture_sheet,
)
from benchmarks.material_eval.classifier_train import TrainConfig, train_classifier
from stablematerials.tiny import tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    p = tiny_pipeline(seed=0, vision=True)
    p.set_progress_bar_config(disable=True)
    return p


def _picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8))


def test_generation_scores_image_and_text_prompts(pipe, tmp_path):
    train_classifier(TrainConfig(per_family=1, sizes=(64,), steps=2, batch=4, widths=(8, 8)), tmp_path)
    held = [Held(family, seed, None, [f"{family} caption"], np.array([0.5, 0.4, 0.3]), {"unlike": _picture(seed)})
            for seed, family in enumerate(("bricks", "sand"))]  # fmt: skip
    out = generation(pipe, held, per_family=1, classifier=tmp_path, size=32)
    assert set(out) == {"image", "text"}
    for figures in out.values():
        assert 0 <= figures["family_match"] <= 1 and 0 <= figures["colour_within_0.1"] <= 1
        assert np.isfinite(figures["colour_error_mean"])


def test_mix_scores_each_share(pipe, tmp_path):
    train_classifier(TrainConfig(per_family=1, sizes=(64,), steps=2, batch=4, widths=(8, 8)), tmp_path)
    held = [Held(family, seed, None, [f"{family} caption"], np.array([0.7, 0.1, 0.1]), {"like": _picture(seed)})
            for seed, family in enumerate(("bricks", "sand"))]  # fmt: skip
    out = mix(pipe, held, per_family=1, classifier=tmp_path, size=32, weights=[0.0, 1.0])
    assert out["pictures"] == 2 and set(out["words"].values()) <= {"blue", "green", "white", "black", "yellow"}
    for share in ("0", "1"):
        assert 0 <= out[share]["colour_word_right"] <= 1 and 0 <= out[share]["picture_family_kept"] <= 1
    assert mix_word(0, np.array([0.1, 0.2, 0.7])) == "green"  # a blue picture is not asked to turn blue


def test_picture_sheet_and_photo_folder(pipe, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    with pytest.raises(SystemExit, match="no .jpg/.png/.webp/.tif pictures in it"):
        photo_folder(photos)
    _picture(1).save(photos / "b_wall.png")
    _picture(2).convert("RGB").save(photos / "a_floor.jpg")
    (photos / "notes.txt").write_text("not a picture")
    pictures = photo_folder(photos)
    assert [label for _, label in pictures] == ["a_floor.jpg", "b_wall.png"]
    sheet = tmp_path / "sheet.png"
    assert picture_sheet(pipe, pictures, 32, sheet) == ["a_floor.jpg", "b_wall.png"]
    assert Image.open(sheet).size == (4 * 32, 2 * 32)
