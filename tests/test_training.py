"""The training scripts end to end on tiny configs: loadable results, resume, multi-process data split, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler
from training_helpers import accelerate_launch, make_dataset, make_image_folder, save_tiny_text_encoder

from stablematerials.io import load_material
from stablematerials.latents import normalize_latents
from stablematerials.material import Material
from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.tiny import tiny_text_encoder, tiny_unet
from training import distill_lcm, train_ldm, train_vae

REPO = Path(__file__).resolve().parents[1]
DATA = ["--data.resolution=32", "--data.crop_size=16"]
VAE_MODEL = ["--model.block_out_channels=16,16", "--model.norm_num_groups=8", "--model.latent_channels=4"]
UNET_MODEL = [
    "--model.block_out_channels=16,32", "--model.attention_levels=false,true", "--model.attention_head_dim=8",
    "--model.norm_num_groups=8",
]  # fmt: skip
LOOP = ["--train.batch_size=2", "--train.log_every=1", "--sample.count=1"]
SAMPLE = ["--sample.steps=2"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("training")
    data = make_dataset(root / "data", per_family=2, size=32)
    images = make_image_folder(root / "images", n=3, size=32, corrupt=1)
    text = save_tiny_text_encoder(root / "text_encoder")
    vae_out = root / "vae_run"
    args = ["--output_dir", str(vae_out), "--data.root", str(data), *DATA, *VAE_MODEL, *LOOP, "--train.max_steps=2"]
    assert train_vae.main(args + ["--loss.disc=0.1", "--loss.disc_start=1"]) == 0
    return {"root": root, "data": data, "images": images, "text": text, "vae": vae_out / "vae", "vae_run": vae_out}


def ldm_args(assets: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "--output_dir", str(out), "--vae", str(assets["vae"]), "--text_encoder", str(assets["text"]),
        "--data.root", str(assets["data"]), *DATA, *UNET_MODEL, *LOOP, *SAMPLE, *extra,
    ]  # fmt: skip


def losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


def test_vae_result_loads_and_decodes(assets: dict[str, Path]) -> None:
    run = assets["vae_run"]
    vae = AutoencoderKL.from_pretrained(assets["vae"])
    assert vae.config.in_channels == 9 and vae.config.latent_channels == 4
    # Per-channel latent statistics measured on the data: normalised latents of the training materials are
    # about zero-mean and unit-scale in every channel.
    assert vae.config.scaling_factor == 1.0 and len(vae.config.latents_mean) == len(vae.config.latents_std) == 4
    materials = torch.stack([load_material(p).resize(32).to_model_tensor() for p in sorted((assets["data"] / "train").iterdir()) if p.is_dir()])
    with torch.no_grad():
        z = normalize_latents(vae.config, vae.encode(materials).latent_dist.mean)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 0.5 and ((z.std(dim=(0, 2, 3)) - 1).abs() < 0.5).all()
    assert json.loads((run / "config.json").read_text())["model"]["latent_channels"] == 4
    assert [r["step"] for r in losses(run)] == [1, 2] and "disc" in losses(run)[1]
    assert len(list((run / "samples").glob("step_*/*/basecolor.png"))) == 1
    text_encoder, tokenizer = tiny_text_encoder(0)
    pipe = StableMaterialsPipeline(
        vae=vae, unet=tiny_unet(0, in_channels=4), scheduler=DDIMScheduler(), text_encoder=text_encoder, tokenizer=tokenizer
    )
    material = pipe("a sine material", num_inference_steps=2, height=16, width=16, generator=torch.Generator().manual_seed(0),
                    output_type="material").images[0]
    assert isinstance(material, Material) and material.size == (16, 16)


def test_ldm_with_semi_stream_then_lcm_student(assets: dict[str, Path], caplog) -> None:
    ldm_out = assets["root"] / "ldm"
    args = ldm_args(assets, ldm_out, "--train.max_steps=3", "--semi.images", str(assets["images"]),
                    "--semi.start_step=1", "--semi.batch_size=2", "--semi.render_size=8")  # fmt: skip
    assert train_ldm.main(args) == 0
    record = losses(ldm_out)
    assert [r["step"] for r in record] == [1, 2, 3]
    assert "g_adv" not in record[0] and "g_adv" in record[1] and "disc" in record[2]  # the stream starts at step 1
    assert "anchor" in record[1] and record[2]["anchor"] > 0  # basecolor view: the other maps held to the snapshot
    pipe = StableMaterialsPipeline.from_pretrained(ldm_out / "model")
    assert not pipe.is_student and pipe.unet.config.sample_size == 8
    embed_dim = pipe.unet.config.cross_attention_dim
    assert pipe.config.embedding_scale == pytest.approx(embed_dim**0.5)  # unit-norm embeddings -> unit variance
    m = pipe("a checker material", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert m.size == [16, 16]
    assert len(list((ldm_out / "samples").glob("step_00000003/*/normal.png"))) == 1

    lcm_out = assets["root"] / "lcm"
    lcm_args = ["--output_dir", str(lcm_out), "--teacher", str(ldm_out / "model"), "--data.root", str(assets["data"]),
                *DATA, *LOOP, "--train.max_steps=2", "--lcm.time_cond_proj_dim=32"]  # fmt: skip
    assert distill_lcm.main(lcm_args) == 0
    student = StableMaterialsPipeline.from_pretrained(lcm_out / "model", student=True)
    assert student.is_student and student.unet.config.time_cond_proj_dim == 32
    assert student.config.embedding_scale == pipe.config.embedding_scale  # the student keeps the teacher's
    m = student("a checker material", num_inference_steps=4, generator=torch.Generator().manual_seed(0)).images[0]
    assert m.size == [16, 16]
    teacher_again = StableMaterialsPipeline.from_pretrained(lcm_out / "model")
    assert not teacher_again.is_student


def test_interrupted_run_resumes_on_the_same_trajectory(assets: dict[str, Path]) -> None:
    common = ("--train.max_steps=4", "--train.checkpoint_every=2", "--semi.images", str(assets["images"]),
              "--semi.start_step=1", "--semi.batch_size=2", "--semi.render_size=8", "--train.warmup_steps=2")  # fmt: skip
    full, split = assets["root"] / "full", assets["root"] / "split"
    assert train_ldm.main(ldm_args(assets, full, *common)) == 0
    assert train_ldm.main(ldm_args(assets, split, *common, "--train.stop_at=3")) == 0  # "killed" after step 3
    assert not (split / "model").exists()
    ckpts = split / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-00000002"]
    # A checkpoint that was being written when the run died: a partial temp folder with a truncated file,
    # and a renamed folder without its completion record. Neither may be picked.
    shutil.copytree(ckpts / "checkpoint-00000002", ckpts / ".checkpoint-00000004.partial")
    weights = ckpts / ".checkpoint-00000004.partial" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    shutil.copytree(ckpts / "checkpoint-00000002", ckpts / "checkpoint-00000004")
    (ckpts / "checkpoint-00000004" / "trainer_state.json").unlink()
    with (split / "losses.jsonl").open("a") as f:
        f.write('{"step": 4, "diffus')  # the log line being written when the run died
    assert train_ldm.main(ldm_args(assets, split, *common, "--resume", "latest")) == 0
    a, b = losses(full), losses(split)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        for key in ra:
            assert rb[key] == pytest.approx(ra[key], rel=1e-6, abs=1e-7), (ra, rb)
    assert not list(ckpts.glob(".checkpoint-*.partial"))  # the next save cleaned it up


def test_bad_inputs_fail_before_training(assets: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown config key 'train.stepz'"):
        train_ldm.main(ldm_args(assets, tmp_path / "x", "--train.stepz=3"))
    with pytest.raises(ValueError, match="does not exist"):
        train_vae.main(["--output_dir", str(tmp_path / "y"), "--data.root", str(tmp_path / "no_data"), *DATA])
    with pytest.raises(ValueError, match="image data .* does not exist"):
        train_ldm.main(ldm_args(assets, tmp_path / "z", "--semi.images", str(tmp_path / "no_images")))
    with pytest.raises(ValueError, match="not a VAE folder"):
        train_ldm.main(ldm_args(assets, tmp_path / "w", "--vae", str(tmp_path)))
    with pytest.raises(ValueError, match="not a pipeline folder"):
        distill_lcm.main(["--output_dir", str(tmp_path / "v"), "--teacher", str(tmp_path), "--data.root", str(assets["data"])])


def test_two_processes_see_different_data(assets: dict[str, Path]) -> None:
    out = assets["root"] / "ddp"
    result = accelerate_launch("training.train_ldm", ldm_args(assets, out, "--train.max_steps=2", "--train.batch_size=1", "--train.debug_log_samples=true"))
    assert result.returncode == 0, result.stderr[-3000:]
    seen = {}
    for rank in (0, 1):
        lines = (out / "debug" / f"rank{rank}.txt").read_text().splitlines()
        seen[rank] = {name for line in lines for name in line.split("\t")[1:]}
    assert len(seen[0]) == 2 and len(seen[1]) == 2 and not seen[0] & seen[1]
    assert (out / "model" / "model_index.json").is_file()


def test_semi_stream_conditioned_on_each_images_own_embedding(assets: dict[str, Path], tmp_path: Path) -> None:
    """Images nobody captioned: each is conditioned on its embedding by an image encoder, as an image prompt."""
    from stablematerials.tiny import tiny_image_encoder
    from training.data import ImageDataset, image_key, open_image_source
    from training.runtime import embed_pictures

    encoder, processor = tiny_image_encoder(0, embed_dim=32)  # the tiny text encoder's width
    encoder.save_pretrained(tmp_path / "encoder" / "vision_encoder")
    processor.save_pretrained(tmp_path / "encoder" / "processor")
    images = ImageDataset(open_image_source(assets["images"]), 16, 32, by_image=True)
    assert images[(0, 1)]["caption"] in {image_key(i) for i in range(len(images))}
    embeds = embed_pictures(encoder, processor, [(image_key(0), images.load(0))], torch.device("cpu"), 2.0, True)
    assert embeds[image_key(0)].shape == (32,) and float(embeds[image_key(0)].norm()) == pytest.approx(2.0, rel=1e-5)

    out = tmp_path / "ldm"
    semi = ["--train.max_steps=2", "--semi.images", str(assets["images"]), "--semi.start_step=1", "--semi.batch_size=2",
            "--semi.render_size=8", "--semi.condition=image"]  # fmt: skip
    with pytest.raises(ValueError, match="semi.condition image needs an image encoder"):
        train_ldm.main(ldm_args(assets, out, *semi))
    assert train_ldm.main(ldm_args(assets, out, *semi, "--semi.image_encoder", str(tmp_path / "encoder"))) == 0
    assert "g_adv" in losses(out)[1] and "disc" in losses(out)[1]
