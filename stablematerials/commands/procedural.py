"""`stablematerials procedural`: write one procedural material folder, or list the families and their parameters."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write one procedural material (bricks, tiles, wood, metal, stone, ...) as a material folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", help="material family (see --list)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=512, help="width and height in pixels, a multiple of 8 (default 512)")
    parser.add_argument("--out", type=Path, default=Path("."), help="parent folder; the material goes to OUT/<family>_<seed>")
    parser.add_argument("--naming", choices=("plain", "ambientcg", "polyhaven"), default="plain", help="map file names")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="set a family parameter (repeatable)"
    )
    parser.add_argument(
        "--random-params", action="store_true", help="draw the parameters from the seed, as the dataset command does"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing material folder")
    parser.add_argument("--list", action="store_true", help="list the families and their parameters, then exit")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _list_families() -> None:
    from ..procedural import FAMILIES

    for fam in FAMILIES.values():
        print(f"{fam.name}: {fam.summary} (metallic: {fam.metal})")
        for line in fam.params.describe():
            print(f"    {line}")


def run(args: argparse.Namespace) -> int:
    from ..defaults import check_procedural_size
    from ..io import save_material
    from ..procedural import generate_with, get_family
    from ..procedural.dataset import material_name
    from ..procedural.noise import Streams

    if args.list:
        _list_families()
        return 0
    if not args.family:
        raise ValueError("--family is required (see --list for the families)")
    check_procedural_size(args.size)
    family = get_family(args.family)
    overrides = _parse_params(args.param)
    if args.random_params:  # the dataset's parameters for this (family, seed), then the overrides
        drawn = family.params.sample(Streams(args.seed, family.name)("params")).as_dict()
        given = family.params.from_strings(overrides).as_dict()
        params = family.params.create(**(drawn | {k: given[k] for k in overrides}))
    else:
        params = family.params.from_strings(overrides)
    material = generate_with(family.name, params, args.seed, args.size)
    folder = save_material(
        material, args.out / material_name(family.name, args.seed), naming=args.naming, overwrite=args.overwrite
    )
    print(f"{folder}  ({material.metadata['caption']})")
    return 0
