import threading

import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials import Material, StableMaterialsPipeline
from stablematerials.guidance import guidance_scale_embedding
from stablematerials.tiling import TilingState, tiling


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_output_types(tiny_pipe):
    kw = dict(prompt="rusty metal", num_inference_steps=2, generator=gen(0))
    mats = tiny_pipe(**kw, output_type="material").images
    assert len(mats) == 1 and isinstance(mats[0], Material) and mats[0].size == (16, 16)
    assert mats[0].basecolor.shape == (16, 16, 3) and mats[0].metadata["prompt"] == "rusty metal"
    arr = tiny_pipe(**kw | {"generator": gen(0)}, output_type="np").images
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 16, 16, 9)
    pt = tiny_pipe(**kw | {"generator": gen(0)}, output_type="pt").images
    assert isinstance(pt, torch.Tensor) and pt.shape == (1, 9, 16, 16)
    lat = tiny_pipe(**kw | {"generator": gen(0)}, output_type="latent").images
    assert lat.shape == (1, 4, 8, 8)
    # The array outputs hold the same maps as the Material.
    np.testing.assert_allclose(arr[0, ..., 0:3], mats[0].basecolor, atol=1e-6)
    np.testing.assert_allclose(arr[0, ..., 3:6], mats[0].normal * 0.5 + 0.5, atol=1e-6)
    assert torch.allclose(pt[0].permute(1, 2, 0), torch.from_numpy(arr[0]))
    # The default output type is the published one: material objects whose maps are PIL images.
    pil = tiny_pipe(**kw | {"generator": gen(0)}).images[0]
    assert isinstance(pil.basecolor, Image.Image) and pil.height.mode == "L" and pil.size == [16, 16]
    assert np.array_equal(np.asarray(pil.basecolor), np.asarray(mats[0].to_pil()["basecolor"]))
    assert pil.metadata["prompt"] == "rusty metal"
    as_tuple = tiny_pipe(**kw | {"generator": gen(0)}, return_dict=False, output_type="material")
    assert isinstance(as_tuple, tuple) and isinstance(as_tuple[0][0], Material)


def test_determinism_by_seed(tiny_pipe):
    a = tiny_pipe("bricks", num_inference_steps=3, generator=gen(5), output_type="np").images
    b = tiny_pipe("bricks", num_inference_steps=3, generator=gen(5), output_type="np").images
    c = tiny_pipe("bricks", num_inference_steps=3, generator=gen(6), output_type="np").images
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_batch_equals_single(tiny_pipe):
    prompts = ["bricks", "mossy stone"]
    batch = tiny_pipe(prompts, num_inference_steps=3, generator=[gen(1), gen(2)], output_type="np").images
    for i, (p, s) in enumerate(zip(prompts, (1, 2))):
        single = tiny_pipe(p, num_inference_steps=3, generator=gen(s), output_type="np").images
        np.testing.assert_allclose(batch[i], single[0], atol=1e-4)  # batched matmuls round differently


@pytest.mark.parametrize("student", [False, True])
def test_patched_batch_equals_single(tiny_pipe, tiny_student, student):
    """With windowed attention too, item k of a batch generated with generators [g0, g1] equals a run with g_k alone."""
    pipe = tiny_student if student else tiny_pipe
    kw = dict(height=48, width=48, num_inference_steps=3, patched=True, tileable=True, output_type="np")
    batch = pipe(["bricks", "bricks"], generator=[gen(1), gen(2)], **kw).images
    second = pipe("bricks", generator=gen(2), **kw).images
    np.testing.assert_allclose(batch[1], second[0], atol=1e-4)
    assert not np.allclose(batch[0], batch[1])


def test_num_images_per_prompt_and_mixed_batch(tiny_pipe):
    black = Image.new("RGB", (40, 40))
    out = tiny_pipe(["bricks", black], num_inference_steps=2, num_images_per_prompt=2, generator=gen(0)).images
    assert len(out) == 4
    assert [m.metadata["prompt"] for m in out] == ["bricks", "bricks", "<image>", "<image>"]
    # image= takes PIL images, arrays and paths; a PIL image as prompt works as in the published pipeline.
    arr = np.full((24, 24, 3), 128, np.uint8)
    a = tiny_pipe(image=arr, num_inference_steps=2, generator=gen(3), output_type="np").images
    b = tiny_pipe(prompt=Image.fromarray(arr), num_inference_steps=2, generator=gen(3), output_type="np").images
    assert np.array_equal(a, b)


def test_image_prompt_changes_result(tiny_pipe, tmp_path):
    red, blue = np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    Image.fromarray(red).save(tmp_path / "red.png")
    a = tiny_pipe(image=str(tmp_path / "red.png"), num_inference_steps=2, generator=gen(0), output_type="np").images
    b = tiny_pipe(image=blue, num_inference_steps=2, generator=gen(0), output_type="np").images
    assert not np.allclose(a, b)


def test_negative_prompt_and_guidance_matter(tiny_pipe):
    base = dict(prompt="bricks", num_inference_steps=2, output_type="np")
    a = tiny_pipe(**base, generator=gen(0)).images
    b = tiny_pipe(**base, generator=gen(0), negative_prompt="smooth metal").images
    c = tiny_pipe(**base, generator=gen(0), guidance_scale=1.0).images
    assert not np.allclose(a, b) and not np.allclose(a, c)


def test_student_path(tiny_student):
    assert tiny_student.is_student and tiny_student.default_num_inference_steps == 4
    m = tiny_student("bricks", generator=gen(0)).images[0]
    assert m.metadata["num_inference_steps"] == 4 and m.metadata["scheduler"] == "LCMScheduler"
    # Guidance is embedded (timestep_cond), not done by a doubled batch: it still changes the result.
    a = tiny_student("bricks", generator=gen(0), guidance_scale=2.0, output_type="np").images
    b = tiny_student("bricks", generator=gen(0), guidance_scale=9.0, output_type="np").images
    assert not np.allclose(a, b)
    calls = []
    tiny_student.unet.register_forward_pre_hook(lambda mod, args, kw: calls.append(kw.get("timestep_cond")), with_kwargs=True)
    try:
        tiny_student("bricks", generator=gen(0), num_inference_steps=2)
    finally:
        tiny_student.unet._forward_pre_hooks.clear()
    assert len(calls) == 2 and calls[0] is not None and calls[0].shape == (1, 32)


def test_guidance_embedding_formula():
    e = guidance_scale_embedding(torch.tensor([0.0, 1.0]), 8)
    assert e.shape == (2, 8)
    assert torch.allclose(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert torch.allclose(e[1, 0], torch.sin(torch.tensor(1000.0)))


def test_callback_on_step_end(tiny_pipe):
    seen = []

    def cb(pipe, i, t, kw):
        seen.append((i, kw["latents"].shape))
        return {"latents": kw["latents"] * 0}

    out = tiny_pipe("bricks", num_inference_steps=3, generator=gen(0), callback_on_step_end=cb, output_type="latent")
    assert [i for i, _ in seen] == [0, 1, 2]
    assert torch.count_nonzero(out.images) == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"prompt": "x", "height": 20}, ValueError, "height must be a positive multiple of 8, got 20"),
        ({"prompt": "x", "width": 0}, ValueError, "width must be a positive multiple"),
        ({"prompt": "x", "num_inference_steps": 0}, ValueError, "num_inference_steps must be a positive integer, got 0"),
        ({"prompt": "x", "guidance_scale": -1}, ValueError, "guidance_scale must be a finite number >= 0, got -1"),
        ({"prompt": "x", "output_type": "jpeg"}, ValueError, "output_type must be one of .* got 'jpeg'"),
        ({"prompt": "   "}, ValueError, "prompt is empty"),
        ({}, ValueError, "give a prompt"),
        ({"prompt": np.zeros((8, 8, 3)), "image": np.zeros((8, 8, 3))}, ValueError, "with an image, prompt must be text"),
        ({"prompt": ["a", "b"], "image": [np.zeros((8, 8, 3))] * 3}, ValueError, "2 text prompts and 3 images"),
        ({"prompt": "x", "image": np.zeros((8, 8, 3)), "image_weight": 1.5}, ValueError, "image_weight must be .* got 1.5"),
        ({"prompt": "x", "image_weight": 0.5}, ValueError, "image_weight mixes a text prompt with an image"),
        ({"image": "/no/such/file.png"}, ValueError, "'/no/such/file.png' is not a file"),
        ({"prompt": 42}, TypeError, "text or an image, got int"),
        ({"prompt": "x", "num_images_per_prompt": 0}, ValueError, "num_images_per_prompt"),
        ({"prompt": "x", "tileable_start": 2.0}, ValueError, "tileable_start must be in"),
        ({"prompt": "x", "latents": torch.zeros(1, 4, 3, 3)}, ValueError, "latents have shape"),
        ({"prompt": ["a", "b"], "generator": [torch.Generator()]}, ValueError, "1 generators for a batch of 2"),
    ],
)
def test_bad_input(tiny_pipe, kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny_pipe(num_inference_steps=kwargs.pop("num_inference_steps", 1), **kwargs)


def test_unknown_keyword_is_an_error(tiny_pipe):
    with pytest.raises(TypeError, match="imag"):
        tiny_pipe("bricks", imag=np.zeros((8, 8, 3)), num_inference_steps=1)


def test_text_only_model_refuses_image_prompt():
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(vision=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe("bricks", num_inference_steps=1, output_type="material").images[0].size == (16, 16)
    with pytest.raises(ValueError, match="no vision encoder"):
        pipe(image=np.zeros((8, 8, 3)), num_inference_steps=1)


# ------------------------------------------------------------------------------------------------
# Tileability (features rolling)
# ------------------------------------------------------------------------------------------------


def _tile2(x):
    return x.repeat(1, 1, 2, 2)


def test_tileable_decode_equals_its_own_tiling(tiny_pipe):
    """Decoding a 2x2-tiled latent gives the 2x2 tiling of the decoded tile: the output wraps exactly."""
    z = tiny_pipe("bricks", num_inference_steps=3, tileable=True, generator=gen(0), output_type="latent").images
    one = tiny_pipe.decode_latents(z, tileable=True)
    four = tiny_pipe.decode_latents(_tile2(z), tileable=True)
    assert torch.allclose(four, _tile2(one), atol=1e-5)
    # Without tiling the same comparison fails at the borders: the test can tell the difference.
    plain = tiny_pipe.decode_latents(z, tileable=False)
    plain4 = tiny_pipe.decode_latents(_tile2(z), tileable=False)
    assert (plain4 - _tile2(plain)).abs().max() > 1e-3


def test_unet_is_shift_equivariant_when_tiling(tiny_pipe):
    unet = tiny_pipe.unet
    x = torch.randn(1, 4, 16, 16, generator=gen(0))
    emb = torch.randn(1, 1, 32, generator=gen(1))
    shift = lambda t: torch.roll(t, (4, 6), dims=(2, 3))  # noqa: E731  (multiples of the downsampling)
    with torch.no_grad(), tiling(TilingState(circular=True)):
        a = shift(unet(x, 10, encoder_hidden_states=emb).sample)
        b = unet(shift(x), 10, encoder_hidden_states=emb).sample
    assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        c = shift(unet(x, 10, encoder_hidden_states=emb).sample)
        d = unet(shift(x), 10, encoder_hidden_states=emb).sample
    assert (c - d).abs().max() > 1e-3  # zero padding is not equivariant


def test_tileable_generation_is_seamless_in_latent_space(tiny_pipe):
    """With circular convolutions from the start the whole denoiser commutes with rolls, so rolling the initial
    noise rolls the result: there is no preferred seam position."""
    g = gen(4)
    noise = torch.randn(1, 4, 16, 16, generator=g)
    run = lambda lat: tiny_pipe("bricks", latents=lat, height=32, width=32, num_inference_steps=3, tileable=True, tileable_start=0.0, output_type="latent").images  # noqa: E731
    a = torch.roll(run(noise), (4, 6), dims=(2, 3))
    b = run(torch.roll(noise, (4, 6), dims=(2, 3)))
    assert torch.allclose(a, b, atol=1e-4)


def test_windowed_attention_matches_global_for_one_window(tiny_pipe):
    """Rolling the grid and attending within one window that covers the map is global attention."""
    unet = tiny_pipe.unet
    x = torch.randn(1, 4, 16, 16, generator=gen(0))
    emb = torch.randn(1, 1, 32, generator=gen(1))
    with torch.no_grad():
        ref = unet(x, 10, encoder_hidden_states=emb).sample
        with tiling(TilingState(window=16, latent_hw=(16, 16), generators=(gen(2),))):
            same = unet(x, 10, encoder_hidden_states=emb).sample
        with tiling(TilingState(window=4, latent_hw=(16, 16), generators=(gen(2),))):
            windowed = unet(x, 10, encoder_hidden_states=emb).sample
    assert torch.allclose(ref, same, atol=1e-5)
    assert (ref - windowed).abs().max() > 1e-4


def test_patched_generation_above_training_size(tiny_pipe):
    out = tiny_pipe("bricks", height=64, width=48, num_inference_steps=2, patched=True, tileable=True, generator=gen(0))
    assert out.images[0].size == [64, 48]


def test_thread_isolation(tiny_pipe):
    """Two pipelines sharing one UNet and VAE, one tileable and one not, in two threads at once, give exactly what
    they give alone."""
    other = StableMaterialsPipeline(**tiny_pipe.components)
    other.set_progress_bar_config(disable=True)
    jobs = {
        "tile": (tiny_pipe, dict(tileable=True, tileable_start=0.0, patched=True)),
        "plain": (other, dict(tileable=False)),
    }

    def run(name):
        pipe, extra = jobs[name]
        return pipe("bricks", height=32, width=32, num_inference_steps=4, generator=gen(7), output_type="np", **extra).images

    alone = {name: run(name) for name in jobs}
    assert not np.allclose(alone["tile"], alone["plain"])
    for _ in range(3):
        results, barrier = {}, threading.Barrier(2)

        def worker(name):
            barrier.wait()
            results[name] = run(name)

        threads = [threading.Thread(target=worker, args=(n,)) for n in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in jobs:
            assert np.array_equal(results[name], alone[name]), name


def test_embedding_scale_is_saved_loaded_and_applied(tiny_pipe, tmp_path):
    """The prompt embedding reaches the UNet times the pipeline's embedding_scale, which lives in model_index.json."""
    scaled = StableMaterialsPipeline(**tiny_pipe.components, embedding_scale=4.0)
    for pipe in (tiny_pipe, scaled):
        pipe.set_progress_bar_config(disable=True)
    plain_embeds, plain_negative = tiny_pipe.encode_prompt(["bricks"], torch.device("cpu"), 1, True)
    embeds, negative = scaled.encode_prompt(["bricks"], torch.device("cpu"), 1, True)
    torch.testing.assert_close(embeds, 4.0 * plain_embeds)
    torch.testing.assert_close(negative, 4.0 * plain_negative)
    a = tiny_pipe("bricks", num_inference_steps=2, generator=gen(0), output_type="np").images
    b = scaled("bricks", num_inference_steps=2, generator=gen(0), output_type="np").images
    assert not np.allclose(a, b)
    scaled.save_pretrained(tmp_path / "m")
    loaded = StableMaterialsPipeline.from_pretrained(tmp_path / "m")
    assert loaded.config.embedding_scale == 4.0
    np.testing.assert_allclose(loaded("bricks", num_inference_steps=2, generator=gen(0), output_type="np").images, b, atol=1e-5)
    with pytest.raises(ValueError, match="embedding_scale must be a positive number, got 0"):
        StableMaterialsPipeline(**tiny_pipe.components, embedding_scale=0)


# ------------------------------------------------------------------------------------------------
# The published API: material objects with PIL maps and their helpers
# ------------------------------------------------------------------------------------------------


def test_published_readme_code_keeps_working(tiny_pipe, tmp_path):
    """`material = pipe(prompt, tileable=True).images[0]; material.basecolor.save(...)`, as the published README."""
    material = tiny_pipe("old rusty metal bars", tileable=True, num_inference_steps=2, generator=gen(4)).images[0]
    for name in ("basecolor", "normal", "height", "roughness", "metallic"):
        getattr(material, name).save(tmp_path / f"{name}.png")
    assert Image.open(tmp_path / "basecolor.png").mode == "RGB" and Image.open(tmp_path / "height.png").mode == "L"
    rich = tiny_pipe("old rusty metal bars", tileable=True, num_inference_steps=2, generator=gen(4),
                     output_type="material").images[0]  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(tmp_path / "normal.png")), np.asarray(rich.to_pil()["normal"]))


def test_published_material_helpers(tiny_pipe):
    material = tiny_pipe("bricks", num_inference_steps=2, generator=gen(1)).images[0]
    maps = material.as_dict()
    assert list(maps) == ["basecolor", "normal", "height", "roughness", "metallic"]
    assert [m.mode for m in material.as_list()] == ["RGB", "RGB", "L", "L", "L"]
    tensor = material.as_tensor()  # basecolor, normal X and Y, height, roughness, metallic in [0, 1]
    assert tensor.shape == (8, 16, 16) and 0 <= tensor.min() and tensor.max() <= 1
    np.testing.assert_allclose(tensor[0].numpy() * 255, np.asarray(maps["basecolor"])[..., 0], atol=0.5 + 1e-4)
    np.testing.assert_allclose(tensor[5].numpy() * 255, np.asarray(maps["height"]), atol=0.5 + 1e-4)
    assert material.size == [16, 16]
    assert material.tile(2) is material and material.size == [32, 32]  # in place, as published
    assert np.array_equal(np.asarray(material.height)[:16, :16], np.asarray(material.height)[16:, 16:])
    assert material.resize(8) is material and material.size == [8, 8]
    assert material.resize((8, 4)).size == [8, 4] and material.basecolor.size == (4, 8)  # PIL: (width, height)
    rich = material.to_material()
    assert rich.size == (8, 4) and np.allclose(np.linalg.norm(rich.normal, axis=-1), 1, atol=1e-5)
    arrays = tiny_pipe("bricks", num_inference_steps=2, generator=gen(1), output_type="np").images
    stacked = tiny_pipe("bricks", num_inference_steps=2, generator=gen(1)).images[0].as_tensor()
    np.testing.assert_allclose(arrays[0][..., [0, 1, 2, 3, 4, 6, 7, 8]], stacked.permute(1, 2, 0).numpy(), atol=1e-6)
