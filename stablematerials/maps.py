"""The maps of a material, in one table: what each map holds, where the model keeps it, how files store and name it.

Everything that lists maps reads `MAPS`: the `Material` and its packing to model space (`stablematerials.material`),
material folders (`stablematerials.io`: file names per naming preset, recognised names, bit depth, defaults), the
published material object, the pipeline's array outputs, the renderer's inputs, the exporters, the training losses
and the web UI. Adding a map is one entry here (and its attribute on `Material`, which a test checks).

Model space (the published StableMaterials checkpoint) has 9 channels in [-1, 1]:
    0:3 basecolor (sRGB), 3:5 normal X, Y, 5 height, 6 roughness, 7 metallic, 8 unused (0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MODEL_CHANNELS = 9  # channels of model space (the VAE's input and output), see the module docstring
NAMING_PRESET_KEYS: tuple[str, ...] = ("plain", "ambientcg", "polyhaven")  # file naming conventions users know
ENCODINGS = ("srgb", "linear", "normal")


@dataclass(frozen=True)
class MapSpec:
    """One map of a material.

    name: the map's key everywhere (attribute of `Material`, file name in the plain naming, CLI and UI values).
    label: its name for people (the web UI).
    channels: 3 for an (H, W, 3) map, 1 for an (H, W) map in a `Material`.
    model_slice: its channels in model space (the normal keeps X and Y only); None: the model does not make it.
    encoding: "srgb" (colour, gamma-encoded), "linear" (a value in [0, 1]) or "normal" (unit vectors in [-1, 1],
        stored in files as 0.5 n + 0.5, OpenGL convention in a `Material`).
    deep: written at the chosen bit depth (16 by default: 8-bit steps show in displacement and in the shading of
        normals) or as EXR; otherwise always 8-bit PNG.
    default: the value a material folder without this map reads as; None: the map is required (basecolor) or
        derived (the normal, from the height).
    often_absent: many folders ship without it (non-metals have no metallic map), so its default is not logged.
    stems: the file stem per naming preset (`{name}` is the material's name).
    aliases: words of file stems that name this map when a folder is loaded (lower case, matched at the stem's end).
    directx_stems, directx_aliases: the same for the DirectX file of a normal map.
    """

    name: str
    label: str
    channels: int
    model_slice: slice | None
    encoding: str
    deep: bool
    default: float | None
    stems: Mapping[str, str]
    aliases: tuple[str, ...]
    often_absent: bool = False
    directx_stems: Mapping[str, str] = field(default_factory=dict)
    directx_aliases: tuple[str, ...] = ()

    @property
    def pil_mode(self) -> str:
        """The mode of its 8-bit PIL image: RGB or L (grey)."""
        return "RGB" if self.channels == 3 else "L"

    @property
    def model_channels(self) -> int:
        """How many model-space channels hold it (0 when the model does not make it)."""
        return 0 if self.model_slice is None else self.model_slice.stop - self.model_slice.start


MAPS: dict[str, MapSpec] = {
    spec.name: spec
    for spec in (
        MapSpec(
            "basecolor", "Base color", 3, slice(0, 3), "srgb", deep=False, default=None,
            stems={"plain": "basecolor", "ambientcg": "{name}_Color", "polyhaven": "{name}_diff"},
            aliases=("basecolor", "base_color", "color", "col", "diff", "diffuse", "albedo"),
        ),
        MapSpec(
            "normal", "Normal", 3, slice(3, 5), "normal", deep=True, default=None,
            stems={"plain": "normal", "ambientcg": "{name}_NormalGL", "polyhaven": "{name}_nor_gl"},
            aliases=("normal", "normalgl", "nor_gl", "normal_gl", "nrm"),
            directx_stems={"plain": "normal_dx", "ambientcg": "{name}_NormalDX", "polyhaven": "{name}_nor_dx"},
            directx_aliases=("normaldx", "nor_dx", "normal_dx"),
        ),
        MapSpec(
            "height", "Height", 1, slice(5, 6), "linear", deep=True, default=0.5,
            stems={"plain": "height", "ambientcg": "{name}_Displacement", "polyhaven": "{name}_disp"},
            aliases=("height", "displacement", "disp"),
        ),
        MapSpec(
            "roughness", "Roughness", 1, slice(6, 7), "linear", deep=False, default=0.5,
            stems={"plain": "roughness", "ambientcg": "{name}_Roughness", "polyhaven": "{name}_rough"},
            aliases=("roughness", "rough"),
        ),
        MapSpec(
            "metallic", "Metallic", 1, slice(7, 8), "linear", deep=False, default=0.0, often_absent=True,
            stems={"plain": "metallic", "ambientcg": "{name}_Metalness", "polyhaven": "{name}_metal"},
            aliases=("metallic", "metalness", "metal"),
        ),
    )
}  # fmt: skip

MAP_NAMES: tuple[str, ...] = tuple(MAPS)
# Where each map lives in model space (normal: X, Y only); the channels after the last are unused (kept at 0).
MODEL_SLICES: dict[str, slice] = {name: spec.model_slice for name, spec in MAPS.items() if spec.model_slice is not None}
UNUSED_SLICE = slice(max(s.stop for s in MODEL_SLICES.values()), MODEL_CHANNELS)


def map_spec(name: str) -> MapSpec:
    """The table entry of map `name`, else a ValueError listing the maps."""
    if name not in MAPS:
        raise ValueError(f"unknown map {name!r}; expected one of {', '.join(MAPS)}")
    return MAPS[name]
