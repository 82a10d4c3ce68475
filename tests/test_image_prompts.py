"""Image prompts with the default model's kind of encoder (a ResNet projecting into the sentence-embedding space): every
accepted input type, save/load, the embedding space, bad pictures, adding an encoder to a model folder."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials import StableMaterialsPipeline
from stablematerials.conditioning import MAX_IMAGE_SIDE, load_image_prompt
from stablematerials.image_encoder import add_image_encoder

KW = dict(num_inference_steps=2, height=32, width=32, output_type="np")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    from stablematerials.tiny import tiny_pipeline

    p = tiny_pipeline(seed=0, vision="resnet")
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)


def test_every_input_type_gives_the_same_deterministic_material(pipe, picture, tmp_path):
    Image.fromarray(picture).save(tmp_path / "p.png")
    forms = {
        "pil prompt": dict(prompt=Image.fromarray(picture)),
        "array image": dict(image=picture),
        "uint16 array": dict(image=picture.astype(np.uint16) * 257),
        "float array": dict(image=picture / 255.0),
        "tensor": dict(image=torch.from_numpy(picture).permute(2, 0, 1) / 255.0),
        "path": dict(image=tmp_path / "p.png"),
        "str path": dict(image=str(tmp_path / "p.png")),
        "list": dict(image=[Image.fromarray(picture)]),
    }
    outs = {name: pipe(**form, generator=gen(4), **KW).images for name, form in forms.items()}
    reference = outs["pil prompt"]
    for name, out in outs.items():
        np.testing.assert_allclose(out, reference, atol=1e-6, err_msg=name)
    assert np.array_equal(pipe(image=picture, generator=gen(4), **KW).images, reference)  # same seed, same result
    assert not np.allclose(pipe(image=picture, generator=gen(5), **KW).images, reference)


def test_mixed_batch_items_equal_single_runs(pipe, picture):
    batch = pipe(["old red bricks", Image.fromarray(picture)], generator=[gen(1), gen(2)], **KW).images
    text = pipe("old red bricks", generator=gen(1), **KW).images
    image = pipe(image=picture, generator=gen(2), **KW).images
    np.testing.assert_allclose(batch[0], text[0], atol=1e-4)  # batched matrix products round differently
    np.testing.assert_allclose(batch[1], image[0], atol=1e-4)


def test_image_as_negative_prompt(pipe, picture):
    plain = pipe("bricks", generator=gen(0), **KW).images
    steered = pipe("bricks", negative_prompt=Image.fromarray(picture), generator=gen(0), **KW).images
    again = pipe("bricks", negative_prompt=picture, generator=gen(0), **KW).images
    assert not np.allclose(plain, steered) and np.array_equal(steered, again)


def test_image_embeddings_live_where_text_embeddings_do(pipe, picture):
    """Unit vectors times embedding_scale, like the sentence embeddings; the default negative is the empty text
    (what the UNet of a sentence-encoder model was trained with), not a black picture."""
    pipe.register_to_config(embedding_scale=3.0)
    try:
        embeds, negative = pipe.encode_prompt([Image.fromarray(picture), "bricks"], torch.device("cpu"), 1, True)
        torch.testing.assert_close(embeds.norm(dim=-1), torch.full((2, 1), 3.0))
        empty, _ = pipe.encode_prompt([""], torch.device("cpu"), 1, False)
        torch.testing.assert_close(negative, empty.expand(2, -1, -1))
    finally:
        pipe.register_to_config(embedding_scale=1.0)


def test_mix_embeddings_is_slerp_between_text_and_picture():
    from stablematerials.conditioning import mix_embeddings

    text = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    image = torch.tensor([[0.0, 3.0, 0.0], [0.0, 2.0, 0.0]])  # a right angle; the same direction
    torch.testing.assert_close(mix_embeddings(text, image, 0.0), text)
    torch.testing.assert_close(mix_embeddings(text, image, 1.0), image)
    half = mix_embeddings(text, image, 0.5)
    torch.testing.assert_close(half[0], torch.tensor([3.0, 3.0, 0.0]) / 2**0.5)  # 45 degrees, length kept at 3
    torch.testing.assert_close(half[1], image[1])
    third = mix_embeddings(text[:1], image[:1], 1 / 3)[0]
    assert abs(float(torch.atan2(third[1], third[0])) - np.pi / 6) < 1e-5  # a third of the angle


def test_text_and_picture_together(pipe, picture):
    """"This picture, but <text>": one text with one picture (or with each of several), at a chosen share."""
    cpu = torch.device("cpu")
    text, _ = pipe.encode_prompt(["blue bricks"], cpu, 1, False)
    image, _ = pipe.encode_prompt([Image.fromarray(picture)], cpu, 1, False)
    mixed, labels = pipe.encode_mixed_prompt("blue bricks", picture, 0.25, cpu)
    from stablematerials.conditioning import mix_embeddings

    torch.testing.assert_close(mixed, mix_embeddings(text[:, 0], image[:, 0], 0.25))
    assert labels == ["<image> + blue bricks"]
    ends = [pipe("blue bricks", image=picture, image_weight=w, generator=gen(3), **KW).images for w in (0.0, 1.0)]
    np.testing.assert_allclose(ends[0], pipe("blue bricks", generator=gen(3), **KW).images, atol=1e-5)
    np.testing.assert_allclose(ends[1], pipe(image=picture, generator=gen(3), **KW).images, atol=1e-5)
    half = pipe("blue bricks", image=picture, generator=gen(3), **KW).images  # default share 0.5
    assert not np.allclose(half, ends[0], atol=1e-3) and not np.allclose(half, ends[1], atol=1e-3)
    pair = pipe(["blue bricks", "green tiles"], image=picture, image_weight=0.5, generator=[gen(3), gen(3)], **KW).images
    np.testing.assert_allclose(pair[0], half[0], atol=1e-4)


def test_round_trip_through_save_pretrained(pipe, picture, tmp_path):
    pipe.save_pretrained(tmp_path / "m")
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["vision_encoder"] == ["transformers", "ResNetForImageClassification"]
    again = StableMaterialsPipeline.from_pretrained(tmp_path / "m")
    again.set_progress_bar_config(disable=True)
    a = pipe(image=picture, generator=gen(7), **KW).images
    b = again(image=picture, generator=gen(7), **KW).images
    np.testing.assert_allclose(a, b, atol=1e-5)  # reloaded weights may take other kernels: float rounding only


def test_add_image_encoder_to_a_model_folder(picture, tmp_path):
    from stablematerials.tiny import tiny_image_encoder, tiny_pipeline

    tiny_pipeline(seed=0, vision=False).save_pretrained(tmp_path / "m")
    model, processor = tiny_image_encoder(seed=3)
    model.save_pretrained(tmp_path / "enc" / "vision_encoder")
    processor.save_pretrained(tmp_path / "enc" / "processor")
    add_image_encoder(tmp_path / "m", tmp_path / "enc", torch.float16)
    pipe = StableMaterialsPipeline.from_pretrained(tmp_path / "m", torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.vision_encoder).__name__ == "ResNetForImageClassification"
    assert pipe(image=picture, generator=gen(0), **KW).images.shape == (1, 32, 32, 9)
    # An encoder of another width is refused before anything is written.
    wide, _ = tiny_image_encoder(seed=3, embed_dim=48)
    wide.save_pretrained(tmp_path / "wide" / "vision_encoder")
    processor.save_pretrained(tmp_path / "wide" / "processor")
    with pytest.raises(ValueError, match="48-d embeddings but .*unet takes 32-d"):
        add_image_encoder(tmp_path / "m", tmp_path / "wide")
    with pytest.raises(ValueError, match="has no vision_encoder/ folder"):
        add_image_encoder(tmp_path / "m", tmp_path / "nothing")


# ----------------------------------------------------------------------------------------------
# Bad pictures: a clear error or the right handling
# ----------------------------------------------------------------------------------------------


def test_truncated_file_is_a_clear_error(pipe, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="'.*cut.jpg' is not a readable image: image file is truncated"):
        pipe(image=tmp_path / "cut.jpg", generator=gen(0), **KW)
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(ValueError, match="text.png' is not a readable image"):
        load_image_prompt(tmp_path / "text.png")


def test_16_bit_pictures_are_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    cv2.imwrite(str(tmp_path / "grey16.png"), ramp)
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.stack([ramp, ramp // 2, ramp // 4], -1)[..., ::-1].copy())
    grey = np.asarray(load_image_prompt(tmp_path / "grey16.png")).astype(float)
    assert grey.min() == 0 and grey.max() == 255 and abs(grey.mean() - 127.5) < 2  # clipping would give ~251
    rgb = np.asarray(load_image_prompt(tmp_path / "rgb16.png")).astype(float).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(rgb, [127.5, 63.7, 31.8], atol=2)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = load_image_prompt(tmp_path / "phone.jpg")
    assert shown.size == (20, 40)
    top, bottom = np.asarray(shown)[5, 10], np.asarray(shown)[35, 10]
    assert top[2] > 200 > top[0] and bottom[0] > 200 > bottom[2]  # the blue half is now on top


def test_tiny_huge_and_transparent_pictures(pipe, tmp_path, monkeypatch):
    one = pipe(image=np.full((1, 1, 3), 90, np.uint8), generator=gen(0), **KW).images
    flat = pipe(image=np.full((40, 40, 3), 90, np.uint8), generator=gen(0), **KW).images
    np.testing.assert_allclose(one, flat, atol=1e-5)  # a 1x1 picture is a uniform colour
    Image.new("RGB", (3000, 600), (10, 200, 30)).save(tmp_path / "wide.png")
    big = load_image_prompt(tmp_path / "wide.png")
    assert big.width == MAX_IMAGE_SIDE and abs(big.height - MAX_IMAGE_SIDE / 5) <= 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # PIL refuses more than twice this
    with pytest.raises(ValueError, match="wide.png' is too large to open safely"):
        load_image_prompt(tmp_path / "wide.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    assert np.asarray(load_image_prompt(tmp_path / "clear.png"))[0, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.full((4, 4, 3), np.nan, np.float32), ValueError, "NaN or infinite"),
        (np.zeros((0, 4, 3), np.uint8), ValueError, "must be \\(H, W, 3\\)"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, "must be \\(H, W, 3\\)"),
        (torch.zeros(2, 8, 8), ValueError, "must be \\(3, H, W\\)"),
        (3.5, TypeError, "cannot use an object of type float"),
    ],
)
def test_bad_arrays(bad, error, match):
    with pytest.raises(error, match=match):
        load_image_prompt(bad)


def test_text_only_model_refuses_image_prompts(picture):
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0, vision=False)
    with pytest.raises(ValueError, match="no vision encoder, so it takes text prompts only"):
        pipe(image=picture, **KW)


def test_batch_from_a_folder_of_pictures(tmp_path):
    """`stablematerials batch FOLDER`: every picture becomes an image prompt of the model's image encoder."""
    from stablematerials import load_material
    from stablematerials.cli import main as cli_main
    from stablematerials.tiny import tiny_pipeline

    tiny_pipeline(seed=0).save_pretrained(tmp_path / "model")
    (tmp_path / "photos").mkdir()
    rng = np.random.default_rng(0)
    for name in ("oak", "slate"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{name}.jpg")
    args = ["batch", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "model"),
            "--size", "32", "--steps", "2", "--preview-size", "32", "--no-progress"]  # fmt: skip
    assert cli_main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["generated"] == 2
    a, b = (load_material(tmp_path / "out" / n) for n in ("oak", "slate"))
    assert a.size == (32, 32) and not np.allclose(a.basecolor, b.basecolor)
