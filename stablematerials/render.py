"""Differentiable physically based preview renderer: a material on a flat plane or wrapped on a sphere.

Shading is the Cook-Torrance microfacet model as used in real-time engines (Karis 2013, "Real Shading in Unreal
Engine 4"): GGX normal distribution (Walter et al. 2007), height-correlated Smith masking-shadowing (Heitz 2014),
Schlick's Fresnel with F0 = lerp(0.04, basecolor, metallic), and a Lambertian diffuse lobe scaled by (1 - metallic).
Perceptual roughness is squared into alpha (Burley 2012). Basecolor is decoded from sRGB before shading and the
result is clipped to [0, 1] and encoded back to sRGB.

Frame: x to the right of the image, y up the image (OpenGL normal maps: +Y points to row 0), z towards the viewer.
Everything is batched over the first dimension and differentiable with respect to the maps (no in-place ops).
The height map is not used for shading; its visible effect reaches the image through the normal map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .maps import MAPS
from .material import Material, resize_wrapped

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "fresnel_schlick",
    "ggx_ndf",
    "linear_to_srgb",
    "random_light_positions",
    "render_plane",
    "render_preview",
    "render_sphere",
    "smith_g",
    "srgb_to_linear",
]

DEFAULT_CAMERA_DISTANCE = 2.5  # the plane spans [-1, 1]^2, so the camera sees it under about 44 degrees
DEFAULT_LIGHT_INTENSITY = 15.0  # a white diffuse plane lit head-on from the camera reads about 0.76 (linear)
DEFAULT_AMBIENT = 0.03  # radiance of a uniform white environment
DEFAULT_LIGHT_DIRECTION = (-0.5, 0.6, 1.0)  # upper left, in front
DEFAULT_ENVIRONMENT = 0.35  # sky radiance of the sphere's hemispherical environment
DEFAULT_SPHERE_TILES = 4  # material repeats around the sphere's equator (half of them visible)

_MIN_ALPHA = 0.01  # alpha = roughness^2 is clamped here: a mirror lit by a point light would be invisible
_EPS = 1e-4  # lower bound of cosines used as divisors
_SUN_IRRADIANCE = 2.8  # the sphere's directional light; a white diffuse surface facing it reads about 0.9
_GROUND_FRACTION = 0.25  # ground radiance relative to the sky
_SPHERE_RADIUS = 0.92  # fraction of the half image the sphere fills
_BACKGROUND_LINEAR = 0.2  # neutral grey (about 0.48 in sRGB)
SHADED_MAPS = ("basecolor", "normal", "roughness", "metallic")  # what shading reads (height acts through the normal)
_MAP_SHAPES = {name: MAPS[name].channels for name in SHADED_MAPS}  # channels of each, from the map table


# ----------------------------------------------------------------------------------------------
# Pure shading math (tensors broadcast; cosines are expected to be clamped by the caller)
# ----------------------------------------------------------------------------------------------


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1 piecewise curve)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] (clipped) to sRGB encoding (IEC 61966-2-1 piecewise curve)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)


def ggx_ndf(n_dot_h: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """GGX / Trowbridge-Reitz normal distribution D(h) (Walter et al. 2007, eq. 33)."""
    a2 = alpha * alpha
    denom = n_dot_h * n_dot_h * (a2 - 1.0) + 1.0
    return a2 / (math.pi * denom * denom)


def smith_g(n_dot_l: torch.Tensor, n_dot_v: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Height-correlated Smith masking-shadowing G2 for GGX (Heitz 2014, "Understanding the Masking-Shadowing...")."""
    a2 = alpha * alpha
    lambda_v = n_dot_l * torch.sqrt(a2 + (1.0 - a2) * n_dot_v * n_dot_v)
    lambda_l = n_dot_v * torch.sqrt(a2 + (1.0 - a2) * n_dot_l * n_dot_l)
    return 2.0 * n_dot_l * n_dot_v / (lambda_v + lambda_l)


def fresnel_schlick(v_dot_h: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    """Schlick's Fresnel approximation F0 + (1 - F0)(1 - v.h)^5 (Schlick 1994; Karis 2013)."""
    return f0 + (1.0 - f0) * (1.0 - v_dot_h).clamp(0.0, 1.0) ** 5


def _env_brdf(f0: torch.Tensor, roughness: torch.Tensor, n_dot_v: torch.Tensor) -> torch.Tensor:
    """Fit of the GGX BRDF integrated over a uniform environment (Karis 2014, "Physically Based Shading on Mobile")."""
    r0 = roughness * -1.0 + 1.0
    r1 = roughness * -0.0275 + 0.0425
    r2 = roughness * -0.572 + 1.04
    r3 = roughness * 0.022 - 0.04
    a004 = torch.minimum(r0 * r0, torch.exp2(-9.28 * n_dot_v)) * r0 + r1
    scale = a004 * -1.04 + r2
    bias = a004 * 1.04 + r3
    return f0 * scale + bias


# ----------------------------------------------------------------------------------------------
# Shared shading: the layout is (B, L, C, H, W) with L the lights (or 1)
# ----------------------------------------------------------------------------------------------


def _dot(a: torch.Tensor, b: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Dot product over the channel dimension (kept)."""
    return (a * b).sum(dim=dim, keepdim=True)


def _normalize(v: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Unit vectors along `dim`; zero vectors stay zero (a multiply-add form: much faster than F.normalize here)."""
    return v * torch.rsqrt(_dot(v, v, dim).clamp_min(1e-12))


def _surface(maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Shading inputs from maps: linear diffuse albedo, F0, alpha, roughness and unit normals, each (B, 1, C, H, W)."""
    base = srgb_to_linear(maps["basecolor"])
    metallic = maps["metallic"].clamp(0.0, 1.0)
    roughness = maps["roughness"].clamp(0.0, 1.0)
    surface = {
        "albedo": base * (1.0 - metallic),
        "f0": 0.04 * (1.0 - metallic) + base * metallic,
        "roughness": roughness,
        "alpha": (roughness * roughness).clamp_min(_MIN_ALPHA),
        "normal": _normalize(maps["normal"], dim=1),
    }
    return {k: v.unsqueeze(1) for k, v in surface.items()}


def _direct(surface: dict[str, torch.Tensor], view: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Outgoing radiance per unit irradiance at normal incidence: (diffuse + specular BRDF) * max(n.l, 0)."""
    n = surface["normal"]
    half = _normalize(light + view)
    n_dot_l = _dot(n, light)
    n_dot_v = _dot(n, view).clamp_min(_EPS)
    n_dot_h = _dot(n, half).clamp(0.0, 1.0)
    v_dot_h = _dot(view, half).clamp(0.0, 1.0)
    lit = n_dot_l.clamp_min(0.0)
    n_dot_l = n_dot_l.clamp_min(_EPS)
    alpha = surface["alpha"]
    specular = (
        ggx_ndf(n_dot_h, alpha) * smith_g(n_dot_l, n_dot_v, alpha) * fresnel_schlick(v_dot_h, surface["f0"])
    ) / (4.0 * n_dot_l * n_dot_v)
    return (surface["albedo"] / math.pi + specular) * lit


def _ambient(surface: dict[str, torch.Tensor], view: torch.Tensor, diffuse_env, specular_env) -> torch.Tensor:
    """Radiance reflected from an environment: albedo * irradiance-like term + split-sum specular."""
    n_dot_v = _dot(surface["normal"], view).clamp_min(_EPS)
    specular = _env_brdf(surface["f0"], surface["roughness"], n_dot_v)
    return surface["albedo"] * diffuse_env + specular * specular_env


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _check_maps(maps: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """Validate the map dict; returns (B, H, W)."""
    if not isinstance(maps, dict):
        raise ValueError(f"maps must be a dict of (B, C, H, W) tensors, got {type(maps).__name__}")
    missing = [k for k in _MAP_SHAPES if k not in maps]
    if missing:
        raise ValueError(f"maps lack {', '.join(missing)} (have {', '.join(sorted(maps)) or 'nothing'})")
    ref = maps["basecolor"]
    if not isinstance(ref, torch.Tensor) or ref.ndim != 4:
        raise ValueError(f"basecolor must be a (B, 3, H, W) tensor, got {getattr(ref, 'shape', type(ref))}")
    b, _, h, w = ref.shape
    for name, channels in _MAP_SHAPES.items():
        t = maps[name]
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (b, channels, h, w):
            raise ValueError(f"{name} must have shape {(b, channels, h, w)}, got {tuple(getattr(t, 'shape', ()))}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    return b, h, w


def _direction(value: Sequence[float] | torch.Tensor, what: str) -> torch.Tensor:
    """A unit 3-vector from three finite numbers, not all zero."""
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        t = torch.empty(0)
    if isinstance(value, str) or t.numel() != 3 or not torch.isfinite(t).all() or t.norm() < 1e-8:
        raise ValueError(f"{what} must be three finite numbers, not all zero; got {value!r}")
    return t / t.norm()


def _light_intensity(value: float | torch.Tensor, batch: int, n_lights: int, ref: torch.Tensor) -> torch.Tensor:
    """Intensity as (B, L, C, 1, 1) from a float or a tensor of shape (), (B,), (B, L) or (B, L, 3)."""
    t = torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    if t.ndim == 0:
        t = t.reshape(1, 1, 1)
    elif t.ndim == 1 and t.shape[0] == batch:
        t = t.reshape(batch, 1, 1)
    elif t.ndim == 2 and tuple(t.shape) == (batch, n_lights):
        t = t.unsqueeze(-1)
    elif not (t.ndim == 3 and tuple(t.shape) == (batch, n_lights, 3)):
        raise ValueError(
            f"light_intensity must be a number or a tensor of shape (), ({batch},), ({batch}, {n_lights}) or "
            f"({batch}, {n_lights}, 3); got shape {tuple(t.shape)}"
        )
    return t[..., None, None]


# ----------------------------------------------------------------------------------------------
# Plane
# ----------------------------------------------------------------------------------------------


def _plane_points(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Pixel centres of the plane [-1, 1]^2 at z = 0 as (1, 1, 3, H, W); row 0 is y = +1."""
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    ys = 1 - (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y, torch.zeros_like(x)])[None, None]


def render_plane(
    maps: dict[str, torch.Tensor],
    light_positions: torch.Tensor | None = None,
    light_intensity: float | torch.Tensor = DEFAULT_LIGHT_INTENSITY,
    camera_distance: float = DEFAULT_CAMERA_DISTANCE,
    ambient: float = DEFAULT_AMBIENT,
) -> torch.Tensor:
    """Render maps on the plane [-1, 1]^2 (z = 0) seen from (0, 0, camera_distance): (B, 3, H, W) sRGB in [0, 1].

    Point lights at `light_positions` (B, L, 3) fall off with the inverse square of distance; None puts one light
    at the camera (a flash). `light_intensity` is a number or a tensor of shape (B,), (B, L) or (B, L, 3) (coloured).
    `ambient` is the radiance of a uniform white environment. Differentiable with respect to the maps (and lights);
    radiance above 1 is clipped, so saturated highlights pass no gradient.
    """
    batch, h, w = _check_maps(maps)
    ref = maps["basecolor"]
    if not (isinstance(camera_distance, (int, float)) and math.isfinite(camera_distance) and camera_distance > 0):
        raise ValueError(f"camera_distance must be a positive number, got {camera_distance!r}")
    if not (isinstance(ambient, (int, float)) and math.isfinite(ambient) and ambient >= 0):
        raise ValueError(f"ambient must be a number >= 0, got {ambient!r}")
    camera = torch.tensor([0.0, 0.0, camera_distance], device=ref.device, dtype=ref.dtype)
    if light_positions is None:
        light_positions = camera.expand(batch, 1, 3)
    light_positions = torch.as_tensor(light_positions, device=ref.device, dtype=ref.dtype)
    if light_positions.ndim != 3 or light_positions.shape[0] != batch or light_positions.shape[2] != 3:
        raise ValueError(f"light_positions must have shape ({batch}, L, 3), got {tuple(light_positions.shape)}")
    n_lights = light_positions.shape[1]
    intensity = _light_intensity(light_intensity, batch, n_lights, ref)

    points = _plane_points(h, w, ref.device, ref.dtype)  # (1, 1, 3, H, W)
    view = _normalize(camera[None, None, :, None, None] - points)
    to_light = light_positions[..., None, None] - points  # (B, L, 3, H, W)
    dist_sq = _dot(to_light, to_light).clamp_min(1e-8)
    light = to_light * dist_sq.rsqrt()
    surface = _surface(maps)
    radiance = (_direct(surface, view, light) * intensity / dist_sq).sum(dim=1)
    if ambient > 0:
        radiance = radiance + _ambient(surface, view, ambient, ambient)[:, 0]
    return linear_to_srgb(radiance)


def random_light_positions(
    batch: int,
    n_lights: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Random point lights for rendering losses: (B, n, 3), uniform on the hemisphere cap of radius
    DEFAULT_CAMERA_DISTANCE above the plane, at least 17 degrees above the horizon (z >= 0.3 * radius)."""
    if not (isinstance(batch, int) and batch >= 1 and isinstance(n_lights, int) and n_lights >= 1):
        raise ValueError(f"batch and n_lights must be positive integers, got {batch!r} and {n_lights!r}")
    u = torch.rand(batch, n_lights, 2, generator=generator, device=generator.device if generator else device)
    z = 0.3 + 0.7 * u[..., 0]  # uniform in z gives uniform area on a spherical cap (Archimedes)
    phi = 2 * math.pi * u[..., 1]
    r = torch.sqrt((1 - z * z).clamp_min(0.0))
    return (torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1) * DEFAULT_CAMERA_DISTANCE).to(device)


# ----------------------------------------------------------------------------------------------
# Sphere
# ----------------------------------------------------------------------------------------------


def _sphere_geometry(size: int, tiles: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Per-pixel geometry of an orthographic unit sphere: normal, tangent, bitangent (1, 3, S, S), uv, coverage."""
    coords = ((torch.arange(size, device=device, dtype=torch.float32) * 2 + 1) / size - 1) / _SPHERE_RADIUS
    y, x = torch.meshgrid(-coords, coords, indexing="ij")
    radius = torch.sqrt(x * x + y * y)
    pixel = 2.0 / (size * _SPHERE_RADIUS)
    coverage = ((1.0 - radius) / pixel + 0.5).clamp(0.0, 1.0)
    # Pixels on the antialiased rim are shaded at the nearest point of the silhouette.
    scale = torch.where(radius > 1.0, 1.0 / radius.clamp_min(1e-6), torch.ones_like(radius))
    x, y = x * scale, y * scale
    z = torch.sqrt((1.0 - x * x - y * y).clamp_min(0.0))
    normal = torch.stack([x, y, z])
    # u runs around the vertical axis (left to right on the front), v from the north pole (top) down.
    u = torch.atan2(x, z) / (2 * math.pi) + 0.5
    v = torch.acos(y.clamp(-1.0, 1.0)) / math.pi
    ring = torch.sqrt(x * x + z * z).clamp_min(1e-6)
    tangent = torch.stack([z / ring, torch.zeros_like(x), -x / ring])  # d(position)/du, unit
    bitangent = torch.linalg.cross(normal, tangent, dim=0)  # towards the north pole = texture +Y (OpenGL)
    uv = torch.stack([u * tiles, v * tiles / 2], dim=-1)
    return {
        "normal": normal[None],
        "tangent": tangent[None],
        "bitangent": bitangent[None],
        "uv": uv - torch.floor(uv),  # (S, S, 2) in [0, 1): wrapped texture coordinates
        "coverage": coverage[None, None],  # (1, 1, S, S)
    }


def _shrink_wrapped(texture: torch.Tensor, width: int, exact: bool = True) -> torch.Tensor:
    """Downsample a tileable (B, C, H, W) texture towards `width` (height in proportion).

    2x2 box steps (mipmapping) while they fit, then wrapped antialiased resampling to the exact width; with
    exact=False the resampling happens only if the texture is still over twice too wide.
    """
    while texture.shape[-1] >= 2 * width and texture.shape[-1] % 2 == 0 and texture.shape[-2] % 2 == 0:
        texture = F.avg_pool2d(texture, 2)
    _, _, h, w = texture.shape
    if w != width and (exact or w >= 2 * width):
        texture = resize_wrapped(texture, (max(1, round(h * width / w)), width))
    return texture


def _sky_ground(up: torch.Tensor, softness: torch.Tensor | float, sky: float) -> torch.Tensor:
    """Radiance of a sky/ground environment along directions with vertical component `up` (blend width `softness`)."""
    ground = sky * _GROUND_FRACTION
    return ground + (sky - ground) * (0.5 + 0.5 * (up / softness).clamp(-1.0, 1.0))


def _sample_wrapped(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a tileable (B, C, H, W) texture at wrapped uv (S, S, 2) in [0, 1) -> (B, C, S, S)."""
    b, _, h, w = texture.shape
    padded = F.pad(texture, (1, 1, 1, 1), mode="circular")
    gx = 2.0 * (uv[..., 0] * w + 1.0) / (w + 2) - 1.0
    gy = 2.0 * (uv[..., 1] * h + 1.0) / (h + 2) - 1.0
    grid = torch.stack([gx, gy], dim=-1).to(texture.dtype).expand(b, *uv.shape)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


def render_sphere(
    maps: dict[str, torch.Tensor],
    size: int = 256,
    light_direction: Sequence[float] | torch.Tensor = DEFAULT_LIGHT_DIRECTION,
    environment: float = DEFAULT_ENVIRONMENT,
    *,
    tiles: int = DEFAULT_SPHERE_TILES,
) -> torch.Tensor:
    """Render maps wrapped on a sphere (orthographic view, grey background): (B, 3, size, size) sRGB in [0, 1].

    The material repeats `tiles` times around the equator and tiles / 2 times pole to pole; the normal map is
    applied in the sphere's tangent frame. A directional light from `light_direction` (x right, y up, z towards
    the viewer) plus a sky/ground environment of sky radiance `environment`. Differentiable.
    """
    _check_maps(maps)
    if not (isinstance(size, int) and 8 <= size <= 8192):
        raise ValueError(f"size must be an integer between 8 and 8192, got {size!r}")
    if not (isinstance(tiles, int) and tiles >= 1):
        raise ValueError(f"tiles must be a positive integer, got {tiles!r}")
    if not (isinstance(environment, (int, float)) and math.isfinite(environment) and environment >= 0):
        raise ValueError(f"environment must be a number >= 0, got {environment!r}")
    ref = maps["basecolor"]
    light = _direction(light_direction, "light_direction").to(ref.device, ref.dtype)[None, None, :, None, None]
    geo = _sphere_geometry(size, tiles, ref.device)
    geo = {k: v.to(ref.dtype) for k, v in geo.items()}

    # Prefilter: about one texel per pixel at the centre of the sphere, so normal detail does not alias.
    texture = torch.cat([maps[name] for name in SHADED_MAPS], dim=1)
    texel_width = max(4, round(math.pi * size * _SPHERE_RADIUS / tiles))
    texture = _shrink_wrapped(texture, texel_width, exact=False)
    sampled = _sample_wrapped(texture, geo["uv"])
    on_sphere = dict(zip(SHADED_MAPS, sampled.split(list(_MAP_SHAPES.values()), dim=1)))
    local = on_sphere["normal"]
    world_normal = local[:, 0:1] * geo["tangent"] + local[:, 1:2] * geo["bitangent"] + local[:, 2:3] * geo["normal"]
    surface = _surface(on_sphere | {"normal": world_normal})
    view = torch.tensor([0.0, 0.0, 1.0], device=ref.device, dtype=ref.dtype)[None, None, :, None, None]
    # No light reaches the geometric back side, whatever the normal map says (fades over about 6 degrees).
    terminator = (_dot(geo["normal"].unsqueeze(1), light) / 0.1).clamp(0.0, 1.0)
    radiance = _direct(surface, view, light) * (_SUN_IRRADIANCE * terminator)

    n = surface["normal"]
    reflected = 2.0 * _dot(n, view) * n - view
    diffuse_env = _sky_ground(n[:, :, 1:2], 1.0, environment)
    # Glossy reflections see a horizon that blurs with roughness.
    softness = 0.1 + 0.9 * surface["roughness"]
    specular_env = _sky_ground(reflected[:, :, 1:2], softness, environment)
    radiance = radiance + _ambient(surface, view, diffuse_env, specular_env)
    coverage = geo["coverage"]
    radiance = radiance[:, 0] * coverage + _BACKGROUND_LINEAR * (1.0 - coverage)
    return linear_to_srgb(radiance)


# ----------------------------------------------------------------------------------------------
# Preview
# ----------------------------------------------------------------------------------------------


def render_preview(
    material: Material,
    size: int = 256,
    light_direction: Sequence[float] = DEFAULT_LIGHT_DIRECTION,
) -> "Image.Image":
    """A (2 * size) x size RGB image: the material on a sphere (left) and on the lit plane (right).

    Both share the light direction; on the plane it is a point light at the camera's distance.
    """
    from PIL import Image

    if not isinstance(material, Material):
        raise ValueError(f"render_preview needs a Material, got {type(material).__name__}")
    if not (isinstance(size, int) and 8 <= size <= 8192):
        raise ValueError(f"size must be an integer between 8 and 8192, got {size!r}")
    plane_light = _light_positions_from_direction(light_direction, batch=1)
    with torch.inference_mode():
        maps = _box_filtered_maps(material, size)
        sphere = render_sphere(maps, size, light_direction)
        plane = render_plane(_resized_maps(maps, size), plane_light)
    pixels = torch.cat([sphere, plane], dim=-1)[0].permute(1, 2, 0).numpy()
    return Image.fromarray(np.round(pixels * 255).astype(np.uint8))


def _box_filtered_maps(material: Material, width: int) -> dict[str, torch.Tensor]:
    """The material's maps as (1, C, h, w) tensors, box-filtered by the largest power of two that keeps w >= width.

    Works on the channels-last arrays directly (summing whole rows), which is far cheaper than pooling the permuted
    channels-first views of a large material.
    """
    h, w = material.size
    k = 1
    while w // (2 * k) >= width and h % (2 * k) == 0 and w % (2 * k) == 0:
        k *= 2
    out = {}
    for name, arr in material.maps().items():
        x = torch.from_numpy(arr)
        x = x.unsqueeze(-1) if x.ndim == 2 else x
        if k > 1:
            c = x.shape[-1]
            x = x.reshape(h // k, k, w // k, k * c).mean(dim=1).reshape(h // k, w // k, k, c).mean(dim=2)
        out[name] = x.permute(2, 0, 1).unsqueeze(0).contiguous()
    return out


def _resized_maps(maps: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """Maps resampled to size x size with wrap-around filtering (non-square materials are stretched)."""
    names = list(maps)
    texture = torch.cat([maps[k] for k in names], dim=1)
    if texture.shape[-1] > size:
        texture = _shrink_wrapped(texture, size)
    if tuple(texture.shape[-2:]) != (size, size):
        texture = resize_wrapped(texture, (size, size))
    return dict(zip(names, torch.split(texture, [maps[k].shape[1] for k in names], dim=1)))


def _light_positions_from_direction(
    direction: Sequence[float] | torch.Tensor, batch: int = 1, distance: float = DEFAULT_CAMERA_DISTANCE
) -> torch.Tensor:
    """One point light per batch item at `distance` along `direction` (which must point above the plane): (B, 1, 3)."""
    unit = _direction(direction, "light direction")
    if unit[2] <= 0:
        raise ValueError(f"light direction must point above the plane (z > 0), got {direction!r}")
    return (unit * distance).expand(batch, 1, 3).clone()
