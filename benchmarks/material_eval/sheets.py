"""Pictures: contact sheets of generated materials (one row per prompt) and the VAE's inputs beside its outputs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stablematerials.io import atomic_write_bytes
from stablematerials.material import Material

TILE = 144
GAP = 4
TEXT_WIDTH = 330
MAP_LABELS = ("basecolor", "normal", "height", "roughness", "metallic")


def _font(size: int = 13) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def source_maps(source: np.ndarray) -> list[np.ndarray]:
    """The five maps of a classifier source (8, h, w) uint8 as displayable (h, w, 3) uint8 images."""
    x = source.astype(np.float32) / 255.0
    xy = x[3:5] * 2 - 1
    z = np.sqrt(np.clip(1.0 - (xy**2).sum(0), 0.0, 1.0))
    normal = np.concatenate([xy, z[None]]) * 0.5 + 0.5
    grey = lambda c: np.repeat(x[c : c + 1], 3, axis=0)  # noqa: E731
    maps = [x[0:3], normal, grey(5), grey(6), grey(7)]
    return [np.round(m.transpose(1, 2, 0) * 255).astype(np.uint8) for m in maps]


def _tile(img: np.ndarray, width: int, height: int = TILE) -> Image.Image:
    return Image.fromarray(img).resize((width, height), Image.Resampling.LANCZOS)


def save_png(image: Image.Image, path: Path) -> None:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def contact_sheets(rows: list[dict], out_dir: Path, title: str, per_page: int = 10) -> list[Path]:
    """Pages of `per_page` prompts. Each row dict: 'lines' (text), 'sources' (one per seed), 'render' (seed 0).

    A row: the text, the five maps of seed 0, its lit render (sphere and plane), and the basecolors of the other
    seeds (diversity at a glance).
    """
    n_extra = max(len(r["sources"]) for r in rows) - 1
    width = TEXT_WIDTH + (5 + 2 + n_extra) * (TILE + GAP) + GAP
    header = 46
    paths = []
    for page, start in enumerate(range(0, len(rows), per_page)):
        chunk = rows[start : start + per_page]
        sheet = Image.new("RGB", (width, header + len(chunk) * (TILE + GAP)), (30, 30, 30))
        draw = ImageDraw.Draw(sheet)
        draw.text((GAP, 4), f"{title}  (page {page + 1})", fill=(255, 255, 255), font=_font(16))
        x = TEXT_WIDTH
        for label in (*MAP_LABELS, "render: sphere | plane", *[f"seed {k + 1} basecolor" for k in range(n_extra)]):
            draw.text((x + 2, 28), label, fill=(200, 200, 200), font=_font(12))
            x += (2 * (TILE + GAP)) if label.startswith("render") else (TILE + GAP)
        for i, row in enumerate(chunk):
            y = header + i * (TILE + GAP)
            for k, line in enumerate(row["lines"]):
                colour = (255, 120, 120) if line.startswith("x ") else (235, 235, 235)
                draw.text((GAP, y + 2 + 14 * k), line, fill=colour, font=_font(12))
            x = TEXT_WIDTH
            for m in source_maps(row["sources"][0]):
                sheet.paste(_tile(m, TILE), (x, y))
                x += TILE + GAP
            sheet.paste(_tile(row["render"], 2 * TILE + GAP), (x, y))
            x += 2 * (TILE + GAP)
            for src in row["sources"][1:]:
                sheet.paste(_tile(source_maps(src)[0], TILE), (x, y))
                x += TILE + GAP
        path = out_dir / f"{title.split()[0]}_contact_{page + 1:02d}.png"
        save_png(sheet, path)
        paths.append(path)
    return paths


def row_lines(summary: dict, verdicts: list[dict], width: int = 46) -> list[str]:
    """The text of a contact-sheet row: the prompt, what it asks, what the classifier and the checks saw.

    Lines starting with 'x ' (drawn red) are failed expectations."""
    e = summary["expected"]
    lines = textwrap.wrap(f'"{summary["prompt"]}"', width)[:3]
    asked = ", ".join(v for v in e.values() if v is not None) or "nothing"
    lines += textwrap.wrap(f"asks: {asked}", width)[:2]
    fam = ", ".join(f"{f} {n}" for f, n in sorted(summary["families"].items(), key=lambda kv: -kv[1]))
    ok = e["family"] is None or summary["family"] >= 0.5
    lines.append(("  " if ok else "x ") + f"classifier: {fam}"[:width])
    seen_colours = "/".join(verdicts[0]["colours"]) or "no colour name"
    r, g, b = summary["mean_rgb"]
    lines.append(("x " if summary["colour"] is not None and summary["colour"] < 0.5 else "  ")
                 + f"seed 0 colour: {seen_colours} ({r:.2f},{g:.2f},{b:.2f})"[: width])  # fmt: skip
    bad_attr = any(summary[k] is not None and summary[k] < 0.5 for k in ("metal", "gloss"))
    lines.append(("x " if bad_attr else "  ") + f"metallic {summary['metallic']:.2f}  roughness {summary['roughness']:.2f}")
    diverse = f"{100 * summary['diversity']['clear_pairs']:.0f} %" if summary["diversity"] else "n/a (one seed)"
    lines.append(f"  worst seam {summary['max_seam']:.2f}  diverse pairs {diverse}")
    return lines[:10]


def vae_figure(examples: dict[str, tuple[Material, Material]], path: Path, title: str, cell: int = 128) -> Path:
    """Columns: one held-out material per family; rows: basecolor (whole, and a 1:1 crop), normal, roughness and
    metallic, each as input above reconstruction."""
    row_names = ["basecolor in", "basecolor out", "1:1 crop in", "1:1 crop out", "normal in", "normal out",
                 "roughness in", "roughness out", "metallic in", "metallic out"]  # fmt: skip
    label_w, header = 110, 40
    fams = list(examples)
    sheet = Image.new("RGB", (label_w + len(fams) * (cell + 2), header + len(row_names) * (cell + 2)), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill=(255, 255, 255), font=_font(15))
    for j, fam in enumerate(fams):
        draw.text((label_w + j * (cell + 2) + 2, 24), fam[:18], fill=(220, 220, 220), font=_font(11))
        original, rebuilt = examples[fam]
        images = []
        for m in (original, rebuilt):
            images.append(m.basecolor)
        h = original.size[0]
        c0 = (h - cell) // 2
        for m in (original, rebuilt):
            images.append(m.basecolor[c0 : c0 + cell, c0 : c0 + cell])
        for name in ("normal", "roughness", "metallic"):
            for m in (original, rebuilt):
                enc = m.encoded(name)
                images.append(enc if enc.ndim == 3 else np.repeat(enc[..., None], 3, axis=-1))
        for i, img in enumerate(images):
            tile = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
            if tile.size != (cell, cell):
                tile = tile.resize((cell, cell), Image.Resampling.LANCZOS)
            sheet.paste(tile, (label_w + j * (cell + 2), header + i * (cell + 2)))
    for i, name in enumerate(row_names):
        draw.text((4, header + i * (cell + 2) + cell // 2 - 6), name, fill=(220, 220, 220), font=_font(12))
    save_png(sheet, path)
    return path


def _concept_row(row: dict) -> list[tuple[Image.Image, int]]:
    """A concept row's pictures as tiles TILE high, each with its x offset: images | basecolors | renders."""
    placed, x = [], TEXT_WIDTH
    for group in ("images", "basecolors", "renders"):
        for img in row[group]:
            tile = _tile(img, round(TILE * img.shape[1] / img.shape[0]))
            placed.append((tile, x))
            x += tile.width + GAP
        x += 2 * GAP  # a wider gap between the groups
    return placed


def concept_sheet(rows: list[dict], path: Path, title: str) -> Path:
    """One row per concept: its text ('lines'), held-out texture images ('images'), then the generated materials'
    basecolors ('basecolors') and lit renders ('renders', sphere | plane); pictures are (h, w, 3) uint8."""
    placed = [_concept_row(r) for r in rows]
    width = max(x + tile.width for row in placed for tile, x in row) + GAP
    header = 46
    sheet = Image.new("RGB", (width, header + len(rows) * (TILE + GAP)), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 4), title, fill=(255, 255, 255), font=_font(16))
    draw.text((TEXT_WIDTH + 2, 28), "held-out images | generated basecolors | renders (sphere, plane) of the first ones",
              fill=(200, 200, 200), font=_font(12))  # fmt: skip
    for i, (row, tiles) in enumerate(zip(rows, placed)):
        y = header + i * (TILE + GAP)
        for k, line in enumerate(row["lines"]):
            draw.text((GAP, y + 2 + 14 * k), line, fill=(235, 235, 235), font=_font(12))
        for tile, x in tiles:
            sheet.paste(tile, (x, y))
    save_png(sheet, path)
    return path
