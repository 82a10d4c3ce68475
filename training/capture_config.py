"""The typed config of `python -m training.train_capture` (photo -> maps), in the style of training/config.py.

Parsing, overrides (`--section.key=value`) and the shared `TrainConfig` come from training.config; every default
here says why it is what it is.
"""

from __future__ import annotations

import dataclasses

from .config import TrainConfig, require_positive


@dataclasses.dataclass
class CaptureDataConfig:
    """Procedural materials generated on the fly, cropped into random views."""

    families: list[str] = dataclasses.field(default_factory=list)  # empty: every procedural family not excluded
    # Held out of training entirely, to measure generalisation (benchmarks/capture.py): the two families the
    # project's semi-supervised benchmark holds out too, one non-metal (smooth veined stone) and one partly metallic.
    exclude_families: list[str] = dataclasses.field(default_factory=lambda: ["marble", "rusty_metal"])
    material_size: int = 256  # ~20 ms per material on one core; views zoom between half and twice this
    crop_size: int = 128  # training views; the network is convolutional and runs at any size later
    scale_min: float = 0.5  # material texels per photo pixel: 0.5 = a 2x close-up ...
    scale_max: float = 2.0  # ... 2 = the whole 256 px material in a 128 px view (texture scale varies in photos)
    perspective: float = 0.06  # corner jitter of the view's homography (fraction of its side): slight keystone
    pool_size: int = 256  # materials kept at once; views of them differ in crop, zoom, turn and light
    refresh_steps: int = 128  # each pooled material is replaced after this many steps: 2 new materials a step, each seen ~8 times

    def check(self) -> None:
        require_positive("data", material_size=self.material_size, crop_size=self.crop_size, pool_size=self.pool_size,
                         refresh_steps=self.refresh_steps, scale_min=self.scale_min)  # fmt: skip
        if self.material_size % 8:
            raise ValueError(f"data.material_size must be a multiple of 8, got {self.material_size}")
        if self.scale_max < self.scale_min:
            raise ValueError(f"data.scale_max ({self.scale_max}) must be >= data.scale_min ({self.scale_min})")
        if not 0.0 <= self.perspective < 0.25:
            raise ValueError(f"data.perspective must be in [0, 0.25), got {self.perspective}")


@dataclasses.dataclass
class PhotoConfig:
    """How a synthetic photo is lit and degraded (training/capture_data.py)."""

    max_key_lights: int = 3  # 1-3 point or directional lights (several at once)
    directional_share: float = 0.5  # key lights that are far away (directional) instead of near point lights
    flash_share: float = 0.15  # photos lit by a flash next to the lens (a common way to shoot textures)
    fill_share: float = 0.5  # photos with three weak far fill lights around the surface (a soft environment)
    ambient_max: float = 0.35  # uniform environment radiance relative to the key light's irradiance (metals need it)
    exposure_min: float = 0.08  # auto-exposure brings the mean linear luminance to a value in this range ...
    exposure_max: float = 0.35  # ... (0.3-0.63 in sRGB): under- to over-exposed
    white_balance: float = 0.06  # std of the log gain per colour channel (camera white balance off)
    light_tint: float = 0.15  # warm/cool tint of each light (red and blue shifted in opposite directions)
    noise: float = 0.02  # max shot-noise scale (std = noise * sqrt(linear value)) plus up to noise / 2 read noise
    blur_share: float = 0.3  # photos slightly out of focus (Gaussian, sigma 0.3-0.8 px)
    jpeg_share: float = 0.5  # photos saved as JPEG ...
    jpeg_quality_min: int = 30  # ... with quality between this and 95

    def check(self) -> None:
        require_positive("photo", max_key_lights=self.max_key_lights, exposure_min=self.exposure_min)
        for name in ("directional_share", "flash_share", "fill_share", "blur_share", "jpeg_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"photo.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.exposure_max < self.exposure_min:
            raise ValueError("photo.exposure_max must be >= photo.exposure_min")
        if not 1 <= self.jpeg_quality_min <= 95:
            raise ValueError(f"photo.jpeg_quality_min must be in [1, 95], got {self.jpeg_quality_min}")


@dataclasses.dataclass
class CaptureModelConfig:
    """The predictor: a diffusers UNet2DModel without attention on pixel-unshuffled photos."""

    # 3.45M parameters (+0.6M mid block), about 48 GFLOP for a 512 px photo: within the 2 s budget on 2 cores at the
    # 50-80 GFLOP/s that small-channel convolutions reach here (field notes). Four levels at patch 2 reach 1/16
    # of the photo's resolution, enough context to tell a light gradient from albedo.
    block_out_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128, 128])
    layers_per_block: int = 1  # depth costs CPU time linearly
    patch_size: int = 2  # pixel unshuffle: the full-resolution level costs a quarter (see stablematerials/capture.py)
    mid_block: bool = True  # two more ResNets at the coarsest level: the widest receptive field for 1 % of the cost
    norm_num_groups: int = 8  # divides every width above

    def check(self) -> None:
        require_positive("model", layers_per_block=self.layers_per_block, patch_size=self.patch_size)
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"model.block_out_channels {c} is not divisible by norm_num_groups {self.norm_num_groups}")


@dataclasses.dataclass
class CaptureLossConfig:
    """Per-map L1 in model space plus re-rendering losses."""

    basecolor: float = 1.0
    normal: float = 2.0  # X and Y of the normal span a smaller range than the colours: weighted up to matter as much
    height: float = 1.0  # on mean-free heights: a photo shows relief, not the absolute height level
    roughness: float = 1.0
    metallic: float = 1.0
    unused: float = 0.1  # channel 8 of the model layout is kept at 0
    render: float = 1.0  # L1 between the predicted maps rendered under the photo's own light and the clean photo
    render_new: float = 0.5  # the same under a new random point light: maps that explain the photo and relight right

    def check(self) -> None:
        if min(dataclasses.astuple(self)) < 0:
            raise ValueError("loss weights must be >= 0")


@dataclasses.dataclass
class CaptureEvalConfig:
    """A fixed set of validation photos (seeds of the `val` split), scored every train.sample_every steps and at the end."""

    count: int = 16  # photos; errors are averaged over them
    size: int = 128  # pixels
    seed: int = 4321  # lights and views of the validation photos


@dataclasses.dataclass
class CaptureRealConfig:
    """A second stream of real textures with their artists' normal maps (`training/texture_pairs.py`): views of the
    colour image, with the camera's defects, as photos; the loss is the normal and (mean-free) height terms only, as
    the pairs have no basecolor, roughness or metal. Off while `textures` is empty."""

    textures: str = ""  # a folder tree of NAME.EXT + NAME_norm.EXT or NAME_nm.EXT pairs (e.g. nexuiz-textures' textures.pk3, unzipped)
    exclude: list[str] = dataclasses.field(default_factory=list)  # top-level folders kept out (for capture_real_maps)
    batch_size: int = 2  # real views per step beside train.batch_size synthetic photos
    weight: float = 1.0  # times loss.normal and loss.height on the real views
    max_side: int = 256  # pairs are loaded at most this large: the size of the synthetic materials (data.material_size)

    def check(self) -> None:
        require_positive("real", batch_size=self.batch_size, max_side=self.max_side)
        if self.weight < 0:
            raise ValueError(f"real.weight must be >= 0, got {self.weight}")


@dataclasses.dataclass
class CaptureUnlabeledConfig:
    """The semi-supervised stream: real photos without any maps (`training/texture_pairs.py`, `RealPhotos`). Their
    predicted maps are judged by a patch discriminator that also sees the exact maps of the step's synthetic
    materials (normal X/Y, mean-free height, roughness, metallic; not basecolor, which is the photo's own): the
    capture model is pushed to give real photos maps with the relief, contrast and statistics real maps have,
    where a re-render loss under an estimated light alone would be met by any maps that shade to the photo. Off
    while `photos` is empty."""

    photos: str = ""  # a folder tree of colour images (e.g. `python -m training.export_textures --split train`)
    exclude: list[str] = dataclasses.field(default_factory=list)  # leave out files whose path contains one of these
    batch_size: int = 2  # photos per step beside train.batch_size synthetic photos (and as many exact maps for the discriminator)
    weight: float = 0.05  # of the hinge generator loss: small beside the supervised terms (the VAE's disc weight is 0.1)
    start: int = 0  # steps before the adversarial term joins (with init_from, the discriminator can start at once)
    disc_lr: float = 2e-4  # discriminator AdamW rate (TTUR, as semi.disc_lr)
    disc_channels: int = 32  # width of the discriminator's first layer
    max_side: int = 256  # photos are reduced to this: the size of the synthetic materials (data.material_size)

    def check(self) -> None:
        require_positive("unlabeled", batch_size=self.batch_size, max_side=self.max_side, disc_lr=self.disc_lr,
                         disc_channels=self.disc_channels)  # fmt: skip
        if self.weight < 0 or self.start < 0:
            raise ValueError(f"unlabeled.weight and unlabeled.start must be >= 0, got {self.weight} and {self.start}")


@dataclasses.dataclass
class CaptureConfig:
    """`python -m training.train_capture`."""

    output_dir: str = "runs/capture"  # checkpoints, losses.jsonl, eval.jsonl, config.json and the final `model/`
    seed: int = 0  # model init, materials, views, lights: one seed reproduces a run
    resume: str | None = None  # "latest" or a checkpoint folder
    # A trained capture model to continue from (a capture model folder, or a model folder holding capture/): its
    # UNet and patch size replace model.*, which must stay at its defaults. The optimiser and schedule start afresh
    # (a warm restart: other crops, sizes or losses than the first run), unlike --resume.
    init_from: str | None = None
    data: CaptureDataConfig = dataclasses.field(default_factory=CaptureDataConfig)
    photo: PhotoConfig = dataclasses.field(default_factory=PhotoConfig)
    model: CaptureModelConfig = dataclasses.field(default_factory=CaptureModelConfig)
    loss: CaptureLossConfig = dataclasses.field(default_factory=CaptureLossConfig)
    eval: CaptureEvalConfig = dataclasses.field(default_factory=CaptureEvalConfig)
    real: CaptureRealConfig = dataclasses.field(default_factory=CaptureRealConfig)
    unlabeled: CaptureUnlabeledConfig = dataclasses.field(default_factory=CaptureUnlabeledConfig)
    # ~1.5 s a step at batch 8 on 2 cores: 3000 steps is about 75-90 minutes. A one-step regressor tolerates a
    # higher rate than a diffusion UNet; cosine decay lets it settle at the end.
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            max_steps=3000, batch_size=8, lr=5e-4, lr_schedule="cosine", warmup_steps=100, checkpoint_every=150,
            sample_every=500, log_every=10,
        )
    )  # fmt: skip

    def check(self) -> None:
        if self.init_from and self.model != CaptureModelConfig():
            raise ValueError(f"model.* is set, but init_from ({self.init_from}) supplies the architecture; leave model.* out")
        if self.unlabeled.photos and self.unlabeled.batch_size > self.train.batch_size:
            raise ValueError(f"unlabeled.batch_size ({self.unlabeled.batch_size}) must be <= train.batch_size "
                             f"({self.train.batch_size}): the discriminator's exact maps are the step's synthetic ones")  # fmt: skip
