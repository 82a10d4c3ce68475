"""Image prompts with a model's image encoder (issue 14): retrieval, colour, speed, and generation from pictures.

    python -m benchmarks.image_prompt --model runs/model_with_encoder
    python -m benchmarks.image_prompt --model M --generate 5 --classifier runs/eval/classifier --sheet TEXTURES_ROOT

Pictures: held-out procedural materials (test-split seeds after the first `--skip` of each family, which training
monitors; never trained on) photographed as in training ("like": `TRAIN_PHOTOS` ranges, new random draws) and
unlike training ("unlike": `UNLIKE_PHOTOS`: zoomed out past one tile, grazing or two tinted lights, stronger
perspective), rendered at 256 px and encoded through the pipeline's own processor and encoder.

1. Retrieval: the family whose prototype (the unit mean of 64 caption embeddings of random materials of the
   family) is nearest ranks first? Also with one caption per family (its one-line summary, as a user might type).
   And the material's own caption among all held-out materials' captions (top-1 / top-5).
2. Colour: among the captions of the same material with its colour parameter set to each option (bricks red /
   brown / ..., fabric colours, metals, wood species), is the true colour's caption nearest?
3. Speed: encoding one 512 px picture, against a 512 px generation (student, 4 steps).
4. `--generate N`: N pictures per family (unlike condition) as image prompts and their captions as text prompts;
   the generated material's family by the family classifier of benchmarks/material_eval (`--classifier WORK`,
   branch `eval`) and its mean basecolour against the pictured material's (share within 0.1).
5. `--sheet ROOT`: held-out real texture images (not trained on) beside the materials generated from them, a PNG.
6. `--mix N`: text and image together ("this picture, but blue"): N pictures per family ("like" condition), each
   with a colour word it does not show, generated at each `--mix-weights` share of the picture (0: the word alone,
   1: the picture alone). Per share: the word's colour right (benchmarks/material_eval/attributes.py) and the
   picture's family kept (the classifier). A mix that does what it says keeps the family and takes the colour.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


from benchmarks.material_eval.sheets import save_png  # noqa: E402
from stablematerials.conditioning import encode_images, encode_text, load_image_prompt  # noqa: E402
from stablematerials.io import atomic_write_text  # noqa: E402
from stablematerials.loading import load_pipeline  # noqa: E402
from stablematerials.procedural import FAMILIES, get_family  # noqa: E402
from training.image_encoder_data import (  # noqa: E402
    METAL_FAMILIES,
    TRAIN_PHOTOS,
    UNLIKE_PHOTOS,
    family_captions,
    material_maps,
    photograph,
    procedural_item,
    read_texture,
    real_textures,
    split_seeds,
)

# The parameter that sets each family's colour (or colour-giving kind).
COLOUR_FIELDS = {
    "bricks": "color", "square_tiles": "color", "hex_tiles": "color", "wood_planks": "species",
    "cobblestone": "color", "flagstone": "color", "marble": "kind", "polished_metal": "metal",
    "brushed_metal": "metal", "painted_metal": "paint_color", "rusty_metal": "paint_remnants", "concrete": "color",
    "plaster": "color", "fabric": "color", "leather": "color", "soil": "color", "gravel": "color", "sand": "color",
    "bark": "color",
}  # fmt: skip
PICTURE_SEED = 77  # random draws of the benchmark's views (training used other streams)


@dataclasses.dataclass
class Held:
    """One held-out material: its family, seed, parameters, captions, mean basecolour and pictures."""

    family: str
    seed: int
    params: object
    captions: list[str]
    basecolor: np.ndarray
    pictures: dict[str, Image.Image]


def held_out(per_family: int, skip: int, size: int) -> list[Held]:
    """Test-split materials after the first `skip` of each family, one picture per condition."""
    out, seen = [], dict.fromkeys(FAMILIES, 0)
    for family, seed in split_seeds("test", skip + per_family):
        seen[family] += 1
        if seen[family] <= skip:
            continue
        material, captions = procedural_item(family, seed, 256)
        maps = material_maps(material)
        rng = np.random.default_rng([PICTURE_SEED, seed])
        pictures = {name: Image.fromarray(photograph(maps, 1, size, settings, rng)[0])
                    for name, settings in (("like", TRAIN_PHOTOS), ("unlike", UNLIKE_PHOTOS))}  # fmt: skip
        params = get_family(family).params.create(**material.metadata["params"])
        out.append(Held(family, seed, params, captions, material.basecolor.reshape(-1, 3).mean(0), pictures))
    return out


def unit_mean(text_encoder, tokenizer, groups: list[list[str]]) -> torch.Tensor:
    """(G, D): the unit mean of each group's unit caption embeddings."""
    flat = [c for g in groups for c in g]
    emb = torch.cat([encode_text(text_encoder, tokenizer, flat[i : i + 256], torch.device("cpu")).float()
                     for i in range(0, len(flat), 256)])  # fmt: skip
    out, k = [], 0
    for g in groups:
        out.append(emb[k : k + len(g)].mean(0))
        k += len(g)
    return F.normalize(torch.stack(out), dim=-1)


def image_embeddings(pipe, pictures: list[Image.Image]) -> torch.Tensor:
    """(N, D) unit embeddings through the pipeline's processor and encoder."""
    return torch.cat([encode_images(pipe.vision_encoder, pipe.processor, pictures[i : i + 64], torch.device("cpu"),
                                    normalize=True) for i in range(0, len(pictures), 64)])  # fmt: skip


def family_hit(predicted: str, truth: str) -> bool:
    return predicted == truth or (truth == "metal" and predicted in METAL_FAMILIES)


def retrieval(pipe, held: list[Held]) -> dict:
    names = list(FAMILIES)
    te, tok = pipe.text_encoder, pipe.tokenizer
    prototypes = unit_mean(te, tok, [family_captions(f, 64) for f in names])
    summaries = unit_mean(te, tok, [[get_family(f).summary] for f in names])
    own = unit_mean(te, tok, [h.captions for h in held])
    truth = np.array([names.index(h.family) for h in held])
    out: dict = {}
    for condition in ("like", "unlike"):
        e = image_embeddings(pipe, [h.pictures[condition] for h in held])
        top = (e @ prototypes.T).argmax(-1).numpy()
        per_family = {f: float(np.mean(top[truth == i] == i)) for i, f in enumerate(names)}
        ranks = (e @ own.T).argsort(-1, descending=True).numpy()
        position = np.array([int(np.flatnonzero(r == i)[0]) for i, r in enumerate(ranks)])
        confusions: dict[str, int] = {}
        for t, p in zip(truth, top):
            if t != p:
                key = f"{names[t]} -> {names[p]}"
                confusions[key] = confusions.get(key, 0) + 1
        out[condition] = {
            "family_top1": float(np.mean(top == truth)),
            "family_top1_summary_caption": float(np.mean((e @ summaries.T).argmax(-1).numpy() == truth)),
            "own_caption_top1": float(np.mean(position == 0)),
            "own_caption_top5": float(np.mean(position < 5)),
            "cosine_to_own_caption": float((e * own).sum(-1).mean()),
            "per_family_top1": per_family,
            "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:8]),
        }
    return out


def colour_retrieval(pipe, held: list[Held]) -> dict:
    """Colour-variant retrieval per family (like and unlike pictures) and the chance level."""
    out: dict = {}
    for family in FAMILIES:
        field = COLOUR_FIELDS[family]
        options = [f for f in dataclasses.fields(get_family(family).params) if f.name == field][0].metadata["choices"]
        writer = get_family(family).caption
        rows = [h for h in held if h.family == family]
        hits = {"like": [], "unlike": []}
        chance = []
        for h in rows:
            groups, valid = [], []
            for option in options:
                try:
                    variant = dataclasses.replace(h.params, **{field: option})
                except ValueError:  # a combination the family does not allow
                    continue
                groups.append([writer(variant, np.random.default_rng([h.seed, k])) for k in range(3)])
                valid.append(option)
            candidates = unit_mean(pipe.text_encoder, pipe.tokenizer, groups)
            truth = valid.index(getattr(h.params, field))
            for condition in hits:
                e = image_embeddings(pipe, [h.pictures[condition]])
                hits[condition].append(int((e @ candidates.T).argmax()) == truth)
            chance.append(1.0 / len(valid))
        out[family] = {"field": field, **{c: float(np.mean(v)) for c, v in hits.items()}, "chance": float(np.mean(chance))}
    return out


def speed(pipe) -> dict:
    """Median seconds to encode a 512 px picture, and of a 512 px student generation (4 steps)."""
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    encode = []
    for _ in range(7):
        t = time.perf_counter()
        pipe.encode_prompt([picture], torch.device("cpu"), 1, False)
        encode.append(time.perf_counter() - t)
    t = time.perf_counter()
    pipe(image=picture, height=512, width=512, patched=True, tileable=True, generator=torch.Generator().manual_seed(0))
    return {"encode_seconds": float(np.median(encode[2:])), "generation_512_seconds": time.perf_counter() - t}


def generation(pipe, held: list[Held], per_family: int, classifier: Path, size: int) -> dict:
    """Materials from pictures (unlike) and from their captions: family by the classifier, colour error."""
    try:
        from benchmarks.material_eval.classifier import predict_proba, source_array
        from benchmarks.material_eval.classifier_train import load_classifier
    except ImportError as e:
        raise SystemExit(f"--generate needs the family classifier of benchmarks/material_eval (branch eval): {e}")
    net = load_classifier(classifier)
    names = list(FAMILIES)
    chosen = [h for f in names for h in [x for x in held if x.family == f][:per_family]]
    out: dict = {}
    for label, prompts in (("image", [h.pictures["unlike"] for h in chosen]), ("text", [h.captions[0] for h in chosen])):
        materials = []
        for i, p in enumerate(prompts):
            g = torch.Generator().manual_seed(1000 + i)
            kw = {"image": p} if label == "image" else {"prompt": p}
            materials += pipe(**kw, height=size, width=size, tileable=True, generator=g, output_type="material").images
        probs = predict_proba(net, np.stack([source_array(m) for m in materials]))
        fam = [names[i] for i in probs.argmax(1)]
        colour = np.array([np.abs(m.basecolor.reshape(-1, 3).mean(0) - h.basecolor).max() for m, h in zip(materials, chosen)])
        out[label] = {
            "family_match": float(np.mean([f == h.family for f, h in zip(fam, chosen)])),
            "colour_within_0.1": float(np.mean(colour <= 0.1)),
            "colour_error_mean": float(colour.mean()),
        }
    return out


MIX_COLOURS = ("blue", "green", "red", "white", "black", "yellow")  # words a user adds to a picture


def mix_word(index: int, basecolor: np.ndarray) -> str:
    """A colour word for picture `index` that its material does not already show (rotating through MIX_COLOURS)."""
    from benchmarks.material_eval.attributes import colour_names_of, hsv

    shown = set(colour_names_of(*hsv(basecolor)))
    words = [w for w in MIX_COLOURS if w not in shown]
    return words[index % len(words)]


def mix(pipe, held: list[Held], per_family: int, classifier: Path, size: int, weights: list[float]) -> dict:
    """Text + picture at each share in `weights`: colour word right and picture's family kept, per share."""
    from benchmarks.material_eval.attributes import colour_matches
    from benchmarks.material_eval.classifier import predict_proba, source_array
    from benchmarks.material_eval.classifier_train import load_classifier

    net, names = load_classifier(classifier), list(FAMILIES)
    chosen = [h for f in names for h in [x for x in held if x.family == f][:per_family]]
    words = [mix_word(i, h.basecolor) for i, h in enumerate(chosen)]
    out: dict = {"pictures": len(chosen), "words": dict(zip([f"{h.family}_{h.seed}" for h in chosen], words))}
    for w in weights:
        materials = [
            pipe(word, image=h.pictures["like"], image_weight=w, height=size, width=size, tileable=True,
                 generator=torch.Generator().manual_seed(2000 + i), output_type="material").images[0]
            for i, (h, word) in enumerate(zip(chosen, words))
        ]  # fmt: skip
        family = [names[k] for k in predict_proba(net, np.stack([source_array(m) for m in materials])).argmax(1)]
        out[f"{w:g}"] = {
            "colour_word_right": float(np.mean([colour_matches(word, m.basecolor) for word, m in zip(words, materials)])),
            "picture_family_kept": float(np.mean([f == h.family for f, h in zip(family, chosen)])),
        }
    return out


def held_out_textures(root: Path, count: int) -> list[tuple[Image.Image, str]]:
    """`count` held-out real textures of the Debian packages (never trained on) that name a family, with labels."""
    items = [it for it in real_textures(root) if it["held_out"] and it["family"]]
    rng = np.random.default_rng(0)
    picks = [items[i] for i in rng.choice(len(items), min(count, len(items)), replace=False)]
    pictures = [(read_texture(root, it), f"{it['package']}:{it['member']} ({it['caption']})") for it in picks]
    return [(image, label) for image, label in pictures if image is not None]


def photo_folder(folder: Path) -> list[tuple[Image.Image, str]]:
    """Every picture in a folder of photographs, by name, with its file name as the label."""
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"})
    if not files:
        raise SystemExit(f"--photos {folder}: no .jpg/.png/.webp/.tif pictures in it")
    return [(load_image_prompt(f), f.name) for f in files]


def picture_sheet(pipe, pictures: list[tuple[Image.Image, str]], size: int, path: Path) -> list[str]:
    """Rows of picture | material generated from it (basecolor) | its lit preview (2 wide); returns the labels."""
    from stablematerials.render import render_preview

    sheet = Image.new("RGB", (4 * size, size * len(pictures)))
    for k, (image, _) in enumerate(pictures):
        m = pipe(image=image, height=size, width=size, tileable=True, generator=torch.Generator().manual_seed(k),
                 output_type="material").images[0]  # fmt: skip
        shown = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        base = Image.fromarray(np.round(m.basecolor * 255).astype(np.uint8))
        preview = render_preview(m, size=size).resize((2 * size, size))
        for x, tile in ((0, shown), (size, base), (2 * size, preview)):
            sheet.paste(tile, (x, k * size))
    save_png(sheet, path)
    return [label for _, label in pictures]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="pipeline folder with vision_encoder/ and processor/")
    p.add_argument("--per-family", type=int, default=30)
    p.add_argument("--skip", type=int, default=30, help="test seeds per family that training monitors (skipped)")
    p.add_argument("--size", type=int, default=256, help="picture size (the processor resizes)")
    p.add_argument("--generate", type=int, default=0, help="pictures per family to generate from (needs --classifier)")
    p.add_argument("--classifier", type=Path, help="work folder of the material_eval family classifier")
    p.add_argument("--gen-size", type=int, default=512, help="generated materials' size (the default output's)")
    p.add_argument("--sheet", type=Path, help="root of unpacked texture packages: a contact sheet of held-out ones")
    p.add_argument("--photos", type=Path, help="a folder of photographs (not trained on): a contact sheet of them")
    p.add_argument("--mix", type=int, default=0, help="pictures per family mixed with a colour word (needs --classifier)")
    p.add_argument("--mix-weights", default="0,0.25,0.5,0.75,1", help="the picture's shares to measure, comma-separated")
    p.add_argument("--mix-size", type=int, default=256, help="size of the materials made by the mix")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/image_prompt.json"))
    args = p.parse_args()
    pipe = load_pipeline(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    if pipe.vision_encoder is None:
        print(f"{args.model} has no image encoder", file=sys.stderr)
        return 2
    t = time.perf_counter()
    held = held_out(args.per_family, args.skip, args.size)
    report: dict = {"model": str(args.model), "pictures_per_condition": len(held), "render_seconds": time.perf_counter() - t}
    report["retrieval"] = retrieval(pipe, held)
    report["colour"] = colour_retrieval(pipe, held)
    report["speed"] = speed(pipe)
    if args.generate:
        if args.classifier is None:
            print("--generate needs --classifier", file=sys.stderr)
            return 2
        report["generation"] = generation(pipe, held, args.generate, args.classifier, args.gen_size)
    if args.mix:
        if args.classifier is None:
            print("--mix needs --classifier", file=sys.stderr)
            return 2
        weights = [float(w) for w in args.mix_weights.split(",") if w.strip()]
        report["mix"] = mix(pipe, held, args.mix, args.classifier, args.mix_size, weights)
    sheets = {"textures": held_out_textures(args.sheet, 12) if args.sheet else [],
              "photos": photo_folder(args.photos) if args.photos else []}  # fmt: skip
    for name, pictures in sheets.items():
        if pictures:
            path = args.out.with_name(f"{args.out.stem}_{name}.png")
            report[f"sheet_{name}"] = {"path": str(path), "rows": picture_sheet(pipe, pictures, 192, path)}
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    for condition, r in report["retrieval"].items():
        print(f"{condition:>6}: family top-1 {r['family_top1']:.3f} (one summary caption per family "
              f"{r['family_top1_summary_caption']:.3f}), own caption top-1 {r['own_caption_top1']:.3f} "
              f"top-5 {r['own_caption_top5']:.3f}, cosine {r['cosine_to_own_caption']:.3f}")  # fmt: skip
    for family, r in report["colour"].items():
        print(f"colour {family:>15} ({r['field']}): like {r['like']:.2f} unlike {r['unlike']:.2f} chance {r['chance']:.2f}")
    print(f"speed: encode {report['speed']['encode_seconds'] * 1000:.0f} ms, 512 px generation "
          f"{report['speed']['generation_512_seconds']:.2f} s")  # fmt: skip
    for label, r in report.get("generation", {}).items():
        print(f"generation from {label}: family match {r['family_match']:.3f}, colour within 0.1 "
              f"{r['colour_within_0.1']:.3f} (mean max-channel error {r['colour_error_mean']:.3f})")  # fmt: skip
    for share, r in report.get("mix", {}).items():
        if isinstance(r, dict) and "colour_word_right" in r:
            print(f"mix, picture's share {share}: colour word right {r['colour_word_right']:.3f}, picture's family "
                  f"kept {r['picture_family_kept']:.3f}")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
