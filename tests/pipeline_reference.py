"""The pipeline's outputs on the tiny seeded pipelines for a set of option combinations, pinned in
tests/data/pipeline_reference.json so that a refactor of `StableMaterialsPipeline.__call__` that changes what it
makes fails `tests/test_pipeline_reference.py`.

    python tests/pipeline_reference.py --write   # (from the checkout) after a change that is meant to change the outputs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REFERENCE = Path(__file__).resolve().parent / "data" / "pipeline_reference.json"
STRIDE = 4  # every 4th pixel along each axis of each output is pinned


def _photo(seed: int, height: int, width: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nudge(pipe, step, timestep, tensors):
    return {"latents": tensors["latents"] * 0.99} if step == 1 else None


def cases() -> dict[str, tuple[str, dict]]:
    """name -> (pipeline: teacher, student or clip; keyword arguments of the call)."""
    return {
        "text_cfg_negative_np": ("teacher", dict(prompt=["red bricks", "wood"], num_images_per_prompt=2,
            negative_prompt="blurry", num_inference_steps=3, generator=_g(2), output_type="np")),
        "tileable_patched_pt": ("teacher", dict(prompt=["moss", "sand"], height=32, width=48, num_inference_steps=3,
            generator=[_g(3), _g(4)], tileable=True, patched=True, output_type="pt")),
        "image_prompts_material": ("teacher", dict(image=[_photo(0, 40, 40), _photo(1, 48, 32)],
            num_inference_steps=3, generator=[_g(10), _g(11)], output_type="material")),
        "embeds_callback_latent": ("teacher", dict(prompt_embeds=torch.randn(1, 1, 32, generator=_g(17)),
            num_inference_steps=3, generator=_g(18), callback_on_step_end=_nudge, output_type="latent")),
        "clip_black_negative_pil": ("clip", dict(prompt=_photo(2, 40, 40), num_inference_steps=3, generator=_g(15))),
        "student_tileable_patched_pil": ("student", dict(prompt=["bricks", "wood"], guidance_scale=5.0, height=32,
            width=32, generator=[_g(23), _g(24)], tileable=True, patched=True, output_type="pil")),
    }  # fmt: skip


def pipelines() -> dict[str, object]:
    from stablematerials.tiny import tiny_pipeline

    pipes = {"teacher": tiny_pipeline(seed=0), "student": tiny_pipeline(seed=0, student=True),
             "clip": tiny_pipeline(seed=1, vision="clip")}  # fmt: skip
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    return pipes


def as_array(images) -> np.ndarray:
    """Any output type as one float array (B, C, H, W): "np" arrays and material maps (in MAP_NAMES order) moved
    channels first."""
    if isinstance(images, torch.Tensor):
        return images.float().numpy()
    if isinstance(images, np.ndarray):
        return images.astype(np.float32).transpose(0, 3, 1, 2)
    items = []
    for item in images:
        maps = item.maps() if hasattr(item, "maps") else item.as_dict()
        arrays = [np.asarray(m, np.float32) for m in maps.values()]
        items.append(np.concatenate([a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for a in arrays]))
    return np.stack(items)


def pinned(images) -> list:
    """The pinned part of an output: every STRIDE-th pixel along each axis, rounded to 6 decimals."""
    return np.round(as_array(images)[..., ::STRIDE, ::STRIDE], 6).tolist()


def run(pipes: dict) -> dict[str, list]:
    return {name: pinned(pipes[which](**kwargs).images) for name, (which, kwargs) in cases().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the reference file")
    args = parser.parse_args()
    outputs = run(pipelines())
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(outputs) + "\n")
        print(f"wrote {REFERENCE}")
    else:
        reference = json.loads(REFERENCE.read_text())
        for name, values in outputs.items():
            print(name, float(np.abs(np.asarray(values) - np.asarray(reference[name])).max()))


if __name__ == "__main__":
    main()
