"""Attribute conditioning (stablematerials/attributes.py): a material's family and mean colour beside the caption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training_helpers import LOOP, UNET_MODEL, make_latent_cache

from stablematerials.attributes import (
    attribute_input_width,
    attribute_vectors,
    check_attribute_families,
    item_seeds,
    pick_attributes,
)

FAMILIES = ["bricks", "marble", "sand"]


def _bank() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    anchors = torch.eye(6)  # six orthogonal "captions"
    families = torch.tensor([0, 1, 2, 0, 1, 2])
    colors = torch.linspace(-0.9, 0.9, 18).view(6, 3)
    return anchors, families, colors


def test_each_item_takes_the_attributes_of_one_of_its_nearest_anchors_chosen_by_its_seed() -> None:
    anchors, families, colors = _bank()
    prompt = torch.tensor([[2.0, 1.5, 0.1, 0.0, 0.0, 0.0]])  # nearest: anchor 0, then 1
    picks = {tuple(pick_attributes(prompt, anchors, families, colors, 2, [s], 3)[0].tolist()) for s in range(40)}
    expected = {tuple(attribute_vectors(families[[i]], colors[[i]], 3)[0].tolist()) for i in (0, 1)}
    assert picks == expected  # both neighbours are chosen by some seed, nothing else is
    a = pick_attributes(prompt.repeat(3, 1), anchors, families, colors, 2, [5, 6, 5], 3)
    assert torch.equal(a[0], a[2])  # the same seed, the same choice
    assert a.shape == (3, 6) and torch.equal(a[0, :3].sum(), torch.tensor(1.0))  # one-hot family, then the colour
    assert item_seeds([torch.Generator().manual_seed(7), torch.Generator().manual_seed(9)], 2) == [7, 9]
    assert item_seeds(torch.Generator().manual_seed(7), 3) == [7, 8, 9]


@pytest.mark.parametrize("families, width, bad", [(None, 6, "not set"), (["a", "a"], 5, "twice"),
                                                  ([], 3, "non-empty"), (["a", "b"], 6, "2 families"),
                                                  ("abc", 6, "list"), (["a", "a"], None, "twice")])  # fmt: skip
def test_bad_attribute_families_are_named(families, width, bad) -> None:
    with pytest.raises(ValueError, match=bad):
        check_attribute_families(families, width)
    check_attribute_families(["a", "b"], None)  # a UNet without attributes (an older student) ignores the list


def _attribute_pipeline():
    """The tiny pipeline with a UNet that takes attributes over FAMILIES (random, so that they change the output)."""
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.tiny import tiny_pipeline
    from training.models import add_attribute_embedding

    tiny = tiny_pipeline(seed=0)
    unet = add_attribute_embedding(tiny.unet, len(FAMILIES) + 3)
    torch.nn.init.normal_(unet.class_embedding.linear_2.weight, std=0.5, generator=torch.Generator().manual_seed(3))
    parts = {k: v for k, v in tiny.components.items() if v is not None} | {"unet": unet}
    pipe = StableMaterialsPipeline(**parts, attribute_families=FAMILIES, embedding_scale=tiny.config.embedding_scale)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _basecolor(pipe, prompt: str, seed: int):
    out = pipe(prompt, num_inference_steps=2, height=16, width=16, generator=torch.Generator().manual_seed(seed),
               output_type="pt").images  # fmt: skip
    return out[0, 0:3]


def test_a_model_with_attributes_takes_them_from_its_anchors_and_round_trips(tmp_path: Path) -> None:
    from stablematerials.pipeline import StableMaterialsPipeline

    pipe = _attribute_pipeline()
    width = pipe.unet.config.cross_attention_dim
    anchors = torch.randn(8, width, generator=torch.Generator().manual_seed(1))
    families = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    colors = torch.rand(8, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    plain = _basecolor(pipe, "red bricks", 0)  # anchors without attributes: the UNet sees zeros ("none")
    pipe.set_caption_anchors(anchors, families, colors)
    pipe.register_to_config(anchor_neighbours=8)
    with_attributes = _basecolor(pipe, "red bricks", 0)
    assert not torch.allclose(plain, with_attributes, atol=1e-4)
    assert torch.equal(with_attributes, _basecolor(pipe, "red bricks", 0))  # deterministic by seed
    embeds, labels, _ = pipe.prepare_prompt_embeds(["red bricks", ""], None, None, None, None, 1, True, torch.device("cpu"))
    attributes = pipe.prepare_attributes(embeds, labels, 1, [torch.Generator().manual_seed(s) for s in (0, 1)], True)
    assert attributes.shape == (4, 6) and not attributes[[0, 1, 3]].any()  # the negatives and the empty prompt: none
    assert attributes[2, :3].sum() == 1  # "red bricks": a one-hot family

    pipe.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["attribute_families"] == FAMILIES
    loaded = StableMaterialsPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded.anchor_attributes[0], families) and torch.allclose(loaded.anchor_attributes[1], colors)
    assert torch.allclose(_basecolor(loaded, "red bricks", 0), with_attributes, atol=1e-3)  # anchors stored as float16
    with pytest.raises(ValueError, match="attribute_families"):
        loaded.set_caption_anchors(anchors, torch.full((8,), 3), colors)  # family index 3 of 3 families
    with pytest.raises(ValueError, match="both"):
        loaded.set_caption_anchors(anchors, None, colors)
    with pytest.raises(ValueError, match=r"\(8, 3\), got \(8,\) and \(8, 2\)"):
        loaded.set_caption_anchors(anchors, families, colors[:, :2])


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> dict[str, Path]:
    """A latent cache of 3 procedural materials (3 families) by a tiny VAE, and a tiny text encoder."""
    return make_latent_cache(tmp_path_factory.mktemp("attributes"), 3)


def _ldm_args(cache: dict[str, Path], out: Path) -> list[str]:
    return ["--output_dir", str(out), "--vae", str(cache["vae"]), "--text_encoder", str(cache["text"]), "--data.latents",
            str(cache["latents"]), "--attributes=true", "--model.color_latents=true", *UNET_MODEL, *LOOP]  # fmt: skip


def test_caption_and_attribute_dropout_take_away_one_or_the_other(tiny_cache: dict[str, Path], tmp_path: Path) -> None:
    from training import train_ldm
    from training.config import LDMConfig, parse_config
    from training.data import collate
    from training.runtime import start_run

    def inputs(*extra: str) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = parse_config(LDMConfig, _ldm_args(tiny_cache, tmp_path / str(len(extra)) / "x") + ["--diffusion.cond_dropout=0", *extra])
        run = train_ldm.set_up(cfg, *start_run(cfg, "train_ldm"))
        batch = collate([run.dataset[(i, i)] for i in range(3)])
        _, _, cond, _, attributes = train_ldm.denoising_inputs(run, batch)
        return (cond[:, 0] == run.embeds[""].view(1, -1)).all(dim=-1), attributes.abs().sum(dim=-1) > 0

    empty, with_attributes = inputs("--diffusion.attribute_dropout=0", "--diffusion.caption_dropout=0.999999")
    assert empty.all() and with_attributes.all()  # captions gone, attributes kept
    empty, with_attributes = inputs("--diffusion.attribute_dropout=0.999999")
    assert not empty.any() and not with_attributes.any()  # attributes gone, captions kept


def test_attributes_train_read_from_the_cache_and_continue(tiny_cache: dict[str, Path], tmp_path: Path) -> None:
    """train_ldm with attributes over the procedural families, its bank from add_caption_anchors, and a continued run."""
    from stablematerials.pipeline import StableMaterialsPipeline
    from stablematerials.procedural import FAMILIES as PROCEDURAL
    from training import add_caption_anchors, distill_lcm, train_ldm

    cache = tiny_cache["latents"]
    assert train_ldm.main(_ldm_args(tiny_cache, tmp_path / "ldm") + ["--train.max_steps=2", "--sample.steps=2"]) == 0
    model = tmp_path / "ldm" / "model"
    assert StableMaterialsPipeline.from_pretrained(model).unet.config.projection_class_embeddings_input_dim == len(PROCEDURAL) + 3
    assert add_caption_anchors.main(["--model", str(model), "--latents", str(cache), "--count", "4"]) == 0
    pipe = StableMaterialsPipeline.from_pretrained(model)
    families, colors = pipe.anchor_attributes
    assert families.shape == (4,) and colors.shape == (4, 3) and colors.abs().max() <= 1
    assert {list(PROCEDURAL)[int(i)] for i in families} <= set(list(PROCEDURAL)[:3])  # the cache: families in turn
    more = ["--output_dir", str(tmp_path / "more"), "--init_from", str(model), "--data.latents", str(cache),
            "--train.max_steps=1", "--sample.steps=2", *LOOP]  # fmt: skip
    assert train_ldm.main(more) == 0  # a base that takes attributes is continued with them
    assert StableMaterialsPipeline.from_pretrained(tmp_path / "more" / "model").config.attribute_families == list(PROCEDURAL)

    lcm = ["--output_dir", str(tmp_path / "lcm"), "--teacher", str(model), "--data.latents", str(cache),
           "--train.max_steps=2", "--lcm.time_cond_proj_dim=16", *LOOP]  # fmt: skip
    assert distill_lcm.main(lcm) == 0  # the student takes the attributes too, from the same anchors
    student = StableMaterialsPipeline.from_pretrained(tmp_path / "lcm" / "model", student=True)
    assert student.anchor_attributes is not None and attribute_input_width(student.unet) == len(PROCEDURAL) + 3
    m = student("red bricks", num_inference_steps=2, height=16, width=16, generator=torch.Generator().manual_seed(0),
                output_type="material").images[0]  # fmt: skip
    assert torch.isfinite(torch.from_numpy(m.basecolor)).all()


def test_a_student_without_attributes_gets_its_teachers_attribute_embedding(tmp_path: Path) -> None:
    """init_student from a model distilled before its teacher took attributes (the shipped v3 student)."""
    from stablematerials.tiny import tiny_pipeline
    from training.distill_lcm import load_student
    from training.models import add_attribute_embedding, build_student

    plain = tiny_pipeline(seed=0).unet
    build_student(plain, 16).save_pretrained(tmp_path / "unet_lcm")
    teacher = add_attribute_embedding(plain, 6)
    torch.nn.init.normal_(teacher.class_embedding.linear_2.weight, generator=torch.Generator().manual_seed(1))
    student = load_student(tmp_path, teacher, 16)
    assert attribute_input_width(student) == 6
    assert torch.equal(student.class_embedding.linear_2.weight, teacher.class_embedding.linear_2.weight)


def test_batch_attributes_read_family_and_mean_colour_and_leave_unknown_families_without() -> None:
    from stablematerials.color_latents import COLOR_SCALE
    from training.data import batch_attributes

    color = torch.tensor([[0.2, -0.4, 0.6], [0.0, 0.1, 0.2]]).view(2, 3, 1, 1).expand(2, 3, 4, 4) * COLOR_SCALE
    a = batch_attributes({"family": ["sand", "my_own"], "color": color}, FAMILIES, torch.device("cpu"))
    assert torch.allclose(a[0], torch.tensor([0, 0, 1, 0.2, -0.4, 0.6]))
    assert not a[1].any()  # a family the model has no attribute for (a user's fine-tuning material): none
    x = torch.zeros(1, 9, 4, 4)
    x[:, 0] = 0.5  # model-space basecolor, read from the material itself
    assert torch.allclose(batch_attributes({"family": ["bricks"], "x": x}, FAMILIES, torch.device("cpu"))[0],
                          torch.tensor([1, 0, 0, 0.5, 0, 0]))  # fmt: skip
