"""Fine-tuning on a user's own materials: LoRA on the base teacher, re-distilled student, packaged result."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import accelerate_launch, make_dataset, make_material, save_tiny_text_encoder

from stablematerials.io import save_material
from stablematerials.pipeline import StableMaterialsPipeline
from stablematerials.tiny import tiny_pipeline, tiny_unet
from training import distill_lcm, finetune, train_ldm, train_vae
from training.config import LoRAConfig
from training.models import add_lora, merge_lora

DATA = ["--data.resolution=32", "--data.crop_size=16"]
LOOP = ["--train.batch_size=2", "--train.log_every=1", "--sample.count=1"]
STEPS = ["--sample.steps=2"]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny trained base model with teacher unet/ and student unet_lcm/ (2 steps of each script)."""
    root = tmp_path_factory.mktemp("finetune_base")
    data = make_dataset(root / "data", per_family=1, size=32, families=("sine", "solid"))
    text = save_tiny_text_encoder(root / "text_encoder")
    vae = ["--model.block_out_channels=16,16", "--model.norm_num_groups=8", "--model.latent_channels=4"]
    assert train_vae.main(["--output_dir", str(root / "vae"), "--data.root", str(data), *DATA, *vae, *LOOP, "--train.max_steps=2"]) == 0
    unet = ["--model.block_out_channels=16,32", "--model.attention_levels=false,true", "--model.attention_head_dim=8",
            "--model.norm_num_groups=8"]  # fmt: skip
    assert train_ldm.main(["--output_dir", str(root / "ldm"), "--vae", str(root / "vae" / "vae"), "--text_encoder", str(text),
                           "--data.root", str(data), *DATA, *unet, *LOOP, *STEPS, "--train.max_steps=2"]) == 0  # fmt: skip
    assert distill_lcm.main(["--output_dir", str(root / "lcm"), "--teacher", str(root / "ldm" / "model"), "--data.root", str(data),
                             *DATA, *LOOP, "--train.max_steps=2", "--lcm.time_cond_proj_dim=32"]) == 0  # fmt: skip
    return root / "lcm" / "model"


@pytest.fixture(scope="module")
def user_materials(tmp_path_factory) -> Path:
    """What a user has: downloaded materials in ambientCG and Poly Haven layouts, no captions file."""
    root = tmp_path_factory.mktemp("my_materials")
    save_material(make_material("checker", 32, 1), root / "Tiles_Blue_2K", naming="ambientcg", name="Tiles_Blue_2K")
    save_material(make_material("checker", 32, 2), root / "blue_tiles_02", naming="polyhaven", name="blue_tiles_02")
    return root


def _unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in load_file(folder / "diffusion_pytorch_model.safetensors").items()}


def test_finetune_trains_adapters_only_and_writes_a_loadable_model(base: Path, user_materials: Path, tmp_path: Path) -> None:
    out = tmp_path / "my_style"
    args = ["--model", str(base), "--data.root", str(user_materials), "--output_dir", str(out), *DATA, *LOOP, *STEPS,
            "--train.max_steps=3", "--train.warmup_steps=0", "--train.lr=1e-2", "--lora.rank=4", "--distill.max_steps=2",
            "--distill.lcm.time_cond_proj_dim=32"]  # fmt: skip
    assert finetune.main(args) == 0
    teacher_run = out / "teacher"
    assert [json.loads(x)["step"] for x in (teacher_run / "losses.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert json.loads((out / "config.json").read_text())["lora"]["rank"] == 4

    # The result: teacher and student, plain diffusers folders (adapters merged: the base model's keys only).
    before, after = _unet_weights(base / "unet"), _unet_weights(out / "model" / "unet")
    assert set(before) == set(after)
    changed = {k for k in before if not torch.equal(before[k].half().float(), after[k])}  # the package is float16
    # LoRA touched the targeted layers and nothing else (conv_in, time embedding, norms keep the base weights).
    assert any(".conv1.weight" in k for k in changed) and any("attn1.to_q.weight" in k for k in changed)
    assert all(k.endswith(".weight") and any(t in k for t in ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2")) for k in changed), changed
    student_before, student_after = _unet_weights(base / "unet_lcm"), _unet_weights(out / "model" / "unet_lcm")
    assert any(not torch.equal(student_before[k].half().float(), student_after[k]) for k in student_before)  # re-distilled
    assert "Tiles_Blue_2K" not in (out / "model" / "README.md").read_text() and str(user_materials) in (out / "model" / "README.md").read_text()

    pipe = StableMaterialsPipeline.from_pretrained(out / "model", student=True)
    assert pipe.is_student
    m = pipe("blue tiles", num_inference_steps=4, generator=torch.Generator().manual_seed(0), output_type="material").images[0]
    assert m.size == (16, 16)
    teacher = StableMaterialsPipeline.from_pretrained(out / "model")
    assert not teacher.is_student

    # Resuming a finished run does not train again.
    mtime = (out / "model" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    assert finetune.main([*args, "--resume", "latest"]) == 0
    assert len((teacher_run / "losses.jsonl").read_text().splitlines()) == 3
    assert (out / "model" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns >= mtime


def test_merged_adapters_give_the_same_output() -> None:
    torch.manual_seed(0)
    unet = tiny_unet(0)
    add_lora(unet, LoRAConfig(rank=4))
    assert all(("lora_" in n) == p.requires_grad for n, p in unet.named_parameters())
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)  # B starts at zero; give the adapters an effect
    x, t = torch.randn(1, unet.config.in_channels, 8, 8), torch.tensor([500])
    cond = torch.randn(1, 1, unet.config.cross_attention_dim)
    with torch.no_grad():
        adapted = unet(x, t, encoder_hidden_states=cond).sample
        merged = merge_lora(copy.deepcopy(unet))
        assert set(merged.state_dict()) == set(tiny_unet(0).state_dict())
        torch.testing.assert_close(merged(x, t, encoder_hidden_states=cond).sample, adapted, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(tiny_unet(0)(x, t, encoder_hidden_states=cond).sample, adapted, atol=1e-3)


def test_finetune_refuses_bad_bases_and_settings(user_materials: Path, tmp_path: Path) -> None:
    student_only = tmp_path / "student_only"
    tiny_pipeline(0, student=True, vision=False).save_pretrained(student_only)
    with pytest.raises(ValueError, match="only a distilled student"):
        finetune.main(["--model", str(student_only), "--data.root", str(user_materials), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="data.root is not set"):
        finetune.main(["--model", str(student_only)])
    with pytest.raises(ValueError, match="not a pipeline folder"):
        finetune.main(["--model", str(tmp_path), "--data.root", str(user_materials)])
    with pytest.raises(ValueError, match="lora.target_modules .* match no layer"):
        add_lora(tiny_unet(0), LoRAConfig(rank=2, target_modules=["no_such_layer"]))
    with pytest.raises(ValueError, match="vae is set, but init_from"):
        train_ldm.main(["--init_from", str(student_only), "--vae", "somewhere"])


def test_finetune_on_two_processes(base: Path, user_materials: Path, tmp_path: Path) -> None:
    """`accelerate launch` with 2 processes: both stages share one process group, each process sees its own data."""
    out = tmp_path / "ddp"
    args = ["--model", str(base), "--data.root", str(user_materials), "--output_dir", str(out), *DATA, *STEPS,
            "--train.batch_size=1", "--train.log_every=1", "--sample.count=1", "--train.max_steps=2", "--lora.rank=4",
            "--distill.max_steps=1", "--distill.lcm.time_cond_proj_dim=32", "--train.debug_log_samples=true"]  # fmt: skip
    result = accelerate_launch("training.finetune", args)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = {}
    for rank in (0, 1):
        lines = (out / "teacher" / "debug" / f"rank{rank}.txt").read_text().splitlines()
        seen[rank] = [name for line in lines for name in line.split("\t")[1:]]
    assert len(seen[0]) == len(seen[1]) == 2 and seen[0] != seen[1]
    assert (out / "student" / "model" / "unet_lcm" / "config.json").is_file()
    pipe = StableMaterialsPipeline.from_pretrained(out / "model", student=True)
    assert pipe("blue tiles", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0].size == [16, 16]
