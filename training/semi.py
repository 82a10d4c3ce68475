"""Semi-supervised adversarial training with unannotated images (StableMaterials, arXiv 2406.09293, Sec. 3.2).

Unannotated texture images come with a caption and no maps, so they cannot enter the denoising loss. Instead the
denoiser is asked, for their captions, to predict materials that *render* like them, judged by a discriminator:

1. Where the fakes come from. For each image's caption the UNet starts from pure noise at t = T, as sampling does;
   a share of the batch (`trajectory_share`) first takes the model's own deterministic DDIM step (no gradients) to
   t' in [t_min * T, T), where a sampler decides colour and layout, and the prediction made there is judged. The
   images never enter the UNet. Why: a first design noised each image (as a pseudo-material: basecolor = the image,
   flat other maps) to a high t and judged the prediction made from it. But even at t = T - 1 the latent keeps
   sqrt(alpha_bar) = 7 % of the image, and the UNet reads its colours there: the annotated-only benchmark model,
   which never saw marble, predicted marble's mean colour from a noised marble image ((0.67, 0.66, 0.59); the images
   (0.66, 0.62, 0.57)) and a wood brown from pure noise ((0.63, 0.48, 0.34)). So the generator could pass the
   discriminator by copying its input rather than by learning what the caption looks like, and samples, which start
   from noise, did not follow (rusty metal came out brighter than its images). Judging only at t = T would ask for
   a sharp one-step prediction where the denoising loss's optimum is a blurry mean; the own-trajectory share moves
   half of the judged predictions to where a sampler refines.
   Guidance. The fakes are guided as samples are (`guidance_scale`, default 5): the unconditional branch rides
   along in the same UNet call, detached, and the judged prediction is u + w (c - u); the trajectory step is
   guided too. Why: trained with unguided fakes, the held-out colours were right when sampling at guidance 1
   (marble basecolor distance -56 %, both held-out families closer overall) but overshot at guidance 5 (marble came
   out white): the adversarial shift lives in the conditional branch, and guidance multiplies it by w. Guided,
   sampled at guidance 5: marble mean distance -14 % (basecolor -70 %; a second training seed alone: +8 % / -3 %),
   rusty metal -3 % (within that noise); the cost falls on the captions the stream never judges: bricks and wood
   planks +25 %, their colours brighter (benchmarks/results/semi_supervised.md).
2. What is judged. The UNet's predicted clean latent x0 is decoded by the frozen VAE, rendered with the library's
   differentiable GGX renderer under one fixed light, and downsampled to `render_size` (32 px by default). The real
   image is downsampled the same way. Rendering is what makes maps comparable with an RGB photo: basecolor alone
   would ignore relief and gloss, and comparing latents would need images and materials to share a latent space,
   which they do not (the VAE encodes maps). A low resolution keeps the decode-render-discriminate path cheap on a
   CPU (most of the cost is the VAE decoder's backward pass) while still carrying colour, shading and pattern scale.
   `semi.view basecolor` (the default) compares the predicted basecolor with the image instead: for texture photos
   under soft light, which are closer to an albedo than to a point-light render. Measured
   (benchmarks/results/semi_supervised.md): with the render view the adversary bent the maps a render cannot tell
   apart (marble came out metallic: a highlight is as easily made with metal as with low roughness), and held-out
   families got further from their real maps.
   The anchor. Judging the basecolor alone still let the other maps drift (marble basecolor -61 %, but its normal
   and height distances doubled): the decoder's latents mix all maps, so the adversarial gradient that recolours
   a material also moves its relief, gloss and metal, and nothing holds them for captions without maps. So when the
   stream starts, the EMA UNet is frozen as a snapshot, and the maps the discriminator does not see (`anchor_maps`;
   by default all but the basecolor in the basecolor view, none in the render view) are held, by a mean squared
   error on the decoded maps, to what that snapshot predicts for the same noisy latent and caption: the
   adversary may change only what it can judge, and the rest stays what the annotated materials taught.
   Measured (unguided fakes, sampled at guidance 1): marble basecolor -56 % with its other maps near the
   annotated-only model (mean -13 %), rusty metal mean -4 % (benchmarks/results/semi_supervised.md).
3. The discriminator is conditioned on the caption embedding by projection, so a generated material is compared
   with images of its own caption rather than with the image set as a whole. Hinge losses, spectral norm.
4. Cost control: the image batch joins the material batch in the UNet's single forward pass (one DDP call), and
   the adversarial term starts after `semi.start_step` steps, once the denoiser produces materials at all (with
   the anchor, late enough that the snapshot is a useful reference). The snapshot costs one UNet forward and one
   VAE decode without gradients for the (small) image batch; the own-trajectory step one UNet forward without
   gradients for its share of it. The images are only read by the discriminator (no VAE encode).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from stablematerials.guidance import guide_latents
from stablematerials.material import MODEL_SLICES, unpack_model_channels
from stablematerials.render import render_plane

from .losses import ddim_step, predicted_noise, predicted_x0


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased resize of (B, 3, H, W) images to size x size."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def render_for_discriminator(decoded: torch.Tensor, light: torch.Tensor, size: int) -> torch.Tensor:
    """Model-space materials (B, 9, H, W) -> their renders under one fixed point light at size x size, sRGB [0, 1]."""
    lights = light.to(decoded.device, decoded.dtype).view(1, 1, 3).expand(decoded.shape[0], 1, 3)
    return downsample(render_plane(unpack_model_channels(decoded), lights), size)


def discriminator_view(decoded: torch.Tensor, view: str, light: torch.Tensor, size: int) -> torch.Tensor:
    """What the discriminator sees of predicted materials (B, 9, H, W): their render, or their basecolor, at size."""
    if view == "render":
        return render_for_discriminator(decoded, light, size)
    return downsample(unpack_model_channels(decoded)["basecolor"], size)


def anchor_maps_for(view: str, anchor_maps: Sequence[str] | None) -> list[str]:
    """The maps held to the snapshot: `anchor_maps` if given, else those the discriminator's view does not show."""
    if anchor_maps is not None:
        return list(anchor_maps)
    return [m for m in MODEL_SLICES if m != "basecolor"] if view == "basecolor" else []


def anchor_loss(decoded: torch.Tensor, reference: torch.Tensor, maps: Sequence[str]) -> torch.Tensor:
    """Mean squared difference of the named maps between two model-space batches (B, 9, H, W)."""
    idx = [i for m in maps for i in range(MODEL_SLICES[m].start, MODEL_SLICES[m].stop)]
    return F.mse_loss(decoded[:, idx], reference[:, idx])


def guided_output(
    unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, scale: float,
    color_scale_max: float | None = None,
) -> torch.Tensor:
    """The UNet's output for latents (B, C, h, w) at t, guided as a sampler guides it (one call for both branches;
    colour latents at most at `color_scale_max`, `stablematerials.guidance.guide_latents`)."""
    if scale == 1.0:
        return unet(x, t, encoder_hidden_states=cond).sample.float()
    both = unet(torch.cat([x, x]), torch.cat([t, t]), encoder_hidden_states=torch.cat([cond, uncond])).sample.float()
    return guide_latents(*both.chunk(2), scale, color_scale_max)


def own_trajectory_inputs(
    unet: torch.nn.Module, scheduler, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, prediction_type: str,
    share: float, t_min: float = 0.5, uncond: torch.Tensor | None = None, guidance_scale: float = 1.0,
    color_scale_max: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy latents (B, C, h, w) at t -> the same batch with its last round(share * B) items moved one step along
    the model's own (guided) trajectory: its deterministic DDIM step to t' uniform in [t_min * t, t). No gradients."""
    if uncond is None and guidance_scale != 1.0:
        raise ValueError(f"guidance_scale {guidance_scale} needs the unconditional embeddings (uncond)")
    n = round(share * noisy.shape[0])
    if n == 0:
        return noisy, t
    x, t_from = noisy[-n:], t[-n:]
    with torch.no_grad():
        uncond_n = cond[-n:] if uncond is None else uncond[-n:]
        out = guided_output(unet, x, t_from, cond[-n:], uncond_n, guidance_scale, color_scale_max)
        x0 = predicted_x0(scheduler, out, x.float(), t_from, prediction_type)
        eps = predicted_noise(scheduler, out, x.float(), t_from, prediction_type)
        t_to = t_from - 1 - (torch.rand(n, device=t.device) * (1.0 - t_min) * t_from).long()  # in [t_min * t, t)
        x_to = ddim_step(scheduler, x0, eps, t_to).to(noisy.dtype)
    return torch.cat([noisy[:-n], x_to]), torch.cat([t[:-n], t_to])


class FrozenSnapshot:
    """A frozen copy of a module taken once during training and kept in checkpoints (an accelerate custom object:
    `state_dict` is empty until `take`, and loading a non-empty one rebuilds the copy from `template`)."""

    def __init__(self, template: Callable[[], torch.nn.Module]) -> None:
        self.template = template  # returns a module of the right structure (weights are overwritten)
        self.module: torch.nn.Module | None = None

    def take(self, module: torch.nn.Module) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.module is None else self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            self.module = None
            return
        self.take(self.template())
        self.module.load_state_dict(state)
