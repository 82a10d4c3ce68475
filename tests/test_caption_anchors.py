"""Caption anchors (stablematerials/anchors.py): text prompts pulled toward the model's training captions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from stablematerials.anchors import check_anchor_settings, snap_to_anchors


def test_snapping_moves_toward_the_mean_of_the_nearest_anchors_and_keeps_the_length() -> None:
    anchors = torch.eye(4)  # four orthogonal "captions"
    prompt = torch.tensor([[3.0, 1.0, 0.2, 0.0]])  # nearest: anchor 0, then 1
    assert torch.equal(snap_to_anchors(prompt, anchors, neighbours=2, weight=0.0), prompt)
    full = snap_to_anchors(prompt, anchors, neighbours=2, weight=1.0)
    assert torch.allclose(F.normalize(full, dim=-1), F.normalize(torch.tensor([[1.0, 1.0, 0, 0]]), dim=-1), atol=1e-6)
    assert torch.allclose(full.norm(), prompt.norm())
    half = snap_to_anchors(prompt, anchors, neighbours=1, weight=0.5)

    def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.arccos(F.cosine_similarity(a, b).clamp(-1, 1))

    assert torch.allclose(angle(half, prompt), angle(prompt, anchors[:1]) / 2, atol=1e-5)  # half way along the arc
    assert snap_to_anchors(prompt, anchors, neighbours=10, weight=1.0).shape == prompt.shape  # k capped at N


@pytest.mark.parametrize("weight, neighbours, bad", [(1.5, 8, "anchor_weight"), (-0.1, 8, "anchor_weight"),
                                                     (float("nan"), 8, "anchor_weight"), (0.5, 0, "anchor_neighbours"),
                                                     (0.5, 2.0, "anchor_neighbours"), (0.5, True, "anchor_neighbours"),
                                                     (True, 8, "anchor_weight")])  # fmt: skip
def test_bad_anchor_settings_are_named(weight, neighbours, bad) -> None:
    with pytest.raises(ValueError, match=bad):
        check_anchor_settings(weight, neighbours)


def _prompt_embeds(pipe, prompts: list[str]) -> torch.Tensor:
    embeds, _ = pipe.encode_prompt(prompts, torch.device("cpu"), 1, False)  # (B, 1, D)
    return embeds[:, 0]


def test_a_model_with_anchors_pulls_text_prompts_but_not_the_empty_one_and_round_trips(tmp_path: Path) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["red bricks", "", "glossy white tiles"]
    plain = _prompt_embeds(pipe, prompts)
    anchors = torch.randn(16, pipe.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    pipe.set_caption_anchors(anchors)
    assert torch.equal(_prompt_embeds(pipe, prompts), plain)  # anchors alone do nothing: anchor_weight is None
    pipe.register_to_config(anchor_weight=0.5, anchor_neighbours=3)
    pulled = _prompt_embeds(pipe, prompts)
    assert torch.equal(pulled[1], plain[1])  # the unconditional input is never moved
    expected = snap_to_anchors(plain[[0, 2]], anchors, 3, 0.5)
    assert torch.allclose(pulled[[0, 2]], expected, atol=1e-5) and not torch.allclose(pulled[0], plain[0], atol=1e-3)

    pipe.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert (index["anchor_weight"], index["anchor_neighbours"]) == (0.5, 3)
    loaded = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    assert loaded.caption_anchors.shape == anchors.shape
    assert torch.allclose(_prompt_embeds(loaded, prompts), pulled, atol=2e-3)  # anchors stored as float16
    a = loaded("red bricks", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    b = loaded("red bricks", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    switched_off = StableMaterialsPipeline.from_pretrained(tmp_path / "model", anchor_weight=0.0)
    assert torch.allclose(_prompt_embeds(switched_off, prompts), plain, atol=1e-6)


def test_image_prompts_are_pulled_by_their_own_weight_and_round_trip(tmp_path: Path) -> None:
    from PIL import Image

    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0)  # a sentence-encoder model with the default model's kind of image encoder
    pipe.set_progress_bar_config(disable=True)
    picture = Image.fromarray((torch.rand(40, 48, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy())
    items = ["red bricks", picture]
    plain = _prompt_embeds(pipe, items)
    anchors = torch.randn(16, pipe.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    pipe.set_caption_anchors(anchors)
    pipe.register_to_config(anchor_weight=0.5, anchor_neighbours=3)
    text_only = _prompt_embeds(pipe, items)
    assert torch.equal(text_only[1], plain[1])  # anchor_weight moves text only
    pipe.register_to_config(image_anchor_weight=0.8)
    both = _prompt_embeds(pipe, items)
    assert torch.allclose(both[0], text_only[0], atol=1e-6)  # the text keeps its own weight
    scale = pipe.config.embedding_scale  # anchoring happens before the embedding scale and keeps the length
    expected = snap_to_anchors(plain[1:] / scale, anchors, 3, 0.8) * scale
    assert torch.allclose(both[1:], expected, atol=1e-4) and not torch.allclose(both[1], plain[1], atol=1e-3)

    pipe.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["image_anchor_weight"] == 0.8
    loaded = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    assert torch.allclose(_prompt_embeds(loaded, items), both, atol=2e-3)
    with pytest.raises(ValueError, match="image_anchor_weight"):
        StableMaterialsPipeline.from_pretrained(tmp_path / "model", image_anchor_weight=1.5)


def test_anchors_of_the_wrong_width_are_refused_with_the_shapes(tmp_path: Path) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0)
    width = pipe.unet.config.cross_attention_dim
    with pytest.raises(ValueError, match=rf"\(N, {width}\).*\(5, {width + 1}\)"):
        pipe.set_caption_anchors(torch.ones(5, width + 1))
    pipe.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "caption_anchors").mkdir()
    save_file({"other": torch.ones(3, width)}, str(tmp_path / "model" / "caption_anchors" / "anchors.safetensors"))
    with pytest.raises(ValueError, match="'anchors'"):
        StableMaterialsPipeline.from_pretrained(tmp_path / "model")


def test_add_caption_anchors_builds_the_bank_from_a_latent_cache(tmp_path: Path, capsys) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline
    from training import add_caption_anchors

    model = tmp_path / "model"
    tiny_pipeline(seed=0).save_pretrained(model)
    cache = tmp_path / "latents"
    cache.mkdir()
    records = [{"name": f"m{i}", "family": "bricks", "seed": i, "captions": [f"brick wall {i}", "red bricks", ""]}
               for i in range(3)]  # fmt: skip
    save_file({"latents": torch.zeros(3, 4, 2, 2)}, str(cache / "shard_00000.safetensors"),
              metadata={"records": json.dumps(records)})  # fmt: skip
    assert add_caption_anchors.cache_captions(cache) == ["brick wall 0", "red bricks", "brick wall 1", "brick wall 2"]
    assert add_caption_anchors.main(["--model", str(model), "--latents", str(cache), "--count", "3"]) == 0
    pipe = StableMaterialsPipeline.from_pretrained(model)
    assert pipe.caption_anchors.shape[0] == 3 and pipe.config.anchor_weight == 0.5
    assert add_caption_anchors.main(["--model", str(model), "--latents", str(tmp_path / "none")]) == 2
    assert "no shard_*.safetensors" in capsys.readouterr().err
    assert add_caption_anchors.main(["--model", str(model), "--latents", str(cache), "--weight", "2"]) == 2
    assert "anchor_weight" in capsys.readouterr().err
