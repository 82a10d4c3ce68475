"""Training data and config: map-aware augmentation, datasets, sample order, config parsing, checkpoint discovery."""

from __future__ import annotations

import json
import logging
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from training_helpers import make_dataset, make_image_folder

from stablematerials.material import normal_from_height, pack_model_channels
from training.augment import dihedral, random_crop, wrapped_crop
from training.checkpoint import STATE_FILE, latest_checkpoint, resolve_resume
from training.config import LDMConfig, VAEConfig, parse_config
from training.data import (
    ImageDataset,
    MaterialDataset,
    ShardedBatchSampler,
    caption_from_name,
    discover_materials,
    open_image_source,
)  # fmt: skip

# ----------------------------------------------------------------------------------------------
# Augmentation: normals must follow the surface
# ----------------------------------------------------------------------------------------------


def _material_from_height(h: torch.Tensor) -> torch.Tensor:
    """Model-space material (1, 9, N, N) whose normal map is derived from the height field h (1, 1, N, N)."""
    n = normal_from_height(h, 4.0)
    maps = {"basecolor": h.expand(1, 3, -1, -1), "normal": n, "height": h, "roughness": h, "metallic": h}
    return pack_model_channels(maps)


def _asymmetric_height(size: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    h = 0.5 + 0.2 * torch.sin(2 * torch.pi * x / size) + 0.15 * torch.cos(2 * torch.pi * 2 * y / size + 0.7)
    h = h + 0.1 * torch.sin(2 * torch.pi * (x + 3 * y) / size)
    return h.float()[None, None]


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_dihedral_normals_match_height_of_transformed_material(k: int, mirror: bool) -> None:
    h = _asymmetric_height()
    x = _material_from_height(h)
    out = dihedral(x, k, mirror)
    expected = normal_from_height(out[:, 5:6] * 0.5 + 0.5, 4.0)[:, :2]
    assert torch.allclose(out[:, 3:5], expected, atol=1e-5)
    # a naive transform that moves pixels but keeps the normal's X/Y would be wrong (except the identity)
    naive = dihedral(x, k, mirror, normals=False)
    if k or mirror:
        assert not torch.allclose(naive[:, 3:5], expected, atol=1e-3)


def test_wrapped_crop_is_roll_then_crop() -> None:
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 8, 8)
    crop = wrapped_crop(x, 6, 5, 4)
    rolled = torch.roll(x, shifts=(-6, -5), dims=(-2, -1))[:, :4, :4]
    assert torch.equal(crop, rolled)


def test_random_crop_keeps_normals_consistent_and_is_seeded() -> None:
    x = _material_from_height(_asymmetric_height(32))[0]
    a = random_crop(x, 32, np.random.default_rng(5), wrap=True, flips=True, rotations=True)
    b = random_crop(x, 32, np.random.default_rng(5), wrap=True, flips=True, rotations=True)
    assert torch.equal(a, b)
    expected = normal_from_height(a[None, 5:6] * 0.5 + 0.5, 4.0)[0, :2]
    assert torch.allclose(a[3:5], expected, atol=1e-5)
    with pytest.raises(ValueError, match="crop size 64"):
        random_crop(x, 64, np.random.default_rng(0), wrap=True, flips=False, rotations=False)


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "procedural", per_family=2, size=32)


def test_discover_materials_reads_captions_and_filters_families(data_root: Path) -> None:
    records = discover_materials(data_root, "train")
    assert len(records) == 6 and {r.family for r in records} == {"sine", "checker", "solid"}
    assert all(r.caption == f"a {r.family} material" for r in records)
    held_in = discover_materials(data_root, "train", exclude_families=["solid"])
    assert {r.family for r in held_in} == {"sine", "checker"}
    with pytest.raises(ValueError, match="no material folders"):
        discover_materials(data_root, "train", families=["nonexistent"])
    with pytest.raises(ValueError, match="does not exist"):
        discover_materials(data_root / "missing", "train")


def test_plain_folder_of_materials_gets_captions_from_names(data_root: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(data_root / "train" / "sine_train_000", tmp_path / "Bricks_Red-01_2K")
    records = discover_materials(tmp_path, "train")
    assert [r.caption for r in records] == ["Bricks Red 01"]
    assert caption_from_name("rusty_metal_plate") == "rusty metal plate"


def test_material_dataset_crops(data_root: Path) -> None:
    ds = MaterialDataset(discover_materials(data_root, "train"), crop_size=16, resolution=32)
    item = ds[(0, 123)]
    assert item["x"].shape == (9, 16, 16) and item["caption"] and item["name"]
    assert torch.equal(item["x"], ds[(0, 123)]["x"])
    assert any(not torch.equal(item["x"], ds[(0, seed)]["x"]) for seed in range(5))  # other seeds, other crops
    assert -1.0 <= float(item["x"].min()) and float(item["x"].max()) <= 1.0


def test_image_folder_skips_corrupt_file_with_warning(tmp_path: Path, caplog) -> None:
    folder = make_image_folder(tmp_path / "imgs", n=2, size=32, corrupt=1)
    ds = ImageDataset(open_image_source(folder), crop_size=16, resolution=32)
    assert len(ds) == 3
    with caplog.at_level(logging.WARNING, logger="training.data"):
        item = ds[(2, 0)]  # the corrupt one: skipped, the next readable image is returned
    assert item["image"].shape == (3, 16, 16) and item["name"] == "img_000.png"
    assert any("bad_0.png" in r.getMessage() for r in caplog.records)


def test_parquet_and_tar_shards(tmp_path: Path) -> None:
    import io
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = make_image_folder(tmp_path / "imgs", n=2, size=32)
    pngs = [(folder / f"img_{i:03d}.png").read_bytes() for i in range(2)]
    pq.write_table(pa.table({"jpg": [pngs[0], b"garbage", pngs[1]], "TEXT": ["one", "two", "three"]}), tmp_path / "s.parquet")
    ds = ImageDataset(open_image_source(tmp_path / "s.parquet", "jpg", "TEXT"), crop_size=16)
    assert len(ds) == 3 and ds[(0, 0)]["caption"] == "one" and ds[(1, 0)]["caption"] == "three"
    with pytest.raises(ValueError, match="no column 'image'"):
        open_image_source(tmp_path / "s.parquet")
    with tarfile.open(tmp_path / "shard.tar", "w") as tar:
        for key, data in (("a.png", pngs[0]), ("a.txt", b"red bricks")):
            info = tarfile.TarInfo(key)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ds = ImageDataset(open_image_source(tmp_path / "shard.tar"), crop_size=16)
    assert len(ds) == 1 and ds[(0, 0)]["caption"] == "red bricks"


def test_sampler_is_disjoint_across_ranks_and_resumable() -> None:
    a = ShardedBatchSampler(10, 2, seed=3, rank=0, world=2)
    b = ShardedBatchSampler(10, 2, seed=3, rank=1, world=2)
    seen_a = {i for k in range(2) for i, _ in a.batch(k)}
    seen_b = {i for k in range(2) for i, _ in b.batch(k)}
    assert len(seen_a) == 4 and len(seen_b) == 4 and not seen_a & seen_b
    resumed = ShardedBatchSampler(10, 2, seed=3, rank=0, world=2, start_batch=3)
    it, fresh = iter(resumed), iter(ShardedBatchSampler(10, 2, seed=3, rank=0, world=2))
    for _ in range(3):
        next(fresh)
    assert [next(it) for _ in range(4)] == [next(fresh) for _ in range(4)]
    whole_epoch = [i for k in range(5) for i, _ in ShardedBatchSampler(10, 2, seed=3).batch(k)]
    assert sorted(whole_epoch) == list(range(10))


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------


def test_config_file_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("train:\n  lr: 0.001\n  max_steps: 7\ndata:\n  families: [a, b]\n")
    (tmp_path / "c.toml").write_text("seed = 4\n[train]\nbatch_size = 3\n")
    cfg = parse_config(LDMConfig, ["--config", str(tmp_path / "c.yaml"), "--train.max_steps=9", "--semi.images", "x"])
    assert cfg.train.lr == 0.001 and cfg.train.max_steps == 9 and cfg.data.families == ["a", "b"] and cfg.semi.images == "x"
    cfg = parse_config(VAEConfig, [f"--config={tmp_path / 'c.toml'}", "--train.tensorboard", "true"])
    assert cfg.seed == 4 and cfg.train.batch_size == 3 and cfg.train.tensorboard is True


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--train.lrr=1"], "unknown config key 'train.lrr'"),
        (["--nope", "1"], "unknown config key 'nope'"),
        (["--optim.lr=1"], "unknown config section 'optim'"),
        (["--train.max_steps=abc"], "expects an integer"),
        (["--train.max_steps=0"], "train.max_steps must be > 0"),
        (["--train.mixed_precision=fp64"], "must be one of"),
        (["--train.lr"], "has no value"),
        (["positional"], "unexpected argument"),
        (["--data.crop_size=256"], "data.resolution"),
    ],
)
def test_bad_configs_name_the_problem(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(VAEConfig, argv)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"train": {"learning_rate": 1}}))
    with pytest.raises(ValueError, match="unknown config key 'train.learning_rate'"):
        parse_config(VAEConfig, ["--config", str(tmp_path / "c.json")])
    with pytest.raises(ValueError, match="does not exist"):
        parse_config(VAEConfig, ["--config", str(tmp_path / "missing.yaml")])


# ----------------------------------------------------------------------------------------------
# Checkpoint discovery
# ----------------------------------------------------------------------------------------------


def test_latest_skips_partial_and_incomplete(tmp_path: Path) -> None:
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step:08d}").mkdir()
        (tmp_path / f"checkpoint-{step:08d}" / STATE_FILE).write_text(json.dumps({"step": step}))
    (tmp_path / ".checkpoint-00000006.partial").mkdir()  # killed while writing
    (tmp_path / "checkpoint-00000008").mkdir()
    (tmp_path / "checkpoint-00000008" / STATE_FILE).write_text('{"step": 8')  # truncated
    assert latest_checkpoint(tmp_path).name == "checkpoint-00000004"
    assert resolve_resume(tmp_path, "latest").name == "checkpoint-00000004"
    assert resolve_resume(tmp_path, None) is None
    with pytest.raises(ValueError, match="incomplete"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-00000008"))
    with pytest.raises(ValueError, match="no such checkpoint"):
        resolve_resume(tmp_path, str(tmp_path / "nowhere"))


def test_render_loss_gradient_is_finite_where_normals_leave_the_unit_disk() -> None:
    from stablematerials.render import random_light_positions
    from training.losses import render_l1

    pred = torch.zeros(1, 9, 4, 4)
    pred[:, 3], pred[:, 4] = 1.5, 0.0  # clamps to (1, 0): on the unit circle, where sqrt(1 - x^2 - y^2) has no slope
    pred[:, 3, 0, 0], pred[:, 4, 0, 0] = 0.9, 0.9  # outside the disk
    pred.requires_grad_(True)
    loss = render_l1(pred, torch.zeros(1, 9, 4, 4), random_light_positions(1, 2, generator=torch.Generator().manual_seed(0)))
    loss.backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("name, cls", [("vae_small", VAEConfig), ("ldm_small", LDMConfig)])
def test_shipped_configs_parse(name: str, cls) -> None:
    cfg = parse_config(cls, ["--config", str(Path(__file__).resolve().parents[1] / "training" / "configs" / f"{name}.yaml")])
    assert cfg.data.crop_size == 64 and cfg.train.max_steps > 0


@pytest.mark.parametrize("view", ["render", "basecolor"])
def test_adversarial_gradient_reaches_the_unet_through_decoder_and_renderer(view: str) -> None:
    from stablematerials.material import unpack_model_channels
    from stablematerials.tiny import tiny_unet, tiny_vae
    from training.losses import hinge_g_loss, predicted_x0
    from training.models import ProjectionDiscriminator
    from training.semi import discriminator_view, downsample, own_trajectory_inputs

    torch.manual_seed(0)
    vae, unet = tiny_vae(0).requires_grad_(False), tiny_unet(0)
    disc = ProjectionDiscriminator(3, 32, channels=8).requires_grad_(False)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    # As in train_ldm: fakes from pure noise at T, one of the two a step along the model's own trajectory.
    cond = torch.randn(2, 1, 32)
    noisy, t = own_trajectory_inputs(unet, scheduler, torch.randn(2, 4, 8, 8), torch.tensor([999, 999]), cond, "epsilon", 0.5)
    assert t[0] == 999 and 499 <= t[1] < 999 and not noisy.requires_grad
    x0 = predicted_x0(scheduler, unet(noisy, t, encoder_hidden_states=cond).sample, noisy, t, "epsilon")
    decoded = vae.decode(x0).sample
    fake = discriminator_view(decoded, view, torch.tensor([0.0, 0.0, 2.0]), 8)
    assert fake.shape == (2, 3, 8, 8)
    if view == "basecolor":
        torch.testing.assert_close(fake, downsample(unpack_model_channels(decoded)["basecolor"], 8))
    hinge_g_loss(disc(fake, cond)).backward()
    grads = [p.grad for p in unet.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in vae.parameters()) and all(p.grad is None for p in disc.parameters())


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    from training.runtime import ensure_finite

    ensure_finite(3, {"loss": 0.5})
    with pytest.raises(FloatingPointError, match="step 7: render became non-finite"):
        ensure_finite(7, {"loss": 0.5, "render": float("nan")})


def test_projection_discriminator_ignores_the_embedding_scale() -> None:
    from training.models import ProjectionDiscriminator

    torch.manual_seed(0)
    disc = ProjectionDiscriminator(3, 16, channels=8).eval()
    x, e = torch.rand(2, 3, 16, 16), torch.randn(2, 1, 16)
    with torch.no_grad():
        torch.testing.assert_close(disc(x, e), disc(x, 19.6 * e))
        assert not torch.allclose(disc(x, e), disc(x, -e))  # but the caption still matters


def test_anchor_holds_only_the_maps_the_discriminator_does_not_see() -> None:
    from stablematerials.tiny import tiny_unet
    from training.semi import FrozenSnapshot, anchor_loss, anchor_maps_for

    assert anchor_maps_for("basecolor", None) == ["normal", "height", "roughness", "metallic"]
    assert anchor_maps_for("render", None) == [] and anchor_maps_for("render", ["height"]) == ["height"]
    ref = torch.rand(2, 9, 8, 8) * 2 - 1
    recoloured = ref.clone()
    recoloured[:, 0:3] = -ref[:, 0:3]  # a new basecolor only
    maps = anchor_maps_for("basecolor", None)
    assert float(anchor_loss(recoloured, ref, maps)) == 0.0
    bumped = ref.clone()
    bumped[:, 5] += 0.5  # height moved: mean over the 5 anchored channels (normal X, Y, height, roughness, metallic)
    assert float(anchor_loss(bumped, ref, maps)) == pytest.approx(0.25 / 5)
    assert float(anchor_loss(bumped, ref, ["roughness"])) == 0.0

    # The snapshot is frozen, survives a state_dict round trip, and is empty until taken.
    unet = tiny_unet(0)
    snap = FrozenSnapshot(lambda: tiny_unet(1))
    assert snap.state_dict() == {}
    snap.take(unet)
    assert not any(p.requires_grad for p in snap.module.parameters())
    with torch.no_grad():
        next(unet.parameters()).add_(1.0)  # training goes on; the snapshot does not follow
    restored = FrozenSnapshot(lambda: tiny_unet(1))
    restored.load_state_dict(snap.state_dict())
    for a, b in zip(snap.module.state_dict().values(), restored.module.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert not torch.equal(next(unet.parameters()), next(restored.module.parameters()))


def test_semi_trajectory_share_out_of_range_is_named() -> None:
    with pytest.raises(ValueError, match=r"semi.trajectory_share must be in \[0, 1\], got 1.5"):
        parse_config(LDMConfig, ["--semi.trajectory_share=1.5"])


def test_ddim_step_lands_where_the_noise_schedule_puts_x0() -> None:
    from training.losses import ddim_step

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    x0, eps, t = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.tensor([0, 400, 999])
    torch.testing.assert_close(ddim_step(scheduler, x0, eps, t), scheduler.add_noise(x0, eps, t))


class OracleDenoiser(torch.nn.Module):
    """Knows the clean latents: outputs the exact noise of x at t (an epsilon-prediction UNet with zero error)."""

    def __init__(self, scheduler, x0: torch.Tensor) -> None:
        super().__init__()
        self.scheduler, self.x0 = scheduler, x0
        self.weight = torch.nn.Parameter(torch.ones(()))  # trainable, to check no gradient reaches it

    def forward(self, x, t, encoder_hidden_states):
        ab = self.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps = (x - ab.sqrt() * self.x0[-len(x) :]) / (1 - ab).sqrt()
        return types.SimpleNamespace(sample=self.weight * eps)


def test_own_trajectory_inputs_move_a_share_of_the_batch_one_ddim_step() -> None:
    from training.semi import own_trajectory_inputs

    torch.manual_seed(0)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    x0, eps = torch.randn(4, 4, 8, 8), torch.randn(4, 4, 8, 8)
    t = torch.tensor([900, 700, 999, 600])
    noisy, cond = scheduler.add_noise(x0, eps, t), torch.randn(4, 1, 16)
    oracle = OracleDenoiser(scheduler, x0)
    same_x, same_t = own_trajectory_inputs(oracle, scheduler, noisy, t, cond, "epsilon", 0.0)
    assert same_x is noisy and same_t is t
    moved_x, moved_t = own_trajectory_inputs(oracle, scheduler, noisy, t, cond, "epsilon", 0.5)
    assert torch.equal(moved_x[:2], noisy[:2]) and torch.equal(moved_t[:2], t[:2])  # the first half untouched
    assert torch.all(moved_t[2:] < t[2:]) and torch.all(moved_t[2:] >= t[2:] // 2)  # one step later, at most t/2
    # A perfect denoiser's DDIM step stays on its trajectory: the same clean latent under the same noise at t'.
    torch.testing.assert_close(moved_x[2:], scheduler.add_noise(x0[2:], eps[2:], moved_t[2:]), atol=1e-4, rtol=1e-4)
    assert not moved_x.requires_grad  # the step is not trained through


def test_guided_output_is_classifier_free_guidance_in_one_call() -> None:
    from stablematerials.tiny import tiny_unet
    from stablematerials.guidance import apply_guidance
    from training.semi import guided_output, own_trajectory_inputs

    torch.manual_seed(0)
    unet = tiny_unet(0).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([999, 600])
    cond, uncond = torch.randn(2, 1, 32), torch.zeros(2, 1, 32)
    with torch.no_grad():
        c = unet(x, t, encoder_hidden_states=cond).sample
        u = unet(x, t, encoder_hidden_states=uncond).sample
        torch.testing.assert_close(guided_output(unet, x, t, cond, uncond, 1.0), c)
        torch.testing.assert_close(guided_output(unet, x, t, cond, uncond, 5.0), u + 5.0 * (c - u), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(apply_guidance(torch.ones(2), torch.zeros(2), 3.0), torch.full((2,), 3.0))
    with pytest.raises(ValueError, match="guidance_scale 5.0 needs the unconditional embeddings"):
        own_trajectory_inputs(unet, DDPMScheduler(), x, t, cond, "epsilon", 0.5, guidance_scale=5.0)


def test_consistency_loss_weights_the_colour_latents() -> None:
    import pytest

    from training.config import LCMSettings
    from training.losses import color_channel_weights, consistency_loss

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 7, 4, 4, generator=g), torch.randn(2, 7, 4, 4, generator=g)
    plain = consistency_loss(pred, target, "huber", 0.001)
    assert torch.allclose(consistency_loss(pred, target, "huber", 0.001, torch.ones(7)), plain)  # all ones: the mean
    w = color_channel_weights(7, 4.0)
    assert w.tolist() == [1.0] * 4 + [4.0] * 3  # the last three channels are the colour latents
    per = ((pred - target) ** 2).mean(dim=(0, 2, 3))  # (C,) L2 per channel
    assert torch.allclose(consistency_loss(pred, target, "l2", 0.0, w), (per * w).sum() / w.sum())
    target_colour_only = target.clone()
    target_colour_only[:, :4] = pred[:, :4]  # errors only in the colour channels weigh more with the weights
    assert consistency_loss(pred, target_colour_only, "l2", 0.0, w) > consistency_loss(pred, target_colour_only, "l2", 0.0)
    with pytest.raises(ValueError, match="lcm.color_weight must be a number > 0, got 0"):
        LCMSettings(color_weight=0).check()
