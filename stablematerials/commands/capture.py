"""`stablematerials capture`: a photo of a surface -> its own tileable PBR maps; a folder of photos -> one material
folder each (resumable: folders already written are kept)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._request import add_output_arguments

HELP = "read a photo's own PBR maps (tileable by default); a folder of photos gives a material folder each"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..defaults import CAPTURE_SIZE

    p.add_argument("photos", nargs="+", help="photo files or folders of photos (png, jpg, webp, tif, bmp)")
    p.add_argument("--out", required=True, help="output folder: the material folder for one photo, else a folder "
                   "holding one material folder per photo (named after the photo)")  # fmt: skip
    p.add_argument("--model", help="capture model folder, or a model folder holding capture/ (default: the "
                   "embedded default model's)")  # fmt: skip
    p.add_argument("--tileable", action=argparse.BooleanOptionalAction, default=True,
                   help="maps that wrap seamlessly (default); --no-tileable keeps the photo's exact framing")  # fmt: skip
    p.add_argument("--max-size", type=int, default=CAPTURE_SIZE,
                   help=f"largest output side in pixels (default {CAPTURE_SIZE}; smaller photos keep their size)")  # fmt: skip
    add_output_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing material folders (never a folder of other files)")  # fmt: skip


def photo_targets(photos: list[str], out: Path) -> list[tuple[Path, Path]]:
    """(photo, material folder) for each photo the arguments name: one photo file writes `out` itself; several
    photos or a folder write `out/<photo name>` (a number added when two photos share a name)."""
    from ..pictures import image_files
    from ..values import slug

    files: list[Path] = []
    for given in photos:
        path = Path(given).expanduser()
        if path.is_dir():
            files.extend(image_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"photo {given!r} is neither a file nor a folder")
    if len(photos) == 1 and len(files) == 1 and not Path(photos[0]).is_dir():
        return [(files[0], out)]
    targets, used = [], set()
    for photo in files:
        name, k = slug(photo.stem, lower=False), 1
        while name.lower() in used:
            k += 1
            name = f"{slug(photo.stem, lower=False)}_{k}"
        used.add(name.lower())
        targets.append((photo, out / name))
    return targets


def run(args: argparse.Namespace) -> int:
    from ..capture_request import CaptureRequest, capture
    from ..generation import local_limits
    from ..io import check_output_folder, is_material_folder, save_material
    from ..loading import capture_model_path, load_capture_pipeline

    # 1. Everything that can be checked before the model loads: options, photos, the model, the output folders.
    limits = local_limits()
    template = CaptureRequest(photo="-", tileable=args.tileable, max_size=args.max_size, model=args.model,
                              naming=args.naming, normal_convention=args.normal, bit_depth=args.bit_depth)  # fmt: skip
    template.validate(limits, check_files=False)
    out = Path(args.out)
    targets = photo_targets(args.photos, out)
    single = len(targets) == 1 and targets[0][1] == out
    todo = []
    for photo, target in targets:
        if not single and is_material_folder(target) and not args.overwrite:
            print(f"kept {target}  (already written; --overwrite to redo)")
            continue
        check_output_folder(target, args.overwrite)
        todo.append((photo, target))
    capture_model_path(args.model)

    # 2. Read each photo's maps and write its folder atomically; a bad photo is reported and the others go on.
    pipe = load_capture_pipeline(args.model) if todo else None
    failed = 0
    for photo, target in todo:
        request = dataclasses.replace(template, photo=str(photo))
        try:
            result = capture(pipe, request, limits=limits)
        except ValueError as e:
            if single:
                raise
            failed += 1
            print(f"failed: {photo}: {e}")
            continue
        save_material(result.material, target, naming=request.naming, normal_convention=request.normal_convention,
                      bit_depth=request.bit_depth, overwrite=args.overwrite, name=request.base_name)  # fmt: skip
        worst = max(max(pair) for pair in result.seam.values())
        h, w = result.material.size
        print(f"wrote {target}  ({w}x{h}, {result.seconds:.1f} s, worst seam score {worst:.2f})")
    if not single:
        print(f"{len(targets)} photos: {len(todo) - failed} written, {len(targets) - len(todo)} kept, {failed} failed")
    return 1 if failed else 0
