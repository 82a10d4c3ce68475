"""Typed run configs: a YAML / JSON / TOML file plus command-line overrides, checked against dataclasses.

Each training script declares one dataclass whose fields are either values or nested dataclass sections.
`parse_config(MyConfig, argv)` reads `--config FILE` (optional), then applies overrides given as
`--key=value`, `--key value`, `--section.key=value` or `--section.key value`. Unknown keys, in the file or on the
command line, are a ValueError naming the key; values are converted to the field's type (bool accepts
true/false/1/0/yes/no, lists accept `a,b,c` or a JSON list, optional fields accept `none`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import tomllib

from stablematerials.guidance import check_color_guidance
from stablematerials.io import atomic_write_text
from stablematerials.material import MODEL_SLICES

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (a CLI string or a value read from a file) to the annotated type `tp`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise ValueError(f"config key {key!r} may not be None")
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"config key {key!r}: cannot convert {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"config key {key!r} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ValueError(f"config key {key!r}: {value!r} is not a JSON list ({e})") from e
            else:
                value = [v.strip() for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {key!r} expects a list, got {value!r}")
        item_tp = args[0] if args else str
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"config key {key!r} expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"config key {key!r} expects an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"config key {key!r} expects an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"config key {key!r} expects a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"config key {key!r} expects a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(f"config key {key!r} expects a string, got {value!r}")
        return str(value)
    raise ValueError(f"config key {key!r} has an unsupported type {tp!r}")


def _fields(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def set_key(cfg: Any, dotted: str, value: Any) -> None:
    """Set `section.key` (or `key`) on a config instance, converting the value; unknown keys raise ValueError."""
    parts = dotted.split(".")
    target, prefix = cfg, []
    for part in parts[:-1]:
        fields = _fields(type(target))
        if part not in fields or not _is_section(fields[part]):
            known = ", ".join(k for k, t in fields.items() if _is_section(t))
            raise ValueError(f"unknown config section {'.'.join(prefix + [part])!r} (sections: {known or 'none'})")
        target, prefix = getattr(target, part), prefix + [part]
    fields = _fields(type(target))
    name = parts[-1]
    if name not in fields:
        where = f" in section {'.'.join(prefix)!r}" if prefix else ""
        raise ValueError(f"unknown config key {dotted!r}{where} (known: {', '.join(fields)})")
    if _is_section(fields[name]):
        if not isinstance(value, dict):
            raise ValueError(f"config key {dotted!r} is a section; give its keys ({dotted}.KEY=...)")
        for k, v in value.items():
            set_key(cfg, f"{dotted}.{k}", v)
        return
    setattr(target, name, _coerce(value, fields[name], dotted))


def read_config_file(path: str | Path) -> dict:
    """A config file as a dict: .yaml/.yml, .json or .toml."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ValueError(f"config file {str(path)!r}: use .yaml, .yml, .json or .toml")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"config file {str(path)!r} is not valid: {e}") from e
    except Exception as e:  # yaml.YAMLError without importing yaml at module level
        if type(e).__module__.startswith("yaml"):
            raise ValueError(f"config file {str(path)!r} is not valid YAML: {e}") from e
        raise
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of keys, got {type(data).__name__}")  # noqa: TRY004 - bad user input is a ValueError here
    return data


def _split_argv(argv: list[str]) -> list[tuple[str, str]]:
    """`--a=1 --b 2 --c.d=x` -> [(a, 1), (b, 2), (c.d, x)]."""
    pairs, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}; give options as --key=value or --section.key value")
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ValueError(f"option {arg!r} has no value (write {arg}=VALUE)")
            key, value = body, argv[i + 1]
            i += 2
        pairs.append((key.replace("-", "_"), value))
    return pairs


def parse_config(cls: type[C], argv: list[str]) -> C:
    """Build a config: defaults, then `--config FILE`, then the other command-line overrides in order.
    `-h` / `--help` prints every key with its type, default and reason, and exits."""
    from .config_help import config_help, wants_help

    if wants_help(list(argv)):
        print(config_help(cls), end="")
        raise SystemExit(0)
    pairs = _split_argv(list(argv))
    cfg = cls()
    for key, value in pairs:
        if key == "config":
            for k, v in read_config_file(value).items():
                set_key(cfg, k, v)
    for key, value in pairs:
        if key != "config":
            set_key(cfg, key, value)
    validate(cfg)
    return cfg


def validate(cfg: Any, prefix: str = "") -> None:
    """Run every section's own `check()` (if it has one) so bad values fail before training starts."""
    for name, tp in _fields(type(cfg)).items():
        if _is_section(tp):
            validate(getattr(cfg, name), f"{prefix}{name}.")
    check = getattr(cfg, "check", None)
    if callable(check):
        check()


def config_to_dict(cfg: Any) -> dict:
    """The config as plain data (tuples become lists), ready for JSON."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as JSON (loadable again with --config)."""
    atomic_write_text(path, json.dumps(config_to_dict(cfg), indent=2) + "\n")


def require_positive(section: str, **values: float) -> None:
    """Raise a ValueError naming the first value that is not > 0."""
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{section + '.' if section else ''}{name} must be > 0, got {value!r}")


# ==============================================================================================
# The sections and the three scripts' configs. Every default says why it is what it is.
# ==============================================================================================


@dataclasses.dataclass
class DataConfig:
    """Annotated materials."""

    root: str = "data/procedural"  # where `stablematerials dataset` writes by default
    split: str = "train"  # ROOT/<split>/ in the procedural layout; ignored for a plain folder of materials
    families: list[str] = dataclasses.field(default_factory=list)  # empty: all families (the benchmark picks some)
    exclude_families: list[str] = dataclasses.field(default_factory=list)  # held-out families for the benchmark
    resolution: int = 128  # materials are resized once to this on load: cheap crops on a CPU, and a fixed texel scale
    crop_size: int = 64  # training crop; the models are convolutional and run at any size later
    wrap: bool = True  # crops wrap around the edges: every material is tileable, so wrapped crops are real samples
    flips: bool = True  # mirrors (normals turned accordingly): 2x more looks for free
    rotations: bool = True  # quarter turns (normals turned accordingly): 4x more looks for free
    cache: bool = True  # keep decoded materials in RAM (float16): PNG decoding would dominate a CPU step
    num_workers: int = 0  # 0 decodes in the training process: with 2 cores a worker only steals compute
    # A folder of latent shards (training.encode_latents): the UNet then trains on wrapped crop_size crops of
    # pre-encoded materials instead of encoding material folders every step (root, resolution, flips, rotations and
    # cache do not apply). None: encode the material folders under root.
    latents: str | None = None

    def check(self) -> None:
        require_positive("data", crop_size=self.crop_size)
        if self.resolution and self.resolution < self.crop_size and not self.latents:  # latents are cached at their size
            raise ValueError(f"data.resolution ({self.resolution}) must be 0 or >= data.crop_size ({self.crop_size})")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")


@dataclasses.dataclass
class TrainConfig:
    """The loop: steps, optimiser, precision, checkpoints and logging."""

    max_steps: int = 2000  # optimiser steps; small enough for a CPU trial run
    batch_size: int = 8  # per process and micro-batch
    gradient_accumulation_steps: int = 1  # raise to emulate a bigger batch at the same memory
    lr: float = 1e-4  # AdamW, the usual rate for diffusers models at this batch size
    weight_decay: float = 1e-2  # AdamW default in diffusers' example scripts
    adam_beta1: float = 0.9  # AdamW default
    adam_beta2: float = 0.999  # AdamW default
    lr_schedule: Literal["constant", "constant_with_warmup", "cosine", "linear"] = "constant_with_warmup"  # simple, robust
    warmup_steps: int = 100  # a short warm-up keeps the first Adam steps from blowing up the fresh model
    max_grad_norm: float = 1.0  # clip: the usual guard against rare large gradients
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # fp32 on CPU (bf16 autocast is slower there); bf16 on GPUs
    cpu: bool = False  # force the CPU even where a GPU exists (accelerate launch --cpu does the same)
    checkpoint_every: int = 500  # steps between checkpoints: about 5-10 minutes of CPU work at small scale
    keep_checkpoints: int = 2  # the last K complete checkpoints stay; older ones are deleted
    log_every: int = 10  # steps between progress lines
    tensorboard: bool = False  # write TensorBoard logs to OUTPUT/logs
    sample_every: int = 0  # steps between sample materials; 0: only at the end (sampling is slow on a CPU)
    debug_log_samples: bool = False  # each process appends the names it trains on to OUTPUT/debug/rank<r>.txt
    stop_at: int = 0  # end after this step as if interrupted (no final model): split a run into sessions; 0: off

    def check(self) -> None:
        require_positive(
            "train", max_steps=self.max_steps, batch_size=self.batch_size, lr=self.lr,
            gradient_accumulation_steps=self.gradient_accumulation_steps, checkpoint_every=self.checkpoint_every,
            keep_checkpoints=self.keep_checkpoints, log_every=self.log_every,
        )  # fmt: skip
        if self.sample_every < 0 or self.warmup_steps < 0:
            raise ValueError("train.sample_every and train.warmup_steps must be >= 0")


@dataclasses.dataclass
class VAEModelConfig:
    """The material autoencoder (diffusers AutoencoderKL, 9 channels in and out)."""

    block_out_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 64])  # 3 levels: factor 4
    layers_per_block: int = 1  # one ResNet per level: a CPU-sized VAE (the published one is far larger)
    latent_channels: int = 12  # compact latents (the published VAE has 18): fewer would blur the normal detail
    norm_num_groups: int = 16  # divides every width above
    latent_norm: Literal["per_channel", "global"] = "per_channel"  # per-channel mean/std: material latent channels differ in offset and scale (stablematerials/latents.py)
    # Self-attention in the middle block (diffusers' default). Trained on small crops, it sees a few hundred tokens and
    # then thousands at 512 px: off keeps the autoencoder purely convolutional, so a crop and a whole material are
    # coded alike (and a 512 px decode skips a 4096-token attention).
    mid_block_attention: bool = True

    def check(self) -> None:
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"model.block_out_channels {c} is not divisible by norm_num_groups {self.norm_num_groups}")
        require_positive("model", latent_channels=self.latent_channels, layers_per_block=self.layers_per_block)


@dataclasses.dataclass
class VAELossConfig:
    """Reconstruction per map, KL, rendering and (optional) adversarial terms."""

    basecolor: float = 1.0  # L1 weights per map: all maps matter equally by default
    normal: float = 1.0
    height: float = 1.0
    roughness: float = 1.0
    metallic: float = 1.0
    kl: float = 1e-5  # per latent element: about 1e-4 of the reconstruction term, a near-deterministic latent of bounded scale
    render: float = 0.5  # L1 between renders under random lights: ties the maps together as a renderer sees them
    render_lights: int = 2  # random point lights per sample for the rendering loss
    # L1 between the basecolors averaged over color_pool x color_pool cells: the mean colour of every region. The
    # per-pixel L1 lets a small autoencoder trade a shifted hue for sharper detail (default model v2 turned blue
    # fabric brown); this term prices the shift directly.
    color: float = 0.0
    color_pool: int = 16  # cell size in pixels: larger than the texture's grain, smaller than a brick or a tile
    disc: float = 0.0  # patch-discriminator weight; 0 (off) for short CPU runs, 0.1 once reconstructions are good
    disc_start: int = 1000  # steps of plain reconstruction before the discriminator joins in
    disc_lr: float = 1e-4  # the discriminator's AdamW rate

    def check(self) -> None:
        if min(self.basecolor, self.normal, self.height, self.roughness, self.metallic, self.kl, self.render, self.disc, self.color) < 0:
            raise ValueError("loss weights must be >= 0")
        require_positive("loss", render_lights=self.render_lights, color_pool=self.color_pool)


@dataclasses.dataclass
class VAESampleConfig:
    """Reconstructions written at the end (and every train.sample_every steps)."""

    count: int = 4  # materials of the validation split (first in name order), reconstructed at full resolution
    split: str = "val"  # falls back to the training split when absent


@dataclasses.dataclass
class VAEConfig:
    """`python -m training.train_vae`."""

    output_dir: str = "runs/vae"  # checkpoints, logs, samples, the resolved config and the final `vae/` folder
    seed: int = 0  # model init, data order, noise: one seed reproduces a run
    resume: str | None = None  # "latest" or a checkpoint folder
    # A trained VAE folder to continue from (its architecture replaces model.*, which must stay at the defaults).
    init_from: str | None = None
    # Train the decoder only (with init_from): the encoder, and so every latent made with it (a latent cache, a
    # trained UNet), stays valid, and the latent normalisation is kept. For a decoder that renders colour better.
    decoder_only: bool = False
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: VAEModelConfig = dataclasses.field(default_factory=VAEModelConfig)
    loss: VAELossConfig = dataclasses.field(default_factory=VAELossConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(lr=2e-4))  # AE at small batch
    sample: VAESampleConfig = dataclasses.field(default_factory=VAESampleConfig)

    def check(self) -> None:
        if self.decoder_only and not self.init_from:
            raise ValueError("decoder_only needs init_from: a trained VAE whose encoder stays fixed")
        if self.init_from and self.model != VAEModelConfig():
            raise ValueError(f"model.* is set, but init_from ({self.init_from}) supplies the architecture; leave model.* out")


@dataclasses.dataclass
class UNetModelConfig:
    """The latent denoiser (diffusers UNet2DConditionModel, one cross-attention token)."""

    block_out_channels: list[int] = dataclasses.field(default_factory=lambda: [96, 160, 224])  # 16.6M params with 12 latent channels: the field notes put ~0.3 s a step at 16x16 latents
    layers_per_block: int = 1  # depth costs CPU time linearly; width is better spent at this size
    attention_levels: list[bool] = dataclasses.field(default_factory=lambda: [False, True, True])  # no attention at full res: it costs the most and does the least for local texture
    attention_head_dim: int = 32  # heads of 32 channels, as in common small UNets
    norm_num_groups: int = 32  # GroupNorm default; divides every width above
    # Also add the caption embedding to the timestep embedding (diffusers' addition_embed_type "text"), so every
    # ResNet block is conditioned, not only the attention levels. With one caption token, cross-attention can only
    # add a caption-dependent bias at the levels that have attention (the softmax over one key is 1).
    text_time_embedding: bool = False
    # Condition every ResNet by scale and shift after its GroupNorm, h * (1 + scale) + shift (AdaGN, Dhariwal & Nichol
    # 2021, arXiv 2105.05233; diffusers' resnet_time_scale_shift "scale_shift"), instead of adding the time (+ caption,
    # + attribute) embedding before it. With one caption token everything else the caption does is additive.
    scale_shift: bool = False
    # Three more latent channels: the basecolor's mean over each latent cell (stablematerials.color_latents), which
    # the decoded basecolor's low frequencies are taken from. For a VAE that keeps detail but loses colour (v3's).
    color_latents: bool = False

    def check(self) -> None:
        if len(self.attention_levels) != len(self.block_out_channels):
            raise ValueError(
                f"model.attention_levels has {len(self.attention_levels)} entries, block_out_channels "
                f"{len(self.block_out_channels)}"
            )
        for c in self.block_out_channels:
            if c % self.norm_num_groups or c % self.attention_head_dim:
                raise ValueError(
                    f"model.block_out_channels {c} must be divisible by norm_num_groups ({self.norm_num_groups}) and "
                    f"attention_head_dim ({self.attention_head_dim})"
                )


@dataclasses.dataclass
class DiffusionConfig:
    """Noise schedule, objective, guidance dropout and EMA."""

    num_train_timesteps: int = 1000  # the standard DDPM discretisation (the inference schedulers assume it)
    beta_schedule: str = "scaled_linear"  # Stable Diffusion's schedule, as the published StableMaterials
    beta_start: float = 0.00085  # Stable Diffusion's values
    beta_end: float = 0.012
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon"  # compact latents make epsilon fine (field notes)
    # Rescale the schedule so the last step is pure noise (Lin et al. 2024, arXiv 2305.08891). Without it the
    # scaled-linear schedule keeps 6.8 % of the signal at t = T: training images' mean colour survives into x_T, the
    # model learns to read it there, and a sampler starting from zero-mean noise gets the data set's mean colour
    # (brown here) whatever the prompt. Needs v_prediction (epsilon is undefined at zero SNR); samplers then use
    # "trailing" timesteps, which start at t = T.
    rescale_betas_zero_snr: bool = False
    # Shift the schedule's log-SNR down by this much at every step (simple diffusion, Hoogeboom et al. 2023), so more
    # of the steps fall where a layout is still undecided. Measured on the v3 latent cache (27 channels, 256 px
    # crops): the channels move together (top principal component 14x a channel's power), so an 8x8-cell layout is
    # still open (effective SNR < 1) only in the noisiest 17 % of the timesteps and the crop's mean colour only in the
    # noisiest 2.4 %; a shift of 2 makes that 33 % and 5.8 % (default_model_v3_diagnosis.md, section 10). 0: as is.
    logsnr_shift: float = 0.0
    snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al. 2023, arXiv 2303.09556); 0 turns it off
    # Min-SNR on snr + 1 instead of snr: the x0 error's weight is min(snr + 1, gamma), so the nearly clean steps
    # (texture detail, whose v-MSE weights the x0 error by snr + 1, in the thousands) are capped while the noisiest
    # ones keep weight 1 down to t = T. Plain Min-SNR gives t = T (zero terminal SNR), where colour and layout are
    # decided, weight 0.
    snr_plus_one: bool = False
    # The colour latents' weight in the denoising loss (models with colour latents; 1: the plain mean over channels,
    # as lcm.color_weight). At 1 the v3 teacher left noise in them: its x0 estimate at t = 10 was 0.076 off in colour
    # (0.058 in the VAE channels), and its basecolors carry pastel speckle (benchmarks/material_eval/speckle.py).
    color_weight: float = 1.0
    cond_dropout: float = 0.1  # share of empty prompts, for classifier-free guidance (Ho & Salimans 2022)
    # With `attributes`: a further share of prompts keep their caption but lose their attributes, so the model also
    # works without them (an image prompt far from every anchor, a model folder without an attribute bank).
    attribute_dropout: float = 0.1
    # With `attributes`: a share of prompts lose their caption but keep their attributes. The captions name the
    # family and colour too, so without this the attributes are redundant in training and the UNet learns to follow
    # them only weakly (v4a, 2500 steps: a forced "black" moved black marble from 0.93 to 0.71; session 15).
    caption_dropout: float = 0.0
    ema_decay: float = 0.999  # EMA of the weights, saved as the final UNet; ~1000-step horizon suits short runs
    ema_warmup: bool = True  # ramp the EMA decay up so the first steps' weights fade quickly

    def check(self) -> None:
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(f"diffusion.cond_dropout must be in [0, 1), got {self.cond_dropout}")
        for name in ("attribute_dropout", "caption_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"diffusion.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.attribute_dropout + self.caption_dropout > 1:
            raise ValueError(f"diffusion.attribute_dropout + caption_dropout must be at most 1, got "
                             f"{self.attribute_dropout} + {self.caption_dropout}")  # fmt: skip
        if isinstance(self.color_weight, bool) or not (math.isfinite(self.color_weight) and self.color_weight > 0):
            raise ValueError(f"diffusion.color_weight must be a number > 0, got {self.color_weight!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"diffusion.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not math.isfinite(self.logsnr_shift):
            raise ValueError(f"diffusion.logsnr_shift must be a finite number, got {self.logsnr_shift!r}")
        if self.rescale_betas_zero_snr and self.prediction_type == "epsilon":
            raise ValueError("diffusion.rescale_betas_zero_snr needs prediction_type v_prediction or sample (epsilon is undefined at t = T)")


@dataclasses.dataclass
class SemiConfig:
    """Semi-supervised stream: captioned RGB images without maps, and an adversarial loss (see train_ldm)."""

    images: str | None = None  # image folder / parquet / tar shards; None turns the stream off
    image_column: str = "image"  # parquet column with the image bytes
    caption_column: str = "caption"  # parquet column with the caption
    resolution: int = 0  # images are resized so the shorter side is this before cropping; 0: data.resolution (same texel scale as the materials)
    batch_size: int = 4  # images per step and process: the adversarial term needs fewer samples than the denoiser
    # Adversarial weight against the denoising loss (about 0.1 of its size at the start). Measured with guided fakes:
    # 0.01 kept neither the held-out gain nor the annotated families (benchmarks/results/semi_supervised.md).
    weight: float = 0.05
    start_step: int = 200  # the denoiser learns plain materials first; the adversarial pull starts after this
    t_min: float = 0.5  # own-trajectory fakes are judged at t in [t_min, 1) * T: where colour and layout are decided
    disc_lr: float = 2e-4  # discriminator AdamW rate (TTUR: faster than the generator, Heusel et al. 2017)
    disc_channels: int = 32  # width of the discriminator's first layer
    render_size: int = 32  # the discriminator sees renders at this size: colour, shading, pattern scale, at low cost
    # What the discriminator compares with the image: "basecolor" (the predicted basecolor; for diffusely lit texture
    # photos, which are closest to an albedo) or "render" (the predicted material rendered under `light`; for images
    # that are renders under that light). See training/semi.py for what each one constrains.
    view: Literal["render", "basecolor"] = "basecolor"
    # Maps held to a frozen snapshot of the model taken at start_step (see training/semi.py). None: the maps the view
    # does not show (normal, height, roughness, metallic for "basecolor"; none for "render"); [] turns it off.
    anchor_maps: list[str] | None = None
    anchor_weight: float = 1.0  # against the denoising loss (~0.1-0.2 late in training): drift is costly, colour is free
    light: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 2.0])  # fixed point light above the centre
    # Share of the fakes judged one step further along the model's own sampling trajectory (training/semi.py):
    # sampling refines latents the model made itself. 0: all judged at t = T, straight from pure noise.
    trajectory_share: float = 0.5
    # Fakes are guided as samples are: u + w (c - u) (training/semi.py). Measured: trained unguided, the held-out
    # colours were right at guidance 1 but overshot at 5 (the adversarial shift lives in the conditional branch and
    # guidance multiplies it); guided, both held-out families got closer at 5. 5: the guidance materials are usually
    # sampled at; 1: unguided.
    guidance_scale: float = 5.0
    # What conditions each image: "caption" (its caption; a folder without captions.jsonl: its file name), or
    # "image": its own embedding by an image encoder, as an image prompt would be (for images nobody captioned).
    # The encoder: `image_encoder` (a folder with vision_encoder/ and processor/), else init_from's.
    condition: Literal["caption", "image"] = "caption"
    image_encoder: str | None = None

    def check(self) -> None:
        if not 0.0 <= self.t_min < 1.0:
            raise ValueError(f"semi.t_min must be in [0, 1), got {self.t_min}")
        if len(self.light) != 3:
            raise ValueError(f"semi.light must have 3 numbers (x, y, z), got {self.light}")
        require_positive("semi", batch_size=self.batch_size, render_size=self.render_size, disc_channels=self.disc_channels)
        unknown = sorted(set(self.anchor_maps or ()) - set(MODEL_SLICES))
        if unknown:
            raise ValueError(f"semi.anchor_maps: unknown map(s) {unknown}; choose from {list(MODEL_SLICES)}")
        if self.anchor_weight < 0:
            raise ValueError(f"semi.anchor_weight must be >= 0, got {self.anchor_weight}")
        if self.guidance_scale < 1.0:
            raise ValueError(f"semi.guidance_scale must be >= 1, got {self.guidance_scale}")
        if not 0.0 <= self.trajectory_share <= 1.0:
            raise ValueError(f"semi.trajectory_share must be in [0, 1], got {self.trajectory_share}")


@dataclasses.dataclass
class LoRAConfig:
    """Low-rank adapters on the UNet (Hu et al. 2021, arXiv 2106.09685) instead of training every weight."""

    rank: int = 0  # 0: train every weight (training from scratch); 4-16 to fine-tune on a few materials
    alpha: float = 0.0  # adapter scale alpha / rank; 0 means alpha = rank (scale 1), the usual choice
    target_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]
    )  # attention (what goes with the caption) and the ResNet convolutions (the texture itself)

    def check(self) -> None:
        if self.rank < 0 or self.alpha < 0:
            raise ValueError(f"lora.rank and lora.alpha must be >= 0, got {self.rank} and {self.alpha}")
        if self.rank and not self.target_modules:
            raise ValueError("lora.target_modules is empty: name the UNet layers to adapt")


@dataclasses.dataclass
class SampleConfig:
    """Sample materials generated at fixed seeds at the end (and every train.sample_every steps)."""

    prompts: list[str] = dataclasses.field(default_factory=list)  # empty: the first captions of the validation split
    count: int = 4  # how many prompts when taken from the data
    seed: int = 1234  # fixed, so samples from different steps are comparable
    steps: int = 25  # DDIM steps for teacher samples (students use 4)
    guidance_scale: float = 5.0  # moderate guidance for a small model
    size: int = 0  # pixels; 0: the training crop size
    tileable: bool = True  # seamless samples (features rolling), as the materials are meant to be used


@dataclasses.dataclass
class LDMConfig:
    """`python -m training.train_ldm`."""

    output_dir: str = "runs/ldm"  # checkpoints, logs, samples, the resolved config and the final `model/` pipeline
    seed: int = 0
    resume: str | None = None  # "latest" or a checkpoint folder
    vae: str = "runs/vae/vae"  # a trained VAE folder (train_vae's OUTPUT/vae) or a pipeline folder with vae/
    text_encoder: str = "minilm"  # "minilm" (the offline MiniLM-L6 package, 384-d) or a transformers model folder
    # A teacher pipeline folder to continue from: its VAE, text encoder, UNet and noise schedule are used, and the
    # keys above that they replace (vae, text_encoder, model.*, the diffusion schedule) must stay at their defaults.
    init_from: str | None = None
    # Also condition on each material's family and mean colour (stablematerials/attributes.py): a projection class
    # embedding over the procedural families, added to the UNet (zero-initialised when continuing from init_from, so
    # the continued model starts as its base). The sampler takes them from the prompt's nearest caption anchors.
    attributes: bool = False
    # Prompt embeddings are multiplied by this before the UNet (saved with the pipeline). 0: sqrt(embedding dim),
    # which gives unit-norm sentence embeddings unit variance per entry: at norm 1 the cross-attention's output
    # moves ~sqrt(D) times less per Adam step, so the caption is learned that much more slowly.
    embedding_scale: float = 0.0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: UNetModelConfig = dataclasses.field(default_factory=UNetModelConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    lora: LoRAConfig = dataclasses.field(default_factory=LoRAConfig)
    semi: SemiConfig = dataclasses.field(default_factory=SemiConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(batch_size=16, lr=2e-4))  # small UNet, small batch
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)

    def check(self) -> None:
        if self.embedding_scale < 0:
            raise ValueError(f"embedding_scale must be >= 0 (0: sqrt of the embedding size), got {self.embedding_scale}")
        if not self.init_from:
            return
        default = LDMConfig()
        replaced = {"vae": (self.vae, default.vae), "text_encoder": (self.text_encoder, default.text_encoder),
                    "model": (self.model, default.model), "embedding_scale": (self.embedding_scale, 0.0)}  # fmt: skip
        for key in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type", "rescale_betas_zero_snr",
                    "logsnr_shift"):
            replaced[f"diffusion.{key}"] = (getattr(self.diffusion, key), getattr(default.diffusion, key))
        for key, (value, default_value) in replaced.items():
            if value != default_value:
                raise ValueError(f"{key} is set, but init_from ({self.init_from}) supplies it; leave {key} out")


@dataclasses.dataclass
class LatentCacheConfig:
    """`python -m training.encode_latents`: procedural materials encoded once by a trained VAE, for train_ldm."""

    output_dir: str = "runs/latents"  # shards of latents (safetensors) with their captions; train_ldm --data.latents
    vae: str = "runs/vae/vae"  # the trained VAE folder
    n: int = 6000  # materials: seeds seed_start.. in the training split only (val/test seeds stay unseen)
    size: int = 512  # pixels: the scale the model generates at by default, so the UNet learns layouts at that scale
    seed_start: int = 100_000  # far from the seeds of `stablematerials dataset` runs (0..), so VAE data and UNet data differ
    families: list[str] = dataclasses.field(default_factory=list)  # empty: all 19 families, in turn
    captions: int = 3  # caption variants per material (same parameters, other sentence shapes): wording generalises
    wrap_margin: int = 32  # pixels wrapped around each side before encoding, cropped after: latents that tile
    shard_size: int = 200  # materials per shard file; a finished shard is never redone (the job resumes)
    batch_size: int = 4  # materials encoded together
    workers: int = 1  # processes generating materials while this one encodes; 0: generate here too (no start-up cost)

    def check(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        require_positive("", n=self.n, size=self.size, captions=self.captions, shard_size=self.shard_size, batch_size=self.batch_size)
        if self.size % 8 or self.wrap_margin % 8 or self.wrap_margin < 0:
            raise ValueError(f"size ({self.size}) and wrap_margin ({self.wrap_margin}) must be multiples of 8")


@dataclasses.dataclass
class LCMSettings:
    """Latent consistency distillation (Luo et al. 2023, arXiv 2310.04378)."""

    num_ddim_timesteps: int = 50  # the teacher's solver grid (skip of T/50 steps), as in the LCM paper
    w_min: float = 2.0  # guidance weights w (scale w + 1) drawn in [w_min, w_max] and embedded in the student
    w_max: float = 8.0  # covers the guidance scales people use with the teacher (3 to 9)
    time_cond_proj_dim: int = 256  # guidance-embedding size, as the published unet_lcm
    loss_type: Literal["l2", "huber"] = "huber"  # pseudo-Huber, the LCM default: robust to the teacher's outliers
    huber_c: float = 0.001  # LCM's value
    # The colour latents' weight in the consistency loss (models with colour latents; 1: the plain mean over channels).
    # They are 3 of 27 channels, so an error in them is 1/9 of the loss: v3's student learned them loosely and
    # speckles its basecolors with per-cell colour noise that its teacher does not make.
    color_weight: float = 1.0
    ema_decay: float = 0.95  # the target network's EMA, LCM's value
    timestep_scaling: float = 10.0  # boundary-condition scaling of the consistency parametrisation (LCM)
    # The teacher's colour latents guided at most at this scale (stablematerials.guidance.guide_latents), saved with
    # the model, so its teacher samples as its student learned; None: the teacher pipeline's own setting.
    color_guidance_max: float | None = None
    # A teacher that takes attributes (stablematerials/attributes.py): the share of items distilled without them.
    attribute_dropout: float = 0.1
    # 0: the student is a whole copy of the teacher (as the published unet_lcm). > 0: low-rank adapters of this rank
    # on the teacher's attention and ResNet convolutions, plus the guidance projection (LCM-LoRA, Luo et al. 2023,
    # arXiv 2311.05556), saved as their factors (stablematerials/lora_student.py): a few MB beside a larger teacher.
    lora_rank: int = 0

    def check(self) -> None:
        if self.lora_rank < 0:
            raise ValueError(f"lcm.lora_rank must be >= 0 (0: a whole student), got {self.lora_rank}")
        # the teacher's colour latents are checked when it loads; here only the number
        if not 0.0 <= self.attribute_dropout < 1.0:
            raise ValueError(f"lcm.attribute_dropout must be in [0, 1), got {self.attribute_dropout}")
        check_color_guidance(self.color_guidance_max, color_latents=True, name="lcm.color_guidance_max")
        if not (isinstance(self.color_weight, (int, float)) and not isinstance(self.color_weight, bool) and self.color_weight > 0):
            raise ValueError(f"lcm.color_weight must be a number > 0, got {self.color_weight!r}")
        if not 0 <= self.w_min <= self.w_max:
            raise ValueError(f"lcm.w_min ({self.w_min}) must be in [0, lcm.w_max ({self.w_max})]")
        require_positive("lcm", num_ddim_timesteps=self.num_ddim_timesteps, time_cond_proj_dim=self.time_cond_proj_dim)


@dataclasses.dataclass
class LCMConfig:
    """`python -m training.distill_lcm`."""

    output_dir: str = "runs/lcm"  # checkpoints, logs, samples, config and the final pipeline with unet_lcm/
    seed: int = 0
    resume: str | None = None
    teacher: str = "runs/ldm/model"  # a pipeline folder (train_ldm's OUTPUT/model)
    init_student: str | None = None  # a pipeline folder with unet_lcm/: start from that student (fine-tuning), not from the teacher
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    lcm: LCMSettings = dataclasses.field(default_factory=LCMSettings)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(max_steps=1000, batch_size=16, lr=1e-4, warmup_steps=50)
    )  # distillation converges in far fewer steps than training
    sample: SampleConfig = dataclasses.field(default_factory=lambda: SampleConfig(steps=4))


@dataclasses.dataclass
class FinetuneDiffusionConfig:
    """The denoising-loss settings a fine-tuning run may change (the noise schedule is the base model's)."""

    cond_dropout: float = 0.1  # keeps the unconditional prediction trained, so guidance still works
    snr_gamma: float = 5.0  # Min-SNR weighting, as in training
    ema_decay: float = 0.99  # a ~100-step EMA horizon: fine-tuning runs are a few hundred steps

    def check(self) -> None:
        DiffusionConfig(cond_dropout=self.cond_dropout, ema_decay=self.ema_decay).check()


@dataclasses.dataclass
class DistillStageConfig:
    """Re-distilling the base model's student from the fine-tuned teacher (skipped when the base has none)."""

    max_steps: int = 200  # the student starts as the base student and only follows the teacher's change; 0: no student
    lr: float = 5e-5  # half the from-scratch distillation rate: a small correction of a trained student
    lcm: LCMSettings = dataclasses.field(default_factory=LCMSettings)

    def check(self) -> None:
        if self.max_steps < 0:
            raise ValueError(f"distill.max_steps must be >= 0, got {self.max_steps}")
        require_positive("distill", lr=self.lr)


@dataclasses.dataclass
class FinetuneConfig:
    """`python -m training.finetune`: adapt a trained model to your own materials."""

    output_dir: str = "runs/finetune"  # teacher/ and student/ runs, and the final model/ folder
    seed: int = 0
    resume: str | None = None  # "latest": each stage continues from its own last checkpoint
    model: str = ""  # the base pipeline folder (teacher unet/, optional student unet_lcm/); "": the default model
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(root="", split="")
    )  # root: a folder of your material folders (MatSynth, ambientCG, Poly Haven or plain), captions.jsonl optional
    lora: LoRAConfig = dataclasses.field(default_factory=lambda: LoRAConfig(rank=8))  # few materials: adapters overfit less than all 16M weights
    diffusion: FinetuneDiffusionConfig = dataclasses.field(default_factory=FinetuneDiffusionConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(max_steps=400, batch_size=8, lr=1e-4, warmup_steps=20, checkpoint_every=100)
    )  # the teacher stage: ~3 minutes on 2 CPU cores with the default model; 1e-4 is the usual LoRA rate
    distill: DistillStageConfig = dataclasses.field(default_factory=DistillStageConfig)
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)

    def check(self) -> None:
        if not self.data.root:
            raise ValueError("data.root is not set: give the folder of your materials (--data.root PATH)")
        if self.resume not in (None, "latest"):
            raise ValueError(f"resume must be 'latest' or none for fine-tuning (each stage has its own checkpoints), got {self.resume!r}")
