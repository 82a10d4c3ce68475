"""Captions built from a material's parameters, in varied natural phrasing; every one contains the family noun.

Each writer takes the family's parameters and a seeded generator (so a (family, seed) always gets the same
caption) and picks among several sentence shapes; numeric parameters become words through `bucket`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np


def bucket(value: float, edges: Sequence[float], words: Sequence[str]) -> str:
    """The word for `value`: words[k] where k is the number of `edges` at or below value (len(words) = len(edges) + 1)."""
    if len(words) != len(edges) + 1:
        raise ValueError(f"bucket needs one word more than edges, got {len(words)} words and {len(edges)} edges")
    return words[int(np.searchsorted(np.asarray(edges), value, side="right"))]


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of `options`, chosen by `rng`."""
    return options[int(rng.integers(len(options)))]


def tidy(text: str) -> str:
    """Collapse blanks left by empty words and stray commas: 'old  red , bricks' -> 'old red, bricks'."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",\s*,", ",", text)
    text = re.sub(r"\b(with|and|in|of),", r"\1", text)
    return text.strip(" ,")


def listing(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c' from the non-empty items."""
    items = [i for i in items if i]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def with_list(items: Sequence[str]) -> str:
    """'with a, b and c', or '' when there is nothing to list."""
    text = listing(items)
    return f"with {text}" if text else ""


def _choose(rng: np.random.Generator, templates: Sequence[str], **words: Any) -> str:
    """Fill one template, chosen by `rng`, with `words`, and tidy it."""
    return tidy(pick(rng, templates).format(**words))


# ----------------------------------------------------------------------------------------------
# Masonry
# ----------------------------------------------------------------------------------------------

_BONDS = {"running": "running bond", "stack": "stack bond", "english": "English bond"}


def bricks(p: Any, rng: np.random.Generator) -> str:
    """'weathered red bricks with thick white mortar' and variants."""
    return _choose(
        rng,
        (
            "{age} {color} bricks with {width} {mortar} mortar",
            "{color} brick wall in {bond}, {width} {mortar} mortar joints",
            "{age} {color} brickwork laid in {bond}, {chips} edges, {mortar} mortar",
            "{bond} wall of {chips} {color} bricks and {width} {mortar} joints",
        ),
        age=bucket(p.weathering, (0.2, 0.5, 0.8), ("clean", "", "weathered", "old grimy")),
        color=p.color,
        width=bucket(p.mortar_width, (0.08, 0.18), ("thin", "", "thick")),
        mortar=p.mortar_color,
        bond=_BONDS[p.bond],
        chips=bucket(p.chipping, (0.25, 0.6), ("crisp", "slightly chipped", "heavily chipped")),
    )


def _tile_words(p: Any) -> dict[str, str]:
    """Words shared by the square and hexagonal tile captions."""
    pattern = {"plain": "", "checker": "checkerboard", "mixed": "mixed-shade", "accent": "accented"}[p.pattern]
    return {
        "color": p.color,
        "pattern": pattern,
        "glaze": p.glaze,
        "grout": f"{bucket(p.grout_width, (0.04, 0.09), ('narrow', '', 'wide'))} {p.grout_color} grout",
        "worn": bucket(p.wear, (0.3, 0.65), ("", "scuffed", "worn and chipped")),
    }


def square_tiles(p: Any, rng: np.random.Generator) -> str:
    """'glossy white square tiles with narrow grey grout' and variants."""
    return _choose(
        rng,
        (
            "{worn} {glaze} {color} square tiles with {grout}",
            "{pattern} {color} ceramic tile floor, {glaze} finish, {grout}",
            "{color} {pattern} tiles in a square grid, {worn} {glaze} glaze and {grout}",
        ),
        **_tile_words(p),
    )


def hex_tiles(p: Any, rng: np.random.Generator) -> str:
    """'matte terracotta hexagonal tiles with wide sand grout' and variants."""
    return _choose(
        rng,
        (
            "{worn} {glaze} {color} hexagonal tiles with {grout}",
            "{pattern} {color} hexagon tile floor, {glaze} finish, {grout}",
            "honeycomb of {color} hexagonal tiles, {worn} {glaze} glaze, {grout}",
        ),
        **_tile_words(p),
    )


# ----------------------------------------------------------------------------------------------
# Wood and organic
# ----------------------------------------------------------------------------------------------

_WOOD_TONE = {"oak": "", "walnut": "dark", "pine": "light", "maple": "pale", "cherry": "reddish", "teak": "golden",
              "ash": "pale", "ebony": "near-black"}


def wood_planks(p: Any, rng: np.random.Generator) -> str:
    """'dark walnut floor planks, glossy finish' and variants."""
    return _choose(
        rng,
        (
            "{tone} {species} floor planks, {finish} finish",
            "{worn} {species} wood planks with {knots} and {grain} grain, {finish}",
            "{finish} {tone} {species} plank flooring, {gaps}",
            "{species} hardwood planks, {knots}, {worn} {finish} finish",
        ),
        tone=_WOOD_TONE[p.species],
        species=p.species,
        finish={"raw": "unfinished", "matte": "matte", "satin": "satin", "glossy": "glossy"}[p.finish],
        worn=bucket(p.wear, (0.3, 0.65), ("", "worn", "heavily worn")),
        knots=bucket(p.knots, (0.15, 0.6), ("no knots", "a few knots", "many knots")),
        grain=bucket(p.grain_contrast, (0.3, 0.7), ("subtle", "visible", "bold")),
        gaps=bucket(p.gap_width, (0.03, 0.07), ("tight seams", "narrow gaps", "wide gaps")),
    )


def leather(p: Any, rng: np.random.Generator) -> str:
    """'black pebbled leather, glossy finish' and variants."""
    return _choose(
        rng,
        (
            "{color} {grain} leather, {finish} finish",
            "{worn} {color} leather with {grain} grain {stitch}",
            "{finish} {color} leather, {grain} texture and {creases} {stitch}",
        ),
        color=p.color,
        grain=bucket(p.pebbles, (32, 64), ("coarse pebbled", "pebbled", "fine-grained")),
        finish=p.finish,
        worn=bucket(p.wear, (0.3, 0.65), ("", "worn", "well-worn burnished")),
        creases=bucket(p.wrinkles, (0.3, 0.7), ("few creases", "soft creases", "deep wrinkles")),
        stitch=", with stitching" if p.stitching else "",
    )


def bark(p: Any, rng: np.random.Generator) -> str:
    """'deeply furrowed brown tree bark with moss' and variants."""
    kind = {"furrowed": "furrowed", "plated": "plated pine-like", "birch": "white birch"}[p.kind]
    color = "" if p.kind == "birch" else p.color
    if p.kind == "birch":
        relief = ["dark lenticels", bucket(p.depth, (0.5,), ("", "cracked patches"))]
    else:
        relief = [bucket(p.depth, (0.35, 0.7), ("shallow fissures", "fissures", "deep fissures"))]
    growth = [*relief, bucket(p.moss, (0.3, 0.65), ("", "some moss", "thick moss")), bucket(p.lichen, (0.3,), ("", "lichen"))]
    return _choose(
        rng,
        (
            "{kind} {color} tree bark {detail}",
            "{color} {kind} bark of an old trunk, {detail}",
            "close-up of {kind} {color} bark {detail}",
        ),
        kind=kind,
        color=color,
        detail=with_list(growth),
    )


# ----------------------------------------------------------------------------------------------
# Metal
# ----------------------------------------------------------------------------------------------


def polished_metal(p: Any, rng: np.random.Generator) -> str:
    """'mirror-polished copper metal with fine scratches' and variants."""
    finish = "hammered" if p.hammered > 0.3 else bucket(p.polish, (0.4, 0.8), ("satin", "polished", "mirror-polished"))
    return _choose(
        rng,
        (
            "{finish} {metal} metal {scratches}",
            "{finish} {metal} sheet metal, {smudges}",
            "{metal} metal surface, {finish} {scratches}",
        ),
        finish=finish,
        metal=p.metal,
        scratches=bucket(p.scratches, (0.2, 0.6), ("", "with fine scratches", "covered in scratches")),
        smudges=bucket(p.smudges, (0.3, 0.65), ("clean", "a few smudges", "smudged and hazy")),
    )


def brushed_metal(p: Any, rng: np.random.Generator) -> str:
    """'brushed steel metal, fine horizontal grain' and variants."""
    return _choose(
        rng,
        (
            "brushed {metal} metal, {fine} {direction} grain",
            "{direction} brushed {metal} sheet metal {scratches}",
            "{metal} metal plate with a {fine} brushed finish {scratches}",
        ),
        metal=p.metal,
        direction=p.direction,
        fine=bucket(p.fineness, (0.35, 0.7), ("coarse", "", "fine")),
        scratches=bucket(p.scratches, (0.25, 0.6), ("", "and a few scratches", "and many scratches")),
    )


def painted_metal(p: Any, rng: np.random.Generator) -> str:
    """'chipped green painted metal plates with rust' and variants."""
    return _choose(
        rng,
        (
            "{worn} {paint} painted metal plates {rust}{rivets}",
            "{paint} paint on sheet metal, {worn} {rust}{rivets}",
            "{gloss} {paint} painted metal panel, {worn} paint {rust}{rivets}",
        ),
        worn=bucket(p.wear, (0.3, 0.6), ("lightly chipped", "chipped", "heavily peeling")),
        paint=p.paint_color,
        rust=bucket(p.rust, (0.25, 0.6), ("over bare metal", "with some rust", "with rust showing through")),
        rivets=", riveted" if p.rivets else "",
        gloss=bucket(p.gloss, (0.35, 0.7), ("matte", "satin", "glossy")),
    )


def rusty_metal(p: Any, rng: np.random.Generator) -> str:
    """'heavily rusted metal plate with pitting' and variants."""
    paint = "" if p.paint_remnants == "none" else f"flakes of old {p.paint_remnants} paint"
    pits = bucket(p.pitting, (0.3, 0.65), ("", "some pitting", "deep pitting"))
    return _choose(
        rng,
        (
            "{level} rusty metal plate {detail}",
            "{level} rusted steel sheet metal {detail}",
            "corroded metal covered in {amount} rust {detail}",
        ),
        level=bucket(p.corrosion, (0.4, 0.75), ("patchy", "", "heavily")),
        amount=bucket(p.corrosion, (0.4, 0.75), ("patchy", "", "heavy")),
        detail=with_list([pits, paint, "rivets" if p.rivets else ""]),
    )


# ----------------------------------------------------------------------------------------------
# Stone, concrete, plaster
# ----------------------------------------------------------------------------------------------


def cobblestone(p: Any, rng: np.random.Generator) -> str:
    """'rounded grey cobblestones with sand joints' and variants."""
    return _choose(
        rng,
        (
            "{wet} {shape} {color} cobblestones with {joint} joints",
            "{wet} {color} cobblestone pavement, {shape} stones and {width} {joint} gaps",
            "{wet} old {color} cobblestone street, {layout} {shape} stones",
        ),
        shape=bucket(p.roundness, (0.35, 0.7), ("flat-topped", "", "rounded")),
        color=p.color,
        joint=p.joint,
        width=bucket(p.gap_width, (0.08, 0.2), ("narrow", "", "wide")),
        layout=bucket(p.regularity, (0.5,), ("irregular", "neatly set")),
        wet=bucket(p.wetness, (0.4,), ("", "wet")),
    )


def flagstone(p: Any, rng: np.random.Generator) -> str:
    """'irregular slate flagstone paving with mortar joints' and variants."""
    return _choose(
        rng,
        (
            "{shape} {color} flagstone paving with {joint} joints",
            "{color} flagstone floor, {cleft} slabs and {joint} between them",
            "{cleft} {color} flagstones, {shape} outlines, {joint} joints",
        ),
        shape=bucket(p.irregularity, (0.4,), ("neat", "irregular")),
        color=p.color,
        joint=p.joint,
        cleft=bucket(p.cleft, (0.35, 0.7), ("smooth", "riven", "deeply riven")),
    )


def marble(p: Any, rng: np.random.Generator) -> str:
    """'polished white carrara marble with grey veins' and variants."""
    ground = {"carrara": "white", "calacatta": "white", "nero": "black", "verde": "green", "rosa": "pink", "crema": "cream"}
    veins = {"carrara": "grey", "calacatta": "gold", "nero": "white", "verde": "pale", "rosa": "dark red", "crema": "brown"}
    return _choose(
        rng,
        (
            "{polish} {ground} {kind} marble with {density} {veins} veins",
            "{ground} marble, {kind} style, {turb} {veins} veining, {polish}{slabs}",
            "{polish} {kind} marble slab, {density} {turb} {veins} veins{slabs}",
        ),
        polish=bucket(p.polish, (0.4, 0.75), ("honed", "polished", "highly polished")),
        ground=ground[p.kind],
        kind=p.kind.capitalize() if p.kind in ("carrara", "calacatta") else p.kind,
        veins=veins[p.kind],
        density=bucket(p.veins, (0.3, 0.7), ("sparse", "", "dense")),
        turb=bucket(p.turbulence, (0.35, 0.7), ("straight", "flowing", "swirling")),
        slabs="" if p.slabs == 1 else ", cut into tiles",
    )


def concrete(p: Any, rng: np.random.Generator) -> str:
    """'board-formed grey concrete with air pores' and variants."""
    form = {"none": "", "panels": "panel-formed", "boards": "board-formed"}[p.formwork]
    detail = with_list([bucket(p.pores, (0.4,), ("", "air pores")), bucket(p.aggregate, (0.4,), ("", "exposed aggregate")),
                        bucket(p.cracks, (0.4,), ("", "cracks")), bucket(p.stains, (0.5,), ("", "water stains"))])
    return _choose(
        rng,
        (
            "{form} {color} concrete {detail}",
            "{color} {form} concrete wall {detail}",
            "raw {form} {color} concrete surface {detail}",
        ),
        form=form,
        color=p.color,
        detail=detail,
    )


def plaster(p: Any, rng: np.random.Generator) -> str:
    """'troweled ochre plaster wall with hairline cracks' and variants."""
    finish = {"smooth": "smooth", "troweled": "hand-troweled", "stucco": "knock-down stucco", "sand": "sand-finish"}[p.finish]
    detail = with_list([bucket(p.cracks, (0.3,), ("", "hairline cracks")), bucket(p.peeling, (0.3,), ("", "peeling paint")),
                        bucket(p.dirt, (0.5,), ("", "dirt streaks"))])
    return _choose(
        rng,
        (
            "{finish} {color} plaster wall {detail}",
            "{color} plaster, {finish} texture {detail}",
            "{color} {finish} plaster {detail}",
        ),
        finish=finish,
        color=p.color,
        detail=detail,
    )


# ----------------------------------------------------------------------------------------------
# Ground and fabric
# ----------------------------------------------------------------------------------------------


def soil(p: Any, rng: np.random.Generator) -> str:
    """'damp dark soil with pebbles' and variants."""
    detail = with_list([bucket(p.pebbles, (0.3,), ("", "pebbles")), bucket(p.litter, (0.3,), ("", "twigs")),
                        bucket(p.cracks, (0.3,), ("", "mud cracks"))])
    return _choose(
        rng,
        (
            "{moist} {color} soil {detail}",
            "{clumpy} {color} garden soil, {moist} {detail}",
            "bare {moist} {color} soil ground {detail}",
        ),
        moist=bucket(p.moisture, (0.3, 0.65), ("dry", "", "damp")),
        color=p.color,
        clumpy=bucket(p.clumps, (0.4,), ("fine", "clumpy")),
        detail=detail,
    )


def gravel(p: Any, rng: np.random.Generator) -> str:
    """'wet rounded river gravel' and variants."""
    return _choose(
        rng,
        (
            "{wet} {shape} {color} gravel",
            "{wet} {color} gravel path, {shape} stones, {packing}",
            "loose {wet} {color} gravel of {shape} stones",
        ),
        wet=bucket(p.wetness, (0.4,), ("", "wet")),
        shape=bucket(p.roundness, (0.4,), ("crushed angular", "rounded")),
        color=p.color,
        packing=bucket(p.packing, (0.4,), ("loosely spread", "densely packed")),
    )


def sand(p: Any, rng: np.random.Generator) -> str:
    """'rippled golden beach sand' and variants."""
    return _choose(
        rng,
        (
            "{wet} {ripples} {color} sand",
            "{wet} {color} sand with {ripples} surface, {grain} grains {debris}",
            "{wet} {grain} {color} sand, {ripples} {debris}",
        ),
        ripples=bucket(p.ripples, (0.2, 0.6), ("smooth", "gently rippled", "wind-rippled")),
        color=p.color,
        wet=bucket(p.wetness, (0.4,), ("", "wet")),
        grain=bucket(p.grain, (0.5,), ("fine", "coarse")),
        debris=bucket(p.debris, (0.3,), ("", "with shell fragments")),
    )


def fabric(p: Any, rng: np.random.Generator) -> str:
    """'navy twill cotton fabric with white stripes' and variants."""
    pattern = {"solid": "", "stripes": f"with {p.accent_color} stripes", "plaid": f"with a {p.accent_color} plaid"}[p.pattern]
    weave = {"plain": "plain-weave", "twill": "twill", "basket": "basket-weave"}[p.weave]
    fibre = "denim" if p.fibre == "denim" else p.fibre
    return _choose(
        rng,
        (
            "{color} {weave} {fibre} fabric {pattern}",
            "{density} woven {fibre} fabric in {color}, {weave} {pattern}",
            "{fuzzy} {color} {fibre} cloth, {weave} fabric {pattern}",
        ),
        color=p.color,
        weave=weave,
        fibre=fibre,
        pattern=pattern,
        density=bucket(p.threads, (24, 48), ("coarse", "", "fine")),
        fuzzy=bucket(p.fuzz, (0.5,), ("crisp", "fuzzy")),
    )
