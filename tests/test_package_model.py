"""training/package_model.py: a trained run becomes the embedded default model (float16, loadable, student)."""

import json

import torch
from safetensors import safe_open

from stablematerials import StableMaterialsPipeline
from stablematerials.tiny import tiny_unet
from training.package_model import main


def _run_folder(tmp_path, tiny_pipe):
    model = tmp_path / "lcm" / "model"
    tiny_pipe.save_pretrained(model)
    tiny_unet(seed=1, student=True).save_pretrained(model / "unet_lcm")
    (tmp_path / "lcm" / "config.json").write_text(json.dumps({"teacher": None}))
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    return model, card


def test_package_keeps_teacher_and_student(tmp_path, tiny_pipe):
    model, card = _run_folder(tmp_path, tiny_pipe)
    out = tmp_path / "default-model"
    assert main(["--model", str(model), "--out", str(out), "--card", str(card)]) == 0
    with safe_open(str(out / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
    assert (out / "unet_lcm" / "config.json").is_file() and (out / "README.md").read_text() == "# card\n"
    assert StableMaterialsPipeline.from_pretrained(out, student=True).is_student


def test_package_student_only(tmp_path, tiny_pipe):
    model, card = _run_folder(tmp_path, tiny_pipe)
    out = tmp_path / "student-only"
    assert main(["--model", str(model), "--out", str(out), "--card", str(card), "--student-only"]) == 0
    assert not (out / "unet_lcm").exists()
    pipe = StableMaterialsPipeline.from_pretrained(out, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.is_student and pipe.unet.config.time_cond_proj_dim == 32
    expected = StableMaterialsPipeline.from_pretrained(model, student=True)
    assert torch.allclose(pipe.unet.conv_in.weight, expected.unet.conv_in.weight.half().float())
    assert pipe("bricks").images[0].metadata["num_inference_steps"] == 4
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "x"), "--card", str(card)]) == 2


def test_package_native_size_sets_the_default_output(tmp_path, tiny_pipe):
    model, card = _run_folder(tmp_path, tiny_pipe)
    out = tmp_path / "native"
    factor = tiny_pipe.vae_scale_factor
    size = 4 * tiny_pipe.unet.config.sample_size * factor  # e.g. a 32x32-latent UNet shipped for 4x its crop
    assert main(["--model", str(model), "--out", str(out), "--card", str(card), "--native-size", str(size)]) == 0
    for folder in ("unet", "unet_lcm"):
        assert json.loads((out / folder / "config.json").read_text())["sample_size"] == size // factor
    pipe = StableMaterialsPipeline.from_pretrained(out, student=True)
    pipe.set_progress_bar_config(disable=True)
    assert pipe("bricks").images[0].size == [size, size]  # the default size follows


def test_package_teacher_default_makes_the_teacher_the_default(tmp_path, tiny_pipe):
    from stablematerials.loading import load_pipeline

    model, card = _run_folder(tmp_path, tiny_pipe)
    out = tmp_path / "teacher-default"
    assert main(["--model", str(model), "--out", str(out), "--card", str(card), "--teacher-default", "3"]) == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["prefer_teacher"] is True and index["teacher_steps"] == 3
    assert (out / "unet_lcm" / "config.json").is_file()  # the student stays, as an option
    pipe = load_pipeline(out, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    assert not pipe.is_student and pipe("bricks").images[0].metadata["num_inference_steps"] == 3
    assert main(["--model", str(model), "--out", str(tmp_path / "y"), "--card", str(card), "--teacher-default", "0"]) == 2


def test_package_colour_settings_are_saved_for_a_colour_latent_model_and_refused_otherwise(tmp_path, tiny_pipe):
    from stablematerials.tiny import tiny_pipeline

    model, card = _run_folder(tmp_path, tiny_pipe)  # no colour latents
    args = ["--card", str(card), "--color-smoothing", "1", "--color-guidance-max", "1.5"]
    assert main(["--model", str(model), "--out", str(tmp_path / "plain"), *args]) == 2
    assert not (tmp_path / "plain").exists()  # refused before anything is written
    colour = tmp_path / "colour" / "lcm" / "model"
    tiny_pipeline(0, vision=False, color_latents=True).save_pretrained(colour)
    out = tmp_path / "colour-packaged"
    assert main(["--model", str(colour), "--out", str(out), *args]) == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["color_smoothing"] == 1.0 and index["color_guidance_max"] == 1.5
    assert StableMaterialsPipeline.from_pretrained(out).config.color_smoothing == 1.0
