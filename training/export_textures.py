"""Real texture images from Debian game packages as an image folder for the semi-supervised stream.

    python -m training.export_textures --textures ROOT --out DIR [--split train|held_out|all]

ROOT holds each package unpacked with `apt-get download P && dpkg -x P.deb ROOT/P` (the packages and their licences:
`training.image_encoder_data.TEXTURE_PACKAGES`). The textures that name a material (captions from their file names,
`caption_from_name`) of the chosen split (a fixed fifth of each package is held out, `is_held_out`) are written to
DIR as RGB PNGs, with DIR/captions.jsonl ({"file", "caption", "family", "package", "member", "licence"} per line:
the image-folder layout `--semi.images DIR` of train_ldm reads) and DIR/SOURCES.md (each package, its licence and
how many images came from it, for the model card).

Every file is written atomically; a rerun keeps the PNGs that exist and rewrites the two listings. Textures that
cannot be decoded (or are under 64 px) are skipped and counted.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from stablematerials.io import atomic_write_bytes, atomic_write_text
from stablematerials.values import slug

from .image_encoder_data import TEXTURE_PACKAGES, read_texture, real_textures

SPLITS = ("train", "held_out", "all")
CAPTIONS_FILE = "captions.jsonl"  # what training.data's image folder reads
SOURCES_FILE = "SOURCES.md"


def check_texture_root(root: Path, packages: Mapping[str, tuple[str, str]] = TEXTURE_PACKAGES) -> list[str]:
    """The packages whose archive is under `root`; a ValueError naming `root` when it is no folder or holds none."""
    if not root.is_dir():
        raise ValueError(f"--textures {str(root)!r} is not a folder")
    found = [p for p, (archive, _) in packages.items() if (root / p / archive).is_file()]
    if not found:
        raise ValueError(f"--textures {str(root)!r} holds none of the texture packages ({', '.join(packages)}) as "
                         "ROOT/<package>/<archive>: unpack each with apt-get download P && dpkg -x P_*.deb ROOT/P")  # fmt: skip
    return found


def in_split(item: dict, split: str) -> bool:
    """Whether a `real_textures` item belongs to `split` ("train", "held_out" or "all")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split == "all" or item["held_out"] == (split == "held_out")


def png_name(item: dict) -> str:
    """A readable file name, unique for each (package, member): the archive path with '/' as '__', its extension
    kept ('lavahell.jpg' and 'lavahell.tga' are two textures): 'nexuiz-textures__textures__liquids__lava.jpg.png'."""
    member = slug(item["member"].replace("/", "__"), limit=240, lower=False)
    return f"{item['package']}__{member}.png"


def _png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def sources_markdown(rows: list[dict], packages: Mapping[str, tuple[str, str]], root: Path, split: str) -> str:
    """SOURCES.md: where the images came from, under which licence, how many from each package."""
    counts = Counter(r["package"] for r in rows)
    lines = ["# Sources of these texture images", "",
             f"Exported by `python -m training.export_textures` (split: {split}) from Debian packages unpacked under "
             f"{root}. Captions are made from the file names (training/image_encoder_data.py, caption_from_name).", "",
             "| package | archive in the package | licence (its /usr/share/doc/<package>/copyright) | images |",
             "|---|---|---|---|"]  # fmt: skip
    for package, n in sorted(counts.items()):
        archive, licence = packages[package]
        lines.append(f"| {package} | {archive} | {licence} | {n} |")
    lines += ["", f"{len(rows)} images in all."]
    return "\n".join(lines) + "\n"


def export_textures(
    root: Path, out: Path, split: str = "train", packages: Mapping[str, tuple[str, str]] = TEXTURE_PACKAGES,
    log: Callable[[str], None] = lambda _: None,
) -> Counter:  # fmt: skip
    """Write the split's textures under `out` (see the module docstring); returns the counts of images "written",
    "kept" (already there) and "unreadable" (skipped)."""
    check_texture_root(root, packages)
    items = [it for it in real_textures(root, packages) if in_split(it, split)]
    names = [png_name(it) for it in items]
    if len(set(names)) != len(names):
        raise ValueError(f"two textures share a file name: {sorted(n for n in names if names.count(n) > 1)[:2]}")
    out.mkdir(parents=True, exist_ok=True)
    rows, counts = [], Counter()
    for item, name in zip(items, names):
        if (out / name).is_file():
            counts["kept"] += 1
        else:
            image = read_texture(root, item, packages)
            if image is None:
                counts["unreadable"] += 1
                continue
            atomic_write_bytes(out / name, _png_bytes(image))
            counts["written"] += 1
        rows.append({"file": name} | {k: item[k] for k in ("caption", "family", "package", "member", "licence")})
        if len(rows) % 200 == 0:
            log(f"{len(rows)}/{len(items)} images")
    atomic_write_text(out / CAPTIONS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / SOURCES_FILE, sources_markdown(rows, packages, root, split))
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export_textures", description=__doc__.split("\n")[0])
    p.add_argument("--textures", type=Path, required=True, help="folder of the unpacked Debian texture packages")
    p.add_argument("--out", type=Path, required=True, help="image folder to write (PNGs, captions.jsonl, SOURCES.md)")
    p.add_argument("--split", choices=SPLITS, default="train", help="the textures trained on, the held-out fifth, or all")
    args = p.parse_args(argv)
    counts = export_textures(args.textures, args.out, args.split, log=print)
    print(f"{args.out}: {counts['written']} images written, {counts['kept']} kept, {counts['unreadable']} unreadable "
          "(skipped)")  # fmt: skip
    return 0


if __name__ == "__main__":
    from .config_help import run_main

    sys.exit(run_main(main, "python -m training.export_textures"))
