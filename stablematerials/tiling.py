"""Features rolling (StableMaterials, arXiv 2406.09293, Sec. 3.4): seamless tiling inside one model instance.

The published code rolls every feature map by a random offset, pads it circularly, convolves and unrolls, and
runs attention in rolled windows, by swapping `torch.nn.Conv2d.forward` for the whole process. Rolling before a
circularly padded convolution and unrolling after it is the same as convolving with circular padding, so here:

* `enable_feature_rolling(model)` turns the model's own `nn.Conv2d` modules into `RollingConv2d` (same weights,
  same state dict) and wraps its attention processors in `RolledWindowAttnProcessor`. Nothing global changes.
* Both look up a `TilingState` in a `ContextVar`. With no state (the default) they behave exactly like the
  originals. `with tiling(TilingState(...))` switches circular padding and/or windowed attention on for the code
  running in that context only, so two threads (or two pipelines sharing one UNet) never see each other's mode.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)


@dataclass
class TilingState:
    """What the rolling modules do in the current context.

    circular: convolutions pad circularly (the output tiles seamlessly).
    window: self-attention runs in windows of this many latent pixels per side (scaled down at deeper UNet
        levels), with the window grid rolled by a random offset at every call; None: global attention.
    latent_hw: the latent size of the current call, used to recover the spatial shape of token sequences.
    generators: draw the window offsets, one generator per batch item (seeded by the pipeline so that an item gives
        the same result alone or in a batch); a batch larger than the tuple (e.g. doubled for classifier-free
        guidance) reuses them cyclically; one generator means one offset for the whole batch.
    """

    circular: bool = False
    window: int | None = None
    latent_hw: tuple[int, int] | None = None
    generators: tuple[torch.Generator | None, ...] = (None,)


_STATE: ContextVar[TilingState | None] = ContextVar("stablematerials_tiling_state", default=None)


def current_tiling() -> TilingState | None:
    """The tiling state of the calling context (None: plain convolutions and global attention)."""
    return _STATE.get()


@contextmanager
def tiling(state: TilingState | None) -> Iterator[None]:
    """Run the enclosed model calls with `state` (only in this thread / task)."""
    token = _STATE.set(state)
    try:
        yield
    finally:
        _STATE.reset(token)


class RollingConv2d(nn.Conv2d):
    """`nn.Conv2d` that pads circularly instead of with zeros while the context asks for circular tiling."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        state = _STATE.get()
        pad = self._reversed_padding_repeated_twice
        if state is None or not state.circular or self.padding_mode != "zeros" or not any(pad):
            return super()._conv_forward(input, weight, bias)
        if max(pad) > min(input.shape[-2:]):
            # Wider padding than the feature map (tiny maps deep in a small UNet): wrap as often as needed.
            reps = math.ceil(max(pad) / min(input.shape[-2:])) * 2 + 1
            tiled = input.repeat(1, 1, reps, reps)
            h, w = input.shape[-2:]
            oy, ox = (reps // 2) * h - pad[2], (reps // 2) * w - pad[0]
            padded = tiled[..., oy : oy + h + pad[2] + pad[3], ox : ox + w + pad[0] + pad[1]]
        else:
            padded = F.pad(input, pad, mode="circular")
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    for d in range(min(n, max(1, limit)), 0, -1):
        if n % d == 0:
            return d
    return 1


def window_partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/wh * W/ww, wh * ww, C): non-overlapping windows, row-major."""
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * (h // wh) * (w // ww), wh * ww, c)


def window_merge(x: torch.Tensor, b: int, h: int, w: int, wh: int, ww: int) -> torch.Tensor:
    """Inverse of `window_partition`: (B * nW, wh * ww, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.view(b, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class RolledWindowAttnProcessor:
    """Self-attention in rolled windows when the context asks for it; otherwise the wrapped processor.

    Memory then grows with the number of pixels, not its square. Cross-attention (one conditioning token) and
    calls with masks always go to the wrapped processor.
    """

    def __init__(self, base) -> None:
        self.base = base

    def _spatial_shape(self, n: int, state: TilingState) -> tuple[int, int] | None:
        if state.latent_hw is None:
            return None
        lh, lw = state.latent_hw
        scale = max(1, round(math.sqrt(lh * lw / n)))
        h, w = math.ceil(lh / scale), math.ceil(lw / scale)
        return (h, w) if h * w == n else None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        state = _STATE.get()
        if state is None or state.window is None or encoder_hidden_states is not None or attention_mask is not None:
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)

        residual = hidden_states
        if getattr(attn, "spatial_norm", None) is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        else:
            b, n, c = hidden_states.shape
            shape = self._spatial_shape(n, state)
            if shape is None:
                logger.debug("windowed attention: cannot infer the shape of %d tokens; using global attention", n)
                return self.base(attn, residual, None, None, temb, *args, **kwargs)
            h, w = shape
        # Window size at this level: the latent window scaled by this feature map's size.
        lh = state.latent_hw[0] if state.latent_hw else h
        win = max(1, state.window * h // lh)
        wh, ww = _largest_divisor_at_most(h, win), _largest_divisor_at_most(w, win)
        if wh == h and ww == w:
            return self.base(attn, residual, None, None, temb, *args, **kwargs)

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        head_dim = key.shape[-1] // heads
        if getattr(attn, "norm_q", None) is not None:
            query = attn.norm_q(query.view(b, -1, heads, head_dim)).view(b, -1, heads * head_dim)
        if getattr(attn, "norm_k", None) is not None:
            key = attn.norm_k(key.view(b, -1, heads, head_dim)).view(b, -1, heads * head_dim)

        offsets = [
            (
                int(torch.randint(0, h, (1,), generator=g)) if h > wh else 0,
                int(torch.randint(0, w, (1,), generator=g)) if w > ww else 0,
            )
            for g in state.generators
        ]
        per_item = [offsets[i % len(offsets)] for i in range(b)]

        def roll(t: torch.Tensor, sign: int) -> torch.Tensor:  # (B, H, W, C), each item by its own offset
            if len(set(per_item)) == 1:
                oy, ox = per_item[0]
                return torch.roll(t, shifts=(sign * oy, sign * ox), dims=(1, 2))
            return torch.stack([torch.roll(t[i], (sign * oy, sign * ox), dims=(0, 1)) for i, (oy, ox) in enumerate(per_item)])

        def to_windows(t: torch.Tensor) -> torch.Tensor:  # (B, HW, heads*d) -> (B*nW, heads, wh*ww, d)
            t = window_partition(roll(t.reshape(b, h, w, -1), -1), wh, ww)
            return t.view(t.shape[0], wh * ww, heads, head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(to_windows(query), to_windows(key), to_windows(value), scale=attn.scale)
        out = out.transpose(1, 2).reshape(out.shape[0], wh * ww, heads * head_dim)
        out = roll(window_merge(out, b, h, w, wh, ww), +1).reshape(b, h * w, -1)
        out = attn.to_out[0](out.to(query.dtype))
        out = attn.to_out[1](out)
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def enable_feature_rolling(model: nn.Module) -> nn.Module:
    """Make `model` (a UNet or VAE) respond to `tiling(...)` contexts. Idempotent; weights are untouched."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = RollingConv2d
    if hasattr(model, "attn_processors") and hasattr(model, "set_attn_processor"):
        processors = {
            name: proc if isinstance(proc, RolledWindowAttnProcessor) else RolledWindowAttnProcessor(proc)
            for name, proc in model.attn_processors.items()
        }
        if processors:
            model.set_attn_processor(processors)
    return model
