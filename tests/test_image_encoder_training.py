"""The image-prompt encoder's training: photographs of materials, captions from texture names, and a tiny run that
stops, resumes exactly and exports an encoder that a model folder takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stablematerials.procedural import FAMILIES
from stablematerials.procedural.dataset import split_of
from training.image_encoder_data import (
    TRAIN_PHOTOS,
    UNLIKE_PHOTOS,
    caption_from_name,
    family_of_caption,
    material_maps,
    photograph,
    procedural_item,
    split_seeds,
)


@pytest.mark.parametrize(
    "name, caption, family",
    [
        ("textures/gothic_trim/pitted_rust3.jpg", "pitted rust", "rusty_metal"),
        ("textures/evil5_metal/drkrstmtl.jpg", "dark rusty metal", "rusty_metal"),
        ("textures/oquartz/gray_brick.jpg", "grey brick", "bricks"),
        ("textures/tex_ctp1/concrete_g_10.jpg", "concrete", "concrete"),
        ("textures/base_wall/metalfloor_wall_11.jpg", "metal floor wall", "metal"),
        ("textures/tex_nature/grass003.jpg", "grass", None),
        ("textures/base_wall/concrete_nm.png", None, None),  # a normal map, not a picture
        ("textures/misc/glasses_dirty.png", None, None),  # 'dirty' names no material
        ("textures/evil4_walls/tech_drkwall.jpg", None, None),  # 'wall' alone names no material
        ("textures/tex_misc/office_sep01.png", None, None),  # office, notice, cornice: no ice in them
        ("textures/tex_misc/rail_noticeb01.png", None, None),
        ("textures/tex_nature/icefloor.jpg", "ice floor", None),  # a short word where a glued word starts
        ("textures/gothic_trim/pitted_rust3_dkred.jpg", "pitted rust dark red", "rusty_metal"),
    ],
)
def test_captions_from_texture_names(name, caption, family):
    assert caption_from_name(name) == caption
    if caption is not None:
        assert family_of_caption(caption) == family


def test_photographs_are_seeded_pictures_of_the_material():
    material, captions = procedural_item("bricks", 0, 64)
    assert len(set(captions)) >= 2 and captions[0] == material.metadata["caption"]
    maps = material_maps(material)
    a = photograph(maps, 3, 32, TRAIN_PHOTOS, np.random.default_rng(1))
    b = photograph(maps, 3, 32, TRAIN_PHOTOS, np.random.default_rng(1))
    c = photograph(maps, 1, 32, UNLIKE_PHOTOS, np.random.default_rng(2))
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8 and c.shape == (1, 32, 32, 3)
    assert np.array_equal(a, b) and not np.array_equal(a[0], a[1])
    assert 20 < a.mean() < 235  # lit, neither black nor blown out


def test_split_seeds_follow_the_dataset_convention():
    pairs = list(split_seeds("test", 2, ["bricks", "sand"]))
    assert sorted(f for f, _ in pairs) == ["bricks", "bricks", "sand", "sand"]
    names = list(FAMILIES)
    assert all(split_of(s) == "test" and names[s % len(names)] == f for f, s in pairs)


def test_tiny_run_stops_resumes_exactly_and_exports(tmp_path):
    from stablematerials import StableMaterialsPipeline
    from stablematerials.image_encoder import add_image_encoder
    from stablematerials.tiny import tiny_pipeline, tiny_text_encoder
    from training.train_image_encoder import main

    text_encoder, tokenizer = tiny_text_encoder(seed=0)
    text_encoder.save_pretrained(tmp_path / "text")
    tokenizer.save_pretrained(tmp_path / "text")
    args = [
        "--text_encoder", str(tmp_path / "text"), "--data.cache", str(tmp_path / "cache"),
        "--data.per_family", "1", "--data.views", "1", "--data.eval_per_family", "1", "--data.image_size", "32",
        "--data.material_size", "64", "--data.workers", "1", "--model.hidden_sizes", "8,16",
        "--model.depths", "1,1", "--train.batch_size", "4", "--train.max_steps", "3", "--train.warmup_steps", "1",
        "--train.checkpoint_every", "1", "--train.log_every", "1", "--eval_every", "3",
    ]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds overhead on a shared CPU
    try:
        assert main(args + ["--output_dir", str(tmp_path / "a"), "--train.stop_at", "2"]) == 0
        assert not (tmp_path / "a" / "encoder").exists()
        assert main(args + ["--output_dir", str(tmp_path / "a"), "--resume", "latest"]) == 0
        assert main(args + ["--output_dir", str(tmp_path / "b")]) == 0  # the same run without a stop
    finally:
        torch.set_num_threads(threads)
    lines = [(tmp_path / run / "losses.jsonl").read_text().splitlines() for run in ("a", "b")]
    assert lines[0] == lines[1]
    last = [json.loads(line) for line in lines[0]]
    assert {"eval_like_family_top1", "eval_unlike_family_top1"} <= set(last[-1])
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["items"] == 2 * len(FAMILIES) and manifest["pictures"] == 3 * len(FAMILIES)

    tiny_pipeline(seed=0, vision=False).save_pretrained(tmp_path / "model")
    add_image_encoder(tmp_path / "model", tmp_path / "a" / "encoder")
    pipe = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    pipe.set_progress_bar_config(disable=True)
    out = pipe(image=np.full((40, 40, 3), 120, np.uint8), num_inference_steps=1, height=16, width=16, output_type="np")
    assert out.images.shape == (1, 16, 16, 9)
