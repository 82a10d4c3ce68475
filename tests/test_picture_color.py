"""An image prompt's colour attribute from the picture itself (stablematerials/picture_color.py, issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials.picture_color import check_image_color_fit, fit_picture_colors, picture_basecolors, picture_color_features

FAMILIES = ["bricks", "marble", "sand"]
MEAN_ONLY = [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]] + [[0.0, 0, 0]] * 7  # the estimate is the picture's mean colour


def _uniform(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def test_features_of_a_picture_and_the_least_squares_fit() -> None:
    f = picture_color_features(_uniform((255, 51, 0), (700, 300)))  # reduced to 128 px first; a flat colour stays
    np.testing.assert_allclose(f, [1, 0.2, 0] * 3 + [1], atol=1e-6)
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.random((50, 9)), np.ones((50, 1))], axis=1)
    true_map = rng.normal(size=(10, 3))
    np.testing.assert_allclose(fit_picture_colors(features, features @ true_map), true_map, atol=1e-8)
    with pytest.raises(ValueError, match=r"\(N, 10\) picture features and \(N, 3\) colours, got \(50, 9\)"):
        fit_picture_colors(features[:, :9], features[:, :3])
    dark = picture_basecolors([_uniform((10, 10, 10))], np.eye(10, 3) * 3 - 1)  # clipped into [0, 1]
    assert dark.shape == (1, 3) and dark.min() == 0.0


@pytest.mark.parametrize("fit", [[[1, 2, 3]] * 9, [[1, 2]] * 10, "abc", [[1, 2, float("nan")]] * 10, [[True, 0, 0]] * 10])
def test_bad_fits_are_named(fit) -> None:
    with pytest.raises(ValueError, match="image_color_fit must be 10 rows of 3 finite numbers"):
        check_image_color_fit(fit)
    check_image_color_fit(None)
    check_image_color_fit(MEAN_ONLY)


def _picture_attribute_pipeline(fit):
    """The tiny pipeline with an image encoder and a UNet that takes attributes over FAMILIES, with `fit`."""
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline
    from training.models import add_attribute_embedding

    tiny = tiny_pipeline(seed=0, vision="resnet")
    unet = add_attribute_embedding(tiny.unet, len(FAMILIES) + 3)
    torch.nn.init.normal_(unet.class_embedding.linear_2.weight, std=0.5, generator=torch.Generator().manual_seed(3))
    parts = {k: v for k, v in tiny.components.items() if v is not None} | {"unet": unet}
    pipe = StableMaterialsPipeline(**parts, attribute_families=FAMILIES, embedding_scale=tiny.config.embedding_scale,
                                   image_color_fit=fit, anchor_neighbours=8)  # fmt: skip
    width = unet.config.cross_attention_dim
    anchors = torch.randn(8, width, generator=torch.Generator().manual_seed(1))
    pipe.set_caption_anchors(anchors, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.full((8, 3), -0.5))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _attributes(pipe, prompt, image=None, n: int = 1) -> torch.Tensor:
    embeds, labels, pictures = pipe.prepare_prompt_embeds(prompt, image, None, None, None, n, False, torch.device("cpu"), 0.5)
    return pipe.prepare_attributes(embeds, labels, n, torch.Generator().manual_seed(0), False, pictures)


def test_an_image_prompt_takes_its_pictures_colour_and_words_keep_the_anchors(tmp_path: Path) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline

    red, blue = _uniform((204, 51, 0)), _uniform((0, 51, 204))
    pipe = _picture_attribute_pipeline(MEAN_ONLY)
    a = _attributes(pipe, [red, "red bricks", blue])  # (3, 6): one-hot family, then the colour in model space
    np.testing.assert_allclose(a[0, 3:], [0.6, -0.6, -1.0], atol=1e-3)  # 204 / 255 * 2 - 1 = 0.6
    np.testing.assert_allclose(a[2, 3:], [-1.0, -0.6, 0.6], atol=1e-3)
    np.testing.assert_allclose(a[1, 3:], [-0.5] * 3)  # a text prompt: its anchor's colour
    assert all(a[i, :3].sum() == 1 for i in range(3))  # the family still comes from the anchors
    two = _attributes(pipe, ["red bricks", red], n=2)  # two items per prompt: the picture's are the last two
    np.testing.assert_allclose(two[2:, 3:], a[[0, 0], 3:])
    np.testing.assert_allclose(two[:2, 3:], [[-0.5] * 3] * 2)
    mixed = _attributes(pipe, "blue", red)  # a text and a picture together: the words may name another colour
    np.testing.assert_allclose(mixed[0, 3:], [-0.5] * 3)

    kw = dict(num_inference_steps=2, height=16, width=16, output_type="np")
    with_fit = pipe(image=red, generator=torch.Generator().manual_seed(0), **kw).images
    pipe.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model_index.json").read_text())["image_color_fit"] == MEAN_ONLY
    loaded = StableMaterialsPipeline.from_pretrained(tmp_path / "m")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(loaded(image=red, generator=torch.Generator().manual_seed(0), **kw).images, with_fit, atol=1e-3)
    loaded.register_to_config(image_color_fit=None)  # without the fit: the anchors' colour, another material
    assert np.abs(loaded(image=red, generator=torch.Generator().manual_seed(0), **kw).images - with_fit).max() > 1e-3
    with pytest.raises(ValueError, match="image_color_fit must be"):
        StableMaterialsPipeline.from_pretrained(tmp_path / "m", image_color_fit=[[1, 2, 3]])


def test_add_image_encoder_fits_the_picture_colours(tmp_path: Path, capsys) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_image_encoder, tiny_pipeline
    from training import add_image_encoder

    tiny_pipeline(seed=0, vision=False).save_pretrained(tmp_path / "m")
    model, processor = tiny_image_encoder(seed=3)
    model.save_pretrained(tmp_path / "enc" / "vision_encoder")
    processor.save_pretrained(tmp_path / "enc" / "processor")
    args = ["--encoder", str(tmp_path / "enc"), "--model", str(tmp_path / "m")]
    assert add_image_encoder.main([*args, "--color-fit", "-1"]) == 2
    assert "--color-fit must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "m" / "vision_encoder").exists()  # refused before anything was written
    assert add_image_encoder.main([*args, "--color-fit", "2"]) == 0
    assert "held-out unlike pictures: raw mean" in capsys.readouterr().out
    fit = StableMaterialsPipeline.from_pretrained(tmp_path / "m").config.image_color_fit
    assert np.asarray(fit).shape == (10, 3)
    grey = picture_basecolors([_uniform((128, 128, 128))], fit)[0]  # a mid-grey picture: a grey-ish material
    assert float(grey.max() - grey.min()) < 0.15, grey
