"""Attribute conditioning: a material's family and mean colour, given to the UNet beside the caption embedding.

Why (default model v3, benchmarks/results/default_model_v3_diagnosis.md): the UNet follows its caption embedding
poorly even for training-like captions (family right 64 %): "hexagonal tiles" come out square, "black marble"
white, "yellow bricks" tan. In the sentence encoder's space those captions sit close to their neighbours' (square
tiles, white marble, brown bricks), and the UNet blurs them. Its own training data knows both things exactly: the
family of every material and its mean basecolor. So a UNet may also take an attribute vector

    [one-hot family (F entries), mean basecolor in model space (3 entries, [-1, 1])]      (F + 3,)

through diffusers' projection class embedding (`class_embed_type="projection"`, added to the timestep embedding of
every ResNet block). All zeros means "no attributes": the unconditional input of classifier-free guidance, and a
share of training prompts (`diffusion.attribute_dropout`) so that the model also works without them.

At sampling time the attributes come from the prompt itself: the model's caption-anchor bank (`anchors.py`) stores
each anchor caption's family and its materials' mean colour, and each generated item takes those of one of its
prompt's nearest anchors, chosen by the item's seed (`pick_attributes`): a prompt that names a colour finds
anchors of that colour; a prompt that does not ("old bricks") gets a different anchor, so a different colour,
per seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .anchors import nearest_anchors

COLOR_ENTRIES = 3
_PICK_SALT = 0xA77  # seeds the anchor choice from an item's generator without drawing from it


def attribute_width(families: Sequence[str]) -> int:
    """Entries of the attribute vector for these families."""
    return len(families) + COLOR_ENTRIES


def check_attribute_families(families: object, unet_width: int | None) -> None:
    """A ValueError naming the problem unless `families` is None, or a list of distinct names whose attribute vector
    has the width of the UNet's class-embedding input (`unet_width`). A UNet without that input (None) takes no
    attributes whatever the list says: the student of a model folder distilled before its teacher took them."""
    if families is None:
        if unet_width is not None:
            raise ValueError(f"the UNet takes {unet_width}-entry attribute vectors, but attribute_families is not set")
        return
    if not isinstance(families, (list, tuple)) or not families or not all(isinstance(f, str) for f in families):
        raise ValueError(f"attribute_families must be a non-empty list of family names, got {families!r}")
    if len(set(families)) != len(families):
        raise ValueError(f"attribute_families names a family twice: {list(families)}")
    if unet_width is not None and unet_width != attribute_width(families):
        raise ValueError(f"attribute_families has {len(families)} families ({attribute_width(families)} entries), "
                         f"but the UNet takes {unet_width} attribute entries")  # fmt: skip


def attribute_vectors(family_index: torch.Tensor, color: torch.Tensor, n_families: int) -> torch.Tensor:
    """(B,) family indices and (B, 3) model-space mean colours -> (B, F + 3) attribute vectors."""
    return torch.cat([F.one_hot(family_index.long(), n_families).to(color.dtype), color], dim=-1)


def drop_attributes(attributes: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """(B, A) attributes with the rows where `drop` (B,) is True set to zero ("no attributes")."""
    return torch.where(drop[:, None], torch.zeros_like(attributes), attributes)


def pick_attributes(
    embeds: torch.Tensor,
    anchors: torch.Tensor,
    anchor_families: torch.Tensor,
    anchor_colors: torch.Tensor,
    neighbours: int,
    seeds: Sequence[int],
    n_families: int,
) -> torch.Tensor:
    """(B, D) prompt embeddings -> (B, F + 3) attributes: those of one of each prompt's `neighbours` nearest anchors
    (cosine; anchors (N, D), their families (N,) and model-space mean colours (N, 3)), chosen by `seeds[b]`."""
    _, nearest = nearest_anchors(embeds, anchors, neighbours)  # (B, k)
    chosen = torch.stack([
        nearest[b, int(torch.randint(nearest.shape[1], (1,), generator=torch.Generator().manual_seed(s ^ _PICK_SALT)))]
        for b, s in enumerate(seeds)
    ])  # (B,)
    return attribute_vectors(anchor_families[chosen.cpu()], anchor_colors[chosen.cpu()].float(), n_families).to(embeds.device)


def attribute_input_width(unet) -> int | None:
    """Entries of the attribute vector a UNet takes (its projection class embedding's input), or None."""
    if unet.config.get("class_embed_type") != "projection":
        return None
    return unet.config.get("projection_class_embeddings_input_dim")


def item_seeds(generator: torch.Generator | list[torch.Generator] | None, batch_size: int) -> list[int]:
    """One seed per item for its anchor choice, read from its generator without drawing from it: a generator per
    item gives its seed, one generator for the batch its seed plus the item's index, none a random seed."""
    if isinstance(generator, list):
        return [g.initial_seed() for g in generator]
    base = generator.initial_seed() if generator is not None else int(torch.randint(2**62, (1,)))
    return [base + b for b in range(batch_size)]
