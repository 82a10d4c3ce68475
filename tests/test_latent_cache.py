"""The latent cache (training/encode_latents.py) and the UNet stages trained on it, with a zero-terminal-SNR schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors import safe_open
from training_helpers import LOOP, UNET_MODEL, make_latent_cache, tiny_vae

from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.procedural.dataset import split_of
from training import distill_lcm, encode_latents, train_ldm
from training.config import DiffusionConfig
from training.data import LatentDataset, vae_digest
from training.models import build_train_scheduler


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> dict[str, Path]:
    return make_latent_cache(tmp_path_factory.mktemp("latents"), 5)


def test_shards_hold_training_seeds_captions_and_the_vae_digest(cache: dict[str, Path]) -> None:
    shards = sorted(cache["latents"].glob("shard_*.safetensors"))
    assert [s.name for s in shards] == ["shard_00000.safetensors", "shard_00001.safetensors", "shard_00002.safetensors"]
    records = []
    for s in shards:
        with safe_open(s, "pt") as f:
            assert f.get_tensor("latents").shape[1:] == (4, 16, 16)  # 32 px at factor 2, the margin cropped off
            assert f.get_tensor("color").shape[1:] == (3, 16, 16)  # the basecolor's mean per latent cell
            assert f.metadata()["vae_digest"] == vae_digest(cache["vae"])
            records += json.loads(f.metadata()["records"])
    assert len(records) == 5 and all(split_of(r["seed"]) == "train" for r in records)  # val/test seeds stay unseen
    assert len({r["family"] for r in records}) == 5  # families in turn
    assert all(len(r["captions"]) == 2 and len(set(r["captions"])) == 2 for r in records)


def test_a_rerun_keeps_finished_shards(cache: dict[str, Path]) -> None:
    shards = sorted(cache["latents"].glob("shard_*.safetensors"))
    stamps = [s.stat().st_mtime_ns for s in shards]
    shards[-1].unlink()
    args = ["--vae", str(cache["vae"]), "--output_dir", str(cache["latents"]), "--n=5", "--size=32", "--shard_size=2",
            "--captions=2", "--wrap_margin=8", "--workers=0", "--seed_start=0"]  # fmt: skip
    assert encode_latents.main(args) == 0
    assert [s.stat().st_mtime_ns for s in shards[:-1]] == stamps[:-1] and shards[-1].is_file()


def test_wrapped_encoding_tiles_like_the_material() -> None:
    """Shifting a tileable material by k latent pixels shifts its wrapped encoding by k (the margin hides the borders)."""
    from stablematerials.procedural import generate

    vae = tiny_vae().eval()
    x = generate("bricks", seed=1, size=32).to_model_tensor()[None]
    shifted = torch.roll(x, shifts=(6, 10), dims=(-2, -1))  # 3 and 5 latent pixels at factor 2

    def mismatch(encode) -> float:
        return float((torch.roll(encode(x), shifts=(3, 5), dims=(-2, -1)) - encode(shifted)).abs().max())

    wrapped = mismatch(lambda t: encode_latents.encode_wrapped(vae, t, margin=16))
    plain = mismatch(lambda t: vae.encode(t).latent_dist.mean.detach())
    assert wrapped < 0.1 * plain


def test_latent_crops_wrap_and_pick_a_caption_variant(cache: dict[str, Path]) -> None:
    data = LatentDataset(cache["latents"], crop=8, vae_digest=vae_digest(cache["vae"]))
    item = data[(3, 123)]
    full = data.latents[3].float()
    assert item["latents"].shape == (4, 8, 8) and item["caption"] in data.records[3]["captions"]
    assert item["color"].shape == (3, 8, 8)
    # the crop is a window of the periodically extended latents
    tiled = full.repeat(1, 2, 2)
    hits = [(i, j) for i in range(16) for j in range(16) if torch.equal(tiled[:, i : i + 8, j : j + 8], item["latents"])]
    assert hits
    colors = data.colors[3].float().repeat(1, 2, 2)  # the colour crop is the same window
    assert any(torch.equal(colors[:, i : i + 8, j : j + 8], item["color"]) for i, j in hits)
    with pytest.raises(ValueError, match="another VAE"):
        LatentDataset(cache["latents"], crop=8, vae_digest="0" * 16)
    with pytest.raises(ValueError, match="larger than the cached latents"):
        LatentDataset(cache["latents"], crop=32)


def test_zero_snr_needs_a_prediction_that_exists_at_t_max() -> None:
    with pytest.raises(ValueError, match="rescale_betas_zero_snr"):
        DiffusionConfig(prediction_type="epsilon", rescale_betas_zero_snr=True).check()


def test_min_snr_plus_one_keeps_the_pure_noise_step_and_caps_the_clean_ones() -> None:
    from diffusers import DDPMScheduler

    from training.losses import min_snr_weights

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          rescale_betas_zero_snr=True, prediction_type="v_prediction")  # fmt: skip
    t = torch.tensor([999, 500, 0])
    ab = sched.alphas_cumprod[t]
    snr = ab / (1 - ab)
    plain = min_snr_weights(sched, t, 5.0, "v_prediction")
    plus = min_snr_weights(sched, t, 5.0, "v_prediction", plus_one=True)
    assert plain[0] < 1e-6 and plus[0] == pytest.approx(1.0)  # t = T: zero SNR
    # v-MSE weighs the x0 error by snr + 1; with the weight, the x0 error's weight is min(snr + 1, 5)
    assert torch.allclose(plus * (snr + 1), (snr + 1).clamp(max=5.0))
    assert plus[2] * (snr[2] + 1) == pytest.approx(5.0)  # t = 0: capped


def test_teacher_and_student_train_on_the_cache_with_zero_terminal_snr(cache: dict[str, Path]) -> None:
    root = cache["root"]
    args = ["--output_dir", str(root / "ldm"), "--vae", str(cache["vae"]), "--text_encoder", str(cache["text"]),
            "--data.latents", str(cache["latents"]), "--diffusion.prediction_type=v_prediction",
            "--diffusion.rescale_betas_zero_snr=true", "--diffusion.snr_gamma=0", "--train.max_steps=2",
            "--sample.steps=2", "--model.text_time_embedding=true", "--model.color_latents=true", *UNET_MODEL,
            *LOOP]  # fmt: skip
    assert train_ldm.main(args) == 0
    pipe = StableMaterialsPipeline.from_pretrained(root / "ldm" / "model")
    assert pipe.config.color_latents and pipe.unet.config.in_channels == 4 + 3
    sched = pipe.scheduler.config
    assert sched.rescale_betas_zero_snr and sched.timestep_spacing == "trailing" and sched.prediction_type == "v_prediction"
    pipe.scheduler.set_timesteps(4)
    assert int(pipe.scheduler.timesteps[0]) == 999  # sampling starts where training saw pure noise
    assert pipe.unet.config.addition_embed_type == "text"  # the caption also reaches every ResNet
    m = pipe("red bricks", num_inference_steps=2, height=32, width=32, tileable=True, patched=True,
             generator=torch.Generator().manual_seed(0), output_type="material").images[0]  # fmt: skip
    assert m.size == (32, 32)
    other = pipe("blue tiles", num_inference_steps=2, height=32, width=32, tileable=True, patched=True,
                 generator=torch.Generator().manual_seed(0), output_type="material").images[0]  # fmt: skip
    assert not torch.equal(torch.from_numpy(m.basecolor), torch.from_numpy(other.basecolor))

    lcm = ["--output_dir", str(root / "lcm"), "--teacher", str(root / "ldm" / "model"), "--data.latents", str(cache["latents"]),
           "--train.max_steps=2", "--lcm.time_cond_proj_dim=16", "--lcm.color_guidance_max=2.5", "--lcm.color_weight=4",
           *LOOP]  # fmt: skip
    assert distill_lcm.main(lcm) == 0
    student = StableMaterialsPipeline.from_pretrained(root / "lcm" / "model", student=True)
    assert student.config.color_latents and student.unet.config.in_channels == 7
    assert StableMaterialsPipeline.from_pretrained(root / "lcm" / "model").config.color_guidance_max == 2.5  # as distilled
    index = root / "lcm" / "model" / "model_index.json"  # a base that samples with its teacher (default model v3)
    index.write_text(json.dumps({**json.loads(index.read_text()), "prefer_teacher": True, "teacher_steps": 3}))
    more = ["--output_dir", str(root / "more"), "--init_from", str(root / "lcm" / "model"), "--data.latents",
            str(cache["latents"]), "--train.max_steps=1", "--sample.steps=2", *LOOP]  # fmt: skip
    assert train_ldm.main(more) == 0  # continuing a teacher keeps how its colours are guided
    continued = StableMaterialsPipeline.from_pretrained(root / "more" / "model").config
    assert continued.color_guidance_max == 2.5 and continued.prefer_teacher and continued.teacher_steps == 3
    m = student("red bricks", num_inference_steps=4, height=16, width=16, generator=torch.Generator().manual_seed(0),
                output_type="material").images[0]
    assert m.size == (16, 16) and torch.isfinite(torch.from_numpy(m.basecolor)).all()


def test_a_shifted_schedule_lowers_every_log_snr_and_keeps_zero_terminal_snr() -> None:
    from diffusers import DDPMScheduler

    cfg = DiffusionConfig(prediction_type="v_prediction", rescale_betas_zero_snr=True)
    base = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True)
    assert torch.equal(build_train_scheduler(cfg).alphas_cumprod, base.alphas_cumprod)  # 0: the schedule as is
    cfg.logsnr_shift = 2.0
    cfg.check()
    ab, ab0 = build_train_scheduler(cfg).alphas_cumprod.double(), base.alphas_cumprod.double()
    assert ab[-1] == 0 and (ab[1:] < ab[:-1]).all()  # still pure noise at t = T, still decreasing
    shift = torch.log(ab0[:-1] / (1 - ab0[:-1])) - torch.log(ab[:-1] / (1 - ab[:-1]))
    assert torch.allclose(shift, torch.full_like(shift, 2.0), atol=1e-3)
    with pytest.raises(ValueError, match="logsnr_shift"):
        DiffusionConfig(logsnr_shift=float("nan")).check()


def test_a_scale_shift_teacher_on_a_shifted_schedule_trains_with_min_snr_plus_one_and_distils_to_a_low_rank_student(
    cache: dict[str, Path],
) -> None:
    from stablematerials.lora_student import FILE, load_lora_student

    root = cache["root"] / "scale_shift"
    args = ["--output_dir", str(root / "ldm"), "--vae", str(cache["vae"]), "--text_encoder", str(cache["text"]),
            "--data.latents", str(cache["latents"]), "--diffusion.prediction_type=v_prediction",
            "--diffusion.rescale_betas_zero_snr=true", "--diffusion.logsnr_shift=1.5", "--diffusion.snr_gamma=5",
            "--diffusion.snr_plus_one=true", "--train.max_steps=2", "--sample.steps=2", "--model.scale_shift=true",
            *UNET_MODEL, *LOOP]  # fmt: skip
    assert train_ldm.main(args) == 0
    pipe = StableMaterialsPipeline.from_pretrained(root / "ldm" / "model")
    assert pipe.unet.config.resnet_time_scale_shift == "scale_shift"
    shifted = build_train_scheduler(DiffusionConfig(prediction_type="v_prediction", rescale_betas_zero_snr=True, logsnr_shift=1.5))
    assert torch.allclose(pipe.scheduler.alphas_cumprod, shifted.alphas_cumprod)  # the sampler loads the shifted schedule
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    block = pipe.unet.down_blocks[0].resnets[0]
    assert block.time_emb_proj.out_features == 2 * block.conv1.out_channels  # a scale and a shift per channel
    losses = [json.loads(line)["diffusion"] for line in (root / "ldm" / "losses.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)
    lcm = ["--output_dir", str(root / "lcm"), "--teacher", str(root / "ldm" / "model"), "--data.latents",
           str(cache["latents"]), "--train.max_steps=2", "--train.lr=1e-2", "--lcm.ema_decay=0", "--lcm.lora_rank=2",
           "--lcm.time_cond_proj_dim=16", *LOOP]  # fmt: skip
    assert distill_lcm.main(lcm) == 0
    folder = root / "lcm" / "model"
    assert sorted(p.name for p in (folder / "unet_lcm").iterdir()) == ["config.json", FILE]  # no whole UNet
    assert (folder / "unet_lcm" / FILE).stat().st_size < (folder / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size / 4
    student = StableMaterialsPipeline.from_pretrained(folder, student=True)
    teacher = StableMaterialsPipeline.from_pretrained(folder).unet
    assert student.is_student and student.unet.config.resnet_time_scale_shift == "scale_shift"
    assert torch.allclose(student.scheduler.alphas_cumprod, shifted.alphas_cumprod)  # distilled and sampled on it too
    assert student.unet.time_embedding.cond_proj.weight.abs().sum() > 0  # the guidance projection trained
    conv = "down_blocks.0.resnets.0.conv1.weight"
    delta = (student.unet.state_dict()[conv] - teacher.state_dict()[conv]).flatten(1)
    s = torch.linalg.svdvals(delta)
    assert s[0] > 0 and (s[2:] < 1e-3 * s[0]).all()  # a rank-2 change of the teacher's weight
    norm = "down_blocks.0.resnets.0.norm1.weight"  # not adapted: the teacher's
    assert torch.equal(student.unet.state_dict()[norm], teacher.state_dict()[norm])
    m, again = (student("red bricks", num_inference_steps=2, height=16, width=16, generator=torch.Generator().manual_seed(0),
                        output_type="material").images[0] for _ in range(2))  # fmt: skip
    assert m.size == (16, 16) and np.array_equal(m.basecolor, again.basecolor)
    from training.config import FinetuneConfig
    from training.finetune import student_config
    from training.package_model import package

    packaged = package(folder, root / "packaged", "card", overwrite=False, native_size=32)
    again = StableMaterialsPipeline.from_pretrained(packaged, student=True)
    assert again.unet.config.sample_size == 32 // again.vae_scale_factor != teacher.config.sample_size and (packaged / "unet_lcm" / FILE).is_file()
    assert torch.allclose(again.unet.state_dict()[conv], student.unet.state_dict()[conv], atol=2e-3)  # float16 teacher
    redo = student_config(FinetuneConfig(output_dir=str(root / "ft")), folder, folder)
    assert redo.init_student is None and redo.lcm.lora_rank == 2  # a fine-tune distils a new one of the same rank
    other = UNet2DConditionModel.from_config({**dict(teacher.config), "block_out_channels": (32, 64)})
    with pytest.raises(ValueError, match="does not fit the teacher"):
        load_lora_student(folder / "unet_lcm", other)
    with pytest.raises(ValueError, match="init_student continues a whole student"):
        distill_lcm.main(["--output_dir", str(root / "lcm2"), *lcm[2:], "--init_student", str(folder)])


def test_a_continued_model_trains_on_its_own_prediction_type(cache: dict[str, Path]) -> None:
    """init_from a v-prediction teacher: the targets are v, not the epsilon of diffusion.prediction_type's default
    (which the config leaves unset under init_from). Reconstructed from the batch's own latents and noisy input."""
    from training.config import LDMConfig, parse_config
    from training.data import batch_latents, collate
    from training.runtime import start_run

    root = cache["root"]
    base = root / "vbase"
    args = ["--output_dir", str(base), "--vae", str(cache["vae"]), "--text_encoder", str(cache["text"]),
            "--data.latents", str(cache["latents"]), "--diffusion.prediction_type=v_prediction",
            "--diffusion.rescale_betas_zero_snr=true", "--train.max_steps=1", "--sample.steps=2",
            "--model.color_latents=true", *UNET_MODEL, *LOOP]  # fmt: skip
    assert train_ldm.main(args) == 0
    cfg = parse_config(LDMConfig, ["--output_dir", str(root / "vmore"), "--init_from", str(base / "model"),
                                   "--data.latents", str(cache["latents"]), *LOOP])  # fmt: skip
    run = train_ldm.set_up(cfg, *start_run(cfg, "train_ldm"))
    batch = collate([run.dataset[(0, 1)], run.dataset[(1, 2)]])
    torch.manual_seed(0)
    noisy, t, _, target, _ = train_ldm.denoising_inputs(run, batch)
    x0 = batch_latents(run.vae, batch, noisy.device, run.color_latents)
    abar = run.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    noise = (noisy - abar.sqrt() * x0) / (1 - abar).sqrt()
    v = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    assert torch.allclose(target, v, atol=1e-4) and not torch.allclose(target, noise, atol=1e-2)


def test_the_default_model_build_skips_finished_stages_and_names_a_failed_one(tmp_path: Path, capsys) -> None:
    from training import build_default_model as build

    commands = build.stage_commands(tmp_path)
    assert list(commands) == ["data", "vae", "latents", "ldm", "lcm"]
    data_done = commands["data"][0]
    data_done.parent.mkdir(parents=True)
    data_done.write_text("{}")  # a "finished" data stage without materials: it is skipped, and the VAE stage fails
    assert build.main(["--work", str(tmp_path), "--until", "data"]) == 0
    assert build.main(["--work", str(tmp_path), "--until", "vae"]) == 1
    assert "stage vae failed" in capsys.readouterr().err
    assert not commands["vae"][0].exists()
    assert build.main(["--work", str(tmp_path), "--package", str(tmp_path / "model")]) == 2


def test_decoder_only_training_keeps_the_encoder_its_latents_and_their_normalisation(cache: dict[str, Path]) -> None:
    from training import train_vae
    from training_helpers import make_dataset

    root = cache["root"]
    data = make_dataset(root / "materials", per_family=1, size=32)
    out = root / "vae_decoder"
    args = ["--output_dir", str(out), "--init_from", str(cache["vae"]), "--decoder_only=true", "--data.root", str(data),
            "--data.resolution=32", "--data.crop_size=16", "--train.max_steps=2", "--train.batch_size=2", "--sample.count=1"]  # fmt: skip
    assert train_vae.main(args) == 0
    before, after = AutoencoderKL.from_pretrained(cache["vae"]), AutoencoderKL.from_pretrained(out / "vae")
    assert all(torch.equal(a, b) for a, b in zip(before.encoder.state_dict().values(), after.encoder.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(before.decoder.state_dict().values(), after.decoder.state_dict().values()))
    assert after.config.latents_mean == before.config.latents_mean and after.config.latents_std == before.config.latents_std
    assert vae_digest(out / "vae") == vae_digest(cache["vae"])  # the latent cache stays valid
    LatentDataset(cache["latents"], crop=8, vae_digest=vae_digest(out / "vae"))
    with pytest.raises(ValueError, match="decoder_only needs init_from"):
        train_vae.main(["--output_dir", str(root / "x"), "--decoder_only=true"])


RECIPES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "training" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("name", RECIPES)
def test_the_training_recipe_configs_are_valid(name: str) -> None:
    from training.capture_config import CaptureConfig
    from training.config import LatentCacheConfig, LCMConfig, LDMConfig, VAEConfig, parse_config

    kinds = {"vae": VAEConfig, "latents": LatentCacheConfig, "ldm": LDMConfig, "lcm": LCMConfig, "capture": CaptureConfig}
    cls = kinds[name.split("_")[0]]
    cfg = parse_config(cls, ["--config", str(Path(__file__).resolve().parents[1] / "training" / "configs" / f"{name}.yaml")])
    if name.startswith(("ldm_v", "lcm_v")):  # the default model's: whole-material crops of cached latents, at 512 px scale
        assert cfg.data.latents and cfg.data.crop_size == 256



def test_the_colour_latents_weight_in_the_denoising_loss(cache: dict[str, Path]) -> None:
    from training.config import LDMConfig, parse_config
    from training.losses import channel_mean
    from training.runtime import start_run

    root = cache["root"]

    def set_up(name: str, *extra: str) -> train_ldm.LDMRun:
        cfg = parse_config(LDMConfig, ["--output_dir", str(root / name), "--vae", str(cache["vae"]), "--text_encoder",
                                       str(cache["text"]), "--data.latents", str(cache["latents"]), *UNET_MODEL, *LOOP,
                                       "--diffusion.color_weight=8", *extra])  # fmt: skip
        return train_ldm.set_up(cfg, *start_run(cfg, "train_ldm"))

    run = set_up("cw", "--model.color_latents=true")
    assert run.channel_weight.tolist() == [1.0] * 4 + [8.0] * 3  # 4 VAE channels, then the 3 colour channels
    per = torch.rand(2, 7, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = (per[:, :4].sum(dim=(1, 2, 3)) + 8 * per[:, 4:].sum(dim=(1, 2, 3))) / (16 * (4 + 8 * 3))
    assert torch.allclose(channel_mean(per, run.channel_weight, dim=(1, 2, 3)), expected)
    assert torch.allclose(channel_mean(per, torch.ones(7)), per.mean())  # all ones: the plain mean
    with pytest.raises(ValueError, match="no colour latents"):
        set_up("cw_plain")
    with pytest.raises(ValueError, match="color_weight"):
        DiffusionConfig(color_weight=0).check()
