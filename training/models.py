"""Model builders for training: the material VAE, the denoising UNet, the LCM student, discriminators, encoders."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from torch import nn

from stablematerials.color_latents import COLOR_CHANNELS
from stablematerials.latents import vae_scale_factor as latent_cell_size
from stablematerials.lora_student import write_lora_student
from stablematerials.material import MODEL_CHANNELS

from .config import DiffusionConfig, LoRAConfig, UNetModelConfig, VAEModelConfig

logger = logging.getLogger(__name__)

spectral_norm = nn.utils.parametrizations.spectral_norm


def build_vae(cfg: VAEModelConfig, sample_size: int) -> AutoencoderKL:
    """A fresh AutoencoderKL with 9 material channels in and out."""
    levels = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=MODEL_CHANNELS,
        out_channels=MODEL_CHANNELS,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=sample_size,
        mid_block_add_attention=cfg.mid_block_attention,
    )


def load_vae(path: str | Path) -> AutoencoderKL:
    """A trained VAE from its folder, or from the `vae/` subfolder of a pipeline folder."""
    path = Path(path)
    if (path / "vae" / "config.json").is_file():
        path = path / "vae"
    if not (path / "config.json").is_file():
        raise ValueError(f"{str(path)!r} is not a VAE folder (no config.json); train one with training.train_vae")
    return AutoencoderKL.from_pretrained(path)


def vae_scale_factor(vae: AutoencoderKL) -> int:
    """Pixels per latent pixel."""
    return latent_cell_size(vae.config)


def build_unet(cfg: UNetModelConfig, latent_channels: int, cross_attention_dim: int, sample_size: int) -> UNet2DConditionModel:
    """A fresh UNet2DConditionModel conditioned on one cross-attention token, over the VAE's `latent_channels` and,
    with `cfg.color_latents`, the three colour channels."""
    channels = latent_channels + (COLOR_CHANNELS if cfg.color_latents else 0)
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention_levels)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention_levels))
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(cfg.block_out_channels),
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn",
        layers_per_block=cfg.layers_per_block,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
        cross_attention_dim=cross_attention_dim,
        addition_embed_type="text" if cfg.text_time_embedding else None,
        addition_embed_type_num_heads=1,  # its attention pooling sees one caption token: heads have nothing to split
        resnet_time_scale_shift="scale_shift" if cfg.scale_shift else "default",
    )


def add_attribute_embedding(unet: UNet2DConditionModel, width: int) -> UNet2DConditionModel:
    """`unet` with a projection class embedding of `width` attribute entries (`stablematerials.attributes`), its
    output layer at zero: the new UNet starts as exactly the old one, which it returns as is if it has one already."""
    if unet.config.get("class_embed_type") == "projection":
        if unet.config.projection_class_embeddings_input_dim != width:
            raise ValueError(f"the UNet takes {unet.config.projection_class_embeddings_input_dim} attribute entries, not {width}")
        return unet
    if unet.config.get("class_embed_type") is not None or unet.config.get("num_class_embeds") is not None:
        raise ValueError(f"the UNet already has a class embedding ({unet.config.class_embed_type}); attributes need their own")
    # as keyword arguments: a config dict's `_use_default_values` would reset the keys it lists
    out = UNet2DConditionModel.from_config(unet.config, class_embed_type="projection", projection_class_embeddings_input_dim=width)
    missing, unexpected = out.load_state_dict(unet.state_dict(), strict=False)
    if unexpected or any(not k.startswith("class_embedding.") for k in missing):
        raise ValueError(f"UNet weights do not carry over: missing {missing}, unexpected {unexpected}")
    nn.init.zeros_(out.class_embedding.linear_2.weight)
    nn.init.zeros_(out.class_embedding.linear_2.bias)
    return out


def load_teacher_pipeline(path: str | Path):
    """A pipeline folder whose `unet/` is a teacher (not a distilled student), to continue training from."""
    from stablematerials.pipeline import StableMaterialsPipeline

    if not (Path(path) / "model_index.json").is_file():
        raise ValueError(f"{str(path)!r} is not a pipeline folder (no model_index.json)")
    pipe = StableMaterialsPipeline.from_pretrained(path, torch_dtype=torch.float32)
    if pipe.is_student:
        raise ValueError(
            f"{str(path)!r} holds only a distilled student UNet (unet/ embeds the guidance scale); training needs the "
            "teacher UNet: use a model folder with both unet/ (teacher) and unet_lcm/ (student)"
        )
    return pipe


def add_lora(unet: UNet2DConditionModel, cfg: LoRAConfig) -> None:
    """Freeze `unet` and give it trainable low-rank adapters on `cfg.target_modules` (Hu et al. 2021).

    Gaussian A and zero B: the adapted UNet starts exactly as the base one.
    """
    from peft import LoraConfig

    unet.requires_grad_(False)
    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha or cfg.rank, target_modules=list(cfg.target_modules), init_lora_weights="gaussian")
    try:
        unet.add_adapter(config)
    except ValueError as e:  # peft: "Target modules ... not found in the base model"
        raise ValueError(f"lora.target_modules {cfg.target_modules} match no layer of the UNet ({e})") from e


def merge_lora(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Fold the adapters into the weights and remove them: a plain UNet with the base model's keys (in place)."""
    if getattr(unet, "peft_config", None):
        unet.fuse_lora()
        unet.unload_lora()
    return unet


def save_lora_student(student: UNet2DConditionModel, folder: Path) -> None:
    """Write a student with low-rank adapters (`add_lora`) as `stablematerials.lora_student` stores it: each
    adapted layer's factors and the guidance projection; the rest is its teacher's."""
    factors, scale = {}, None
    for name, module in student.named_modules():
        if isinstance(getattr(module, "lora_A", None), nn.ModuleDict) and "default" in module.lora_A:
            factors[name] = (module.lora_A["default"].weight, module.lora_B["default"].weight)
            if scale not in (None, module.scaling["default"]):
                raise ValueError(f"adapter {name} is scaled {module.scaling['default']}, the others {scale}: one scale is stored")
            scale = module.scaling["default"]
    if not factors:
        raise ValueError("the student has no low-rank adapters to save")
    whole = {f"time_embedding.cond_proj.{k}": v for k, v in student.time_embedding.cond_proj.state_dict().items()}
    write_lora_student(folder, student, factors, whole, scale)


def build_student(teacher: UNet2DConditionModel, time_cond_proj_dim: int) -> UNet2DConditionModel:
    """The LCM student: the teacher's weights plus a guidance-embedding projection initialised to zero.

    With the new projection at zero the student starts as exactly the teacher (its output ignores w).
    """
    config = dict(teacher.config)
    config["time_cond_proj_dim"] = time_cond_proj_dim
    student = UNet2DConditionModel.from_config(config)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or any(not k.startswith("time_embedding.cond_proj") for k in missing):
        raise ValueError(f"teacher and student UNets differ: missing {missing}, unexpected {unexpected}")
    nn.init.zeros_(student.time_embedding.cond_proj.weight)
    if student.time_embedding.cond_proj.bias is not None:
        nn.init.zeros_(student.time_embedding.cond_proj.bias)
    return student


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """Betas of the schedule whose log-SNR is `alphas_cumprod`'s minus `shift` at every timestep (T,) -> (T,).

    The shifted schedule of simple diffusion (Hoogeboom et al. 2023, arXiv 2301.11093, Sec. 3.1): log SNR'(t) =
    log SNR(t) - shift, i.e. alpha_bar' = sigmoid(logit(alpha_bar) - shift). A zero terminal SNR stays zero (the
    last beta is 1)."""
    ab = alphas_cumprod.double().clamp(0.0, 1.0)
    shifted = torch.sigmoid(torch.logit(ab) - shift)  # logit(0) = -inf -> 0
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1.0 - shifted / previous).clamp(0.0, 1.0)


def build_train_scheduler(cfg: DiffusionConfig) -> DDPMScheduler:
    """The forward-process schedule used for training (shifted by `cfg.logsnr_shift` into `trained_betas`, which the
    saved scheduler configs carry, so samplers load the same schedule)."""
    scheduler = DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        prediction_type=cfg.prediction_type,
        clip_sample=False,
        rescale_betas_zero_snr=cfg.rescale_betas_zero_snr,
    )
    if not cfg.logsnr_shift:
        return scheduler
    betas = shifted_betas(scheduler.alphas_cumprod, cfg.logsnr_shift).tolist()
    return DDPMScheduler.from_config(scheduler.config, trained_betas=betas)


def inference_scheduler(train_scheduler: DDPMScheduler) -> DDIMScheduler:
    """The scheduler saved with the pipeline: DDIM over the same schedule (the pipeline's default sampler).

    A zero-terminal-SNR schedule samples with "trailing" timesteps, so the first step is at t = T where the
    model was trained on pure noise (Lin et al. 2024, Sec. 3.3)."""
    if train_scheduler.config.get("rescale_betas_zero_snr", False):
        return DDIMScheduler.from_config(train_scheduler.config, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing", steps_offset=0)
    return DDIMScheduler.from_config(train_scheduler.config, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def load_text_encoder(path: str) -> tuple[nn.Module, object]:
    """The text encoder and tokenizer: "minilm" (the offline MiniLM-L6 package) or a transformers model folder."""
    from transformers import AutoModel, AutoTokenizer

    if path == "minilm":
        from stablematerials.tiny import minilm_dir

        folder = minilm_dir()
    else:
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"text encoder folder {path!r} does not exist (use 'minilm' or a transformers folder)")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).eval()
    return encoder, tokenizer


def frozen_copy(module: nn.Module) -> nn.Module:
    """A detached copy in eval mode with gradients off (teachers, EMA targets)."""
    out = copy.deepcopy(module).eval()
    out.requires_grad_(False)
    return out


# ----------------------------------------------------------------------------------------------
# Discriminators
# ----------------------------------------------------------------------------------------------


class PatchDiscriminator(nn.Module):
    """A PatchGAN (Isola et al. 2017) with spectral normalisation: (B, C, H, W) -> (B, 1, H', W') logits."""

    def __init__(self, in_channels: int, channels: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(in_channels, channels, 4, 2, 1)), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(1, n_layers):
            c_next = min(channels * 2**i, channels * 8)
            layers += [spectral_norm(nn.Conv2d(c, c_next, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(spectral_norm(nn.Conv2d(c, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProjectionDiscriminator(nn.Module):
    """A patch discriminator conditioned on a caption embedding by projection (Miyato & Koyama 2018).

    logits(x, c) = w . phi(x) + <P c, phi(x)> per patch: the inner product asks "does this patch fit this caption",
    so fakes are judged against images of their own caption, not against the whole image set.
    """

    def __init__(self, in_channels: int, embed_dim: int, channels: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(in_channels, channels, 3, 1, 1)), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(1, n_layers):
            c_next = min(channels * 2**i, channels * 8)
            layers += [spectral_norm(nn.Conv2d(c, c_next, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c = c_next
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Conv2d(c, 1, 1))
        self.embed = spectral_norm(nn.Linear(embed_dim, c, bias=False))

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, C, H', W')
        # The caption's direction only: the pipeline's embedding_scale must not change the logits' scale.
        direction = nn.functional.normalize(embedding.reshape(embedding.shape[0], -1).to(h.dtype), dim=-1)
        proj = self.embed(direction)  # (B, C)
        return self.head(h) + (h * proj[:, :, None, None]).sum(dim=1, keepdim=True)


class AutoencoderStep(nn.Module):
    """The VAE's training forward pass as one module call (so DDP sees it): x -> (reconstruction, mean, logvar)."""

    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        return recon, posterior.mean, posterior.logvar
