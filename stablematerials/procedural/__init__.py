"""Procedural, tileable PBR materials with captions: training data for the embedded model and a user feature.

>>> from stablematerials.procedural import generate, FAMILIES
>>> m = generate("bricks", seed=3, size=256, bond="stack", mortar_color="white")
>>> m.metadata["caption"]        # e.g. 'red brick wall in stack bond, white mortar joints'

Every family builds basecolor, height, roughness and metallic from periodic noise and lattices (so maps wrap
exactly at any size that is a multiple of 8); the normal map is always derived from the height map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..material import Material
from . import captions, concrete, ground, masonry, metal, organic, stone, textile, wood
from .family import Family, Surface, check_seed, check_size, render
from .params import Params

__all__ = ["FAMILIES", "Family", "Params", "Surface", "generate", "generate_with", "get_family", "sample_params"]

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("bricks", "brick", masonry.BrickParams, masonry.build_bricks, captions.bricks, "none",
               "brick walls in running, stack or English bond"),
        Family("square_tiles", "tile", masonry.SquareTileParams, masonry.build_square_tiles, captions.square_tiles,
               "none", "glazed square tiles in grout"),
        Family("hex_tiles", "hexagon", masonry.HexTileParams, masonry.build_hex_tiles, captions.hex_tiles, "none",
               "glazed hexagonal tiles in grout"),
        Family("wood_planks", "plank", wood.WoodPlankParams, wood.build_wood_planks, captions.wood_planks, "none",
               "floor planks with growth rings, knots and a finish"),
        Family("cobblestone", "cobblestone", stone.CobblestoneParams, stone.build_cobblestone, captions.cobblestone,
               "none", "domed stones in sand, soil, moss or mortar joints"),
        Family("flagstone", "flagstone", stone.FlagstoneParams, stone.build_flagstone, captions.flagstone, "none",
               "large flat irregular slabs"),
        Family("marble", "marble", stone.MarbleParams, stone.build_marble, captions.marble, "none",
               "polished marble with turbulent veins"),
        Family("polished_metal", "metal", metal.PolishedMetalParams, metal.build_polished_metal,
               captions.polished_metal, "all", "polished or hammered bare metal"),
        Family("brushed_metal", "metal", metal.BrushedMetalParams, metal.build_brushed_metal, captions.brushed_metal,
               "all", "brushed bare metal"),
        Family("painted_metal", "metal", metal.PaintedMetalParams, metal.build_painted_metal, captions.painted_metal,
               "partial", "painted steel plates peeling to bare metal and rust"),
        Family("rusty_metal", "rust", metal.RustyMetalParams, metal.build_rusty_metal, captions.rusty_metal,
               "partial", "rusted steel plates with bare patches"),
        Family("concrete", "concrete", concrete.ConcreteParams, concrete.build_concrete, captions.concrete, "none",
               "cast concrete with pores, aggregate and formwork marks"),
        Family("plaster", "plaster", concrete.PlasterParams, concrete.build_plaster, captions.plaster, "none",
               "plastered walls: smooth, troweled, stucco or sand finish"),
        Family("fabric", "fabric", textile.FabricParams, textile.build_fabric, captions.fabric, "none",
               "woven cloth: plain, twill or basket weave"),
        Family("leather", "leather", organic.LeatherParams, organic.build_leather, captions.leather, "none",
               "pebble-grain leather"),
        Family("soil", "soil", ground.SoilParams, ground.build_soil, captions.soil, "none",
               "bare soil with clods, pebbles, cracks and litter"),
        Family("gravel", "gravel", ground.GravelParams, ground.build_gravel, captions.gravel, "none",
               "loose gravel, rounded or crushed"),
        Family("sand", "sand", ground.SandParams, ground.build_sand, captions.sand, "none", "rippled sand"),
        Family("bark", "bark", organic.BarkParams, organic.build_bark, captions.bark, "none",
               "tree bark: furrowed, plated or birch"),
    )
}


def get_family(name: str) -> Family:
    """The registered family `name`, else a ValueError listing the families."""
    if name not in FAMILIES:
        raise ValueError(f"unknown material family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def sample_params(family: str, rng: np.random.Generator) -> Params:
    """Random valid parameters of `family` drawn with `rng`."""
    return get_family(family).params.sample(rng)


def generate(family: str, seed: int, size: int = 256, **params: Any) -> Material:
    """One material of `family` for `seed` at `size` x `size` pixels; `params` override the family's defaults.

    Deterministic for (family, params, seed). Unknown family or parameter, a size that is not a positive
    multiple of 8, a negative seed or an out-of-range value: ValueError naming it.
    """
    fam = get_family(family)
    return generate_with(family, fam.params.create(**params), seed, size)


def generate_with(family: str, params: Params, seed: int, size: int = 256) -> Material:
    """Like `generate`, with a ready parameter object (as returned by `sample_params`)."""
    fam = get_family(family)
    return render(fam, params, check_seed(seed), check_size(size))
