"""A latent-consistency student stored as low-rank changes to its teacher (LCM-LoRA, Luo et al. 2023, arXiv
2311.05556), so a model folder carries a 4-step student for a few MB instead of a second UNet.

`unet_lcm/` then holds the student's `config.json` (the teacher's plus `time_cond_proj_dim`, the embedded guidance)
and `student_lora.safetensors`:

    "<layer>.lora_A"  (r, in) or (r, in, kh, kw)     for each adapted Linear / Conv2d layer of the teacher
    "<layer>.lora_B"  (out, r) or (out, r, 1, 1)
    "<parameter>"     whole tensors the teacher lacks or the student replaces (the guidance projection)
    metadata: {"format": FORMAT, "scale": alpha / r}

and the student's weight of an adapted layer is W_teacher + scale * B A (Hu et al. 2021, arXiv 2106.09685). The
student is built from the teacher's `unet/` when the folder loads; nothing in the folder runs code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import save_file

FILE = "student_lora.safetensors"
FORMAT = "stablematerials-lcm-lora"


def is_lora_student(folder: str | Path) -> bool:
    """True when a `unet_lcm/` folder holds a low-rank student rather than whole weights."""
    return (Path(folder) / FILE).is_file()


def lora_student_rank(folder: str | Path) -> int:
    """The rank of a low-rank student's adapters (to distil a new one like it)."""
    with safe_open(str(Path(folder) / FILE), "pt") as f:
        first = next((k for k in f.keys() if k.endswith(".lora_A")), None)
        if first is None:
            raise ValueError(f"{Path(folder) / FILE} holds no adapters")
        return f.get_slice(first).get_shape()[0]


def set_lora_student_sample_size(folder: str | Path, sample_size: int) -> None:
    """Record the native latent size in a low-rank student's config, as `register_to_config` does for a UNet."""
    path = Path(folder) / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"sample_size": sample_size}, indent=2))


def low_rank_delta(a: torch.Tensor, b: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """B A as a weight change of `shape`: (out, r) @ (r, in) for a Linear, (out, r) @ (r, in kh kw) for a Conv2d."""
    return (b.flatten(1).float() @ a.flatten(1).float()).reshape(shape)


def write_lora_student(folder: str | Path, student: UNet2DConditionModel,
                       factors: dict[str, tuple[torch.Tensor, torch.Tensor]], whole: dict[str, torch.Tensor],
                       scale: float) -> None:  # fmt: skip
    """Write a low-rank student into `folder` (a new or empty `unet_lcm/`): its UNet's config, and per adapted layer
    its factors (A, B), plus the `whole` tensors, in float16."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for layer, (a, b) in factors.items():
        tensors[f"{layer}.lora_A"] = a.detach().to(torch.float16).contiguous()
        tensors[f"{layer}.lora_B"] = b.detach().to(torch.float16).contiguous()
    for name, value in whole.items():
        tensors[name] = value.detach().to(torch.float16).contiguous()
    save_file(tensors, str(folder / FILE), metadata={"format": FORMAT, "scale": repr(float(scale))})
    student.save_config(folder)


def load_lora_student(folder: str | Path, teacher: UNet2DConditionModel) -> UNet2DConditionModel:
    """The student of a low-rank `unet_lcm/` folder, built on `teacher` (the model's `unet/`, which is not changed).
    ValueError naming the problem when the file does not fit the teacher."""
    folder = Path(folder)
    path = folder / FILE
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a low-rank student (format {meta.get('format')!r}, expected {FORMAT!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    scale = float(meta["scale"])
    config = json.loads((folder / "config.json").read_text())
    student = UNet2DConditionModel.from_config(config)
    state = {k: v.float() for k, v in teacher.state_dict().items()}
    for key in [k for k in tensors if k.endswith(".lora_A")]:
        layer = key[: -len(".lora_A")]
        weight = f"{layer}.weight"
        a, b = tensors[key], tensors[f"{layer}.lora_B"]
        if weight not in state or (b.shape[0], a[0].numel()) != (state[weight].shape[0], state[weight][0].numel()):
            raise ValueError(f"{path}: adapted layer {layer!r} does not fit the teacher UNet")
        state[weight] = state[weight] + scale * low_rank_delta(a, b, state[weight].shape)
    state |= {k: v.float() for k, v in tensors.items() if not k.endswith((".lora_A", ".lora_B"))}
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit the teacher UNet: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return student if teacher.dtype == torch.float32 else student.to(teacher.dtype)
