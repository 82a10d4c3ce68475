"""The training scripts as commands: `--help` from the config dataclasses, one-line errors, console entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from stablematerials.cli import main as cli_main
from training import config_help, train_vae
from training.config import LDMConfig, parse_config


def test_help_lists_keys_types_defaults_and_reasons(capsys):
    with pytest.raises(SystemExit) as done:
        parse_config(LDMConfig, ["--train.max_steps", "5", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: stablematerials train ldm [--config FILE]")
    assert "   or: python -m training.train_ldm" in text
    # the script's own default (LDMConfig's train section: batch 16), the type and the reason from the source
    assert "  --train.batch_size int = 16  # per process and micro-batch" in text
    assert "  --semi.view Literal['render', 'basecolor'] = 'basecolor'  # What the discriminator compares" in text
    assert "\ntrain: The loop: steps, optimiser, precision, checkpoints and logging. (small UNet, small batch)" in text


def test_comments_above_a_field_are_its_reason():
    from training.config import VAEModelConfig

    reasons = config_help._field_comments(VAEModelConfig)
    assert reasons["mid_block_attention"].startswith("Self-attention in the middle block")
    assert reasons["latent_channels"].startswith("compact latents")


def test_errors_are_one_line(capsys, tmp_path):
    code = config_help.run_main(train_vae.main, "python -m training.train_vae", ["--train.lr", "fast"])
    assert code == 2
    assert capsys.readouterr().err == "python -m training.train_vae: error: config key 'train.lr' expects a number, got 'fast'\n"
    missing = ["--data.root", str(tmp_path / "none"), "--output_dir", str(tmp_path / "run")]
    assert config_help.run_main(train_vae.main, "python -m training.train_vae", missing) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_console_commands(capsys):
    with pytest.raises(SystemExit) as done:
        cli_main(["train", "vae", "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: stablematerials train vae")
    with pytest.raises(SystemExit) as done:
        cli_main(["finetune", "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: stablematerials finetune")
    assert cli_main(["train", "lcm", "--lcm.w_min", "9"]) == 2
    assert capsys.readouterr().err == "stablematerials train: error: lcm.w_min (9.0) must be in [0, lcm.w_max (8.0)]\n"
    with pytest.raises(SystemExit) as done:
        cli_main(["train", "gan"])
    assert done.value.code == 2


CONFIGS = Path(__file__).parents[1] / "training" / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_parses_and_checks(name):
    """The configs the model card and training/README.md name load as their script loads them (parse_config runs
    every section's check)."""
    from training.capture_config import CaptureConfig
    from training.config import LatentCacheConfig, LCMConfig, VAEConfig

    kinds = {"vae": VAEConfig, "latents": LatentCacheConfig, "ldm": LDMConfig, "lcm": LCMConfig, "capture": CaptureConfig}
    kind = kinds[name.split("_")[0]]
    cfg = parse_config(kind, ["--config", str(CONFIGS / name)])
    assert cfg.output_dir.startswith("runs/")
