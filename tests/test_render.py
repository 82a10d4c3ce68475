"""The differentiable renderer: shading math, physical plausibility, conventions, gradients, preview and CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from stablematerials.cli import main as cli_main
from stablematerials.io import save_material
from stablematerials.material import flip_normal_convention
from stablematerials.render import (
    DEFAULT_CAMERA_DISTANCE,
    fresnel_schlick,
    ggx_ndf,
    linear_to_srgb,
    random_light_positions,
    render_plane,
    render_preview,
    render_sphere,
    smith_g,
    srgb_to_linear,
)

from conftest import make_material


def uniform_maps(
    size: int = 33,
    basecolor=(1.0, 1.0, 1.0),
    normal=(0.0, 0.0, 1.0),
    roughness: float = 1.0,
    metallic: float = 0.0,
    batch: int = 1,
) -> dict[str, torch.Tensor]:
    """Constant maps (B, C, H, W)."""

    def full(values) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)
        return t.expand(batch, -1, size, size).clone()

    n = torch.tensor(normal, dtype=torch.float32)
    return {
        "basecolor": full(basecolor),
        "normal": full((n / n.norm()).tolist()),
        "height": full([0.5]),
        "roughness": full([roughness]),
        "metallic": full([metallic]),
    }


def lights(*positions) -> torch.Tensor:
    return torch.tensor([positions], dtype=torch.float32)  # (1, L, 3)


def linear(image: torch.Tensor) -> torch.Tensor:
    return srgb_to_linear(image)


# ----------------------------------------------------------------------------------------------
# Pure math
# ----------------------------------------------------------------------------------------------


def test_srgb_curves_known_values_and_round_trip():
    x = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.2140, abs=1e-4)
    assert linear_to_srgb(torch.tensor(0.5)).item() == pytest.approx(0.7354, abs=1e-4)
    x = torch.tensor([0.0, 0.001, 1.0], requires_grad=True)
    linear_to_srgb(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.0])
def test_ggx_ndf_projected_area_integrates_to_one(alpha):
    # The defining property of a microfacet distribution: integral of D(h) (n.h) over the hemisphere is 1.
    theta = torch.linspace(0, math.pi / 2, 200001, dtype=torch.float64)
    cos_t = torch.cos(theta)
    integrand = ggx_ndf(cos_t, torch.tensor(alpha, dtype=torch.float64)) * cos_t * torch.sin(theta) * 2 * math.pi
    assert torch.trapezoid(integrand, theta).item() == pytest.approx(1.0, abs=2e-3)


def test_smith_g_and_fresnel_limits():
    alpha = torch.tensor(0.5)
    one = torch.tensor(1.0)
    assert smith_g(one, one, alpha).item() == pytest.approx(1.0)
    cosines = torch.tensor([1.0, 0.7, 0.4, 0.1, 0.01])
    g = smith_g(cosines, one.expand(5), alpha)
    assert (g[1:] < g[:-1]).all() and (g > 0).all() and (g <= 1).all()
    assert smith_g(torch.tensor(0.3), torch.tensor(0.3), torch.tensor(0.9)) < smith_g(
        torch.tensor(0.3), torch.tensor(0.3), torch.tensor(0.2)
    )
    f0 = torch.tensor([0.04, 0.9])
    assert torch.allclose(fresnel_schlick(torch.tensor(1.0), f0), f0)
    assert torch.allclose(fresnel_schlick(torch.tensor(0.0), f0), torch.ones(2))


# ----------------------------------------------------------------------------------------------
# Plane: physics
# ----------------------------------------------------------------------------------------------


def test_white_lambertian_flash_matches_closed_form_and_falls_off():
    maps = uniform_maps(size=33, roughness=1.0)
    out = linear(render_plane(maps, ambient=0.0))[0, 0]
    c = 16  # the centre pixel sits exactly at (0, 0)
    # At the centre n = v = l: diffuse 1/pi plus GGX (alpha 1) D = 1/pi, G = 1, F = 0.04 -> specular 0.01/pi.
    expected = 1.01 / math.pi * 15.0 / DEFAULT_CAMERA_DISTANCE**2
    assert out[c, c].item() == pytest.approx(expected, rel=0.01)
    corners = torch.stack([out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]])
    assert (corners < 0.8 * out[c, c]).all()
    # Radially monotone along the middle row.
    row = out[c, c:]
    assert (row[1:] <= row[:-1] + 1e-6).all()


def test_inverse_square_falloff():
    maps = uniform_maps(size=33, roughness=1.0)
    near = linear(render_plane(maps, lights((0, 0, 2.0)), light_intensity=4.0, ambient=0.0))[0, 0, 16, 16]
    far = linear(render_plane(maps, lights((0, 0, 4.0)), light_intensity=4.0, ambient=0.0))[0, 0, 16, 16]
    assert (near / far).item() == pytest.approx(4.0, rel=0.01)


def test_ambient_term_is_a_uniform_environment():
    # No light: a grey dielectric reflects about albedo * ambient plus a little specular; a smooth white metal
    # reflects nearly all of the environment.
    grey = linear(render_plane(uniform_maps(basecolor=(0.5,) * 3, roughness=0.5), light_intensity=0.0, ambient=0.5))
    albedo = srgb_to_linear(torch.tensor(0.5)).item()
    assert 0.5 * albedo + 0.01 < grey.min().item() and grey.max().item() < 0.5 * albedo + 0.06
    metal = linear(
        render_plane(uniform_maps(roughness=0.05, metallic=1.0), light_intensity=0.0, ambient=0.5)
    )
    assert metal.mean().item() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("roughness", [0.0, 1.0])
@pytest.mark.parametrize("metallic", [0.0, 1.0])
@pytest.mark.parametrize(
    "normal", [(0, 0, 1), (1, 0, 0), (0, -1, 0.001), (0, 0, -1), (0.7, 0.7, 0.1)], ids=lambda n: "n" + str(n)
)
def test_extreme_inputs_stay_finite_and_in_range(roughness, metallic, normal):
    maps = uniform_maps(size=9, normal=normal, roughness=roughness, metallic=metallic)
    for t in maps.values():
        t.requires_grad_(True)
    positions = torch.cat([lights((0, 0, 2.5)), lights((3.0, 0.0, 0.01))], dim=1)
    plane, sphere = render_plane(maps, positions), render_sphere(maps, size=16)
    for out in (plane, sphere):
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1
    (plane.sum() + sphere.sum()).backward()
    for name in ("basecolor", "normal", "roughness", "metallic"):
        assert torch.isfinite(maps[name].grad).all(), name


def test_dark_metal_is_darker_than_bright_metal():
    dark = render_plane(uniform_maps(basecolor=(0.1, 0.1, 0.1), roughness=0.5, metallic=1.0))
    bright = render_plane(uniform_maps(basecolor=(0.9, 0.9, 0.9), roughness=0.5, metallic=1.0))
    assert (dark < bright).all()
    assert dark.mean() < 0.6 * bright.mean()


def test_rougher_highlight_is_wider_and_lower():
    def profile(roughness: float) -> torch.Tensor:
        maps = uniform_maps(size=129, basecolor=(0.9, 0.9, 0.9), roughness=roughness, metallic=1.0)
        return linear(render_plane(maps, light_intensity=0.5, ambient=0.0))[0, 0, 64]

    smooth, rough = profile(0.3), profile(0.6)
    assert smooth.max() < 0.99  # not clipped, or the comparison would be meaningless
    assert smooth.argmax() == rough.argmax() == 64  # flash: the highlight is at the centre
    assert rough.max() < 0.5 * smooth.max()

    def width(p: torch.Tensor) -> int:
        return int((p > p.max() / 2).sum())

    assert width(rough) > 1.5 * width(smooth)


# ----------------------------------------------------------------------------------------------
# Conventions
# ----------------------------------------------------------------------------------------------


def test_image_orientation_y_up_x_right():
    maps = uniform_maps(size=32, roughness=1.0)
    top_light = linear(render_plane(maps, lights((0, 1.5, 0.8)), ambient=0.0))[0, 0]
    assert top_light[:8].mean() > 2 * top_light[-8:].mean()  # row 0 is +Y
    right_light = linear(render_plane(maps, lights((1.5, 0, 0.8)), ambient=0.0))[0, 0]
    assert right_light[:, -8:].mean() > 2 * right_light[:, :8].mean()  # last column is +X


def test_normal_tilted_towards_light_is_brighter_opengl_green():
    s, c = math.sin(0.5), math.cos(0.5)
    up = uniform_maps(normal=(0, s, c), roughness=0.7)
    down = uniform_maps(normal=(0, -s, c), roughness=0.7)
    light = lights((0.0, 2.0, 1.5))
    lit_up, lit_down = render_plane(up, light), render_plane(down, light)
    assert (lit_up > lit_down).all()
    # The DirectX encoding of the +Y normal (green flipped) is the -Y normal in OpenGL: darker.
    flipped = dict(up, normal=flip_normal_convention(up["normal"]))
    assert torch.allclose(render_plane(flipped, light), lit_down)
    # Same along X.
    right = uniform_maps(normal=(s, 0, c), roughness=0.7)
    left = uniform_maps(normal=(-s, 0, c), roughness=0.7)
    assert (render_plane(right, lights((2.0, 0, 1.5))) > render_plane(left, lights((2.0, 0, 1.5)))).all()


def test_sphere_tangent_frame_follows_the_normal_map():
    s, c = math.sin(0.4), math.cos(0.4)
    centre = (slice(None), slice(None), slice(60, 68), slice(60, 68))

    def centre_brightness(normal, light_direction) -> float:
        maps = uniform_maps(size=16, normal=normal, roughness=0.8)
        return render_sphere(maps, size=128, light_direction=light_direction, environment=0.0)[centre].mean().item()

    # Texture +X is the sphere's tangent (image right at the centre), texture +Y its bitangent (image up).
    assert centre_brightness((s, 0, c), (1, 0, 0.3)) > centre_brightness((-s, 0, c), (1, 0, 0.3)) + 0.05
    assert centre_brightness((0, s, c), (0, 1, 0.3)) > centre_brightness((0, -s, c), (0, 1, 0.3)) + 0.05


def test_sphere_lit_side_and_background():
    maps = uniform_maps(size=16, roughness=0.8)
    img = render_sphere(maps, size=64, light_direction=(1, 0, 0.2))[0]
    assert img[:, 24:40, 40:56].mean() > img[:, 24:40, 8:24].mean() + 0.2
    grey = linear_to_srgb(torch.tensor(0.2)).item()
    assert torch.allclose(img[:, 0, 0], torch.full((3,), grey), atol=1e-6)  # corner: background


# ----------------------------------------------------------------------------------------------
# Batching, lights, gradients
# ----------------------------------------------------------------------------------------------


def test_batch_matches_individual_renders():
    materials = [make_material(size=24, seed=s) for s in range(3)]
    batch = {k: torch.cat([m.to_tensors()[k] for m in materials]) for k in materials[0].to_tensors()}
    positions = random_light_positions(3, n_lights=2, generator=torch.Generator().manual_seed(0))
    intensity = torch.tensor([[5.0, 10.0], [15.0, 1.0], [8.0, 8.0]])
    together = render_plane(batch, positions, light_intensity=intensity)
    spheres = render_sphere(batch, size=32)
    for i, m in enumerate(materials):
        alone = render_plane(m.to_tensors(), positions[i : i + 1], light_intensity=intensity[i : i + 1])
        assert torch.allclose(together[i : i + 1], alone, atol=1e-6)
        assert torch.allclose(spheres[i : i + 1], render_sphere(m.to_tensors(), size=32), atol=1e-6)
    # Two lights add up (in linear space, below clipping).
    maps = uniform_maps(size=17, basecolor=(0.3,) * 3)
    a, b = lights((1, 0, 2)), lights((-1, 0.5, 2))
    both = linear(render_plane(maps, torch.cat([a, b], 1), light_intensity=3.0, ambient=0.0))
    summed = linear(render_plane(maps, a, light_intensity=3.0, ambient=0.0)) + linear(
        render_plane(maps, b, light_intensity=3.0, ambient=0.0)
    )
    assert torch.allclose(both, summed, atol=1e-5)


def test_random_light_positions():
    p = random_light_positions(4, 3, generator=torch.Generator().manual_seed(1))
    assert p.shape == (4, 3, 3)
    assert torch.allclose(p.norm(dim=-1), torch.full((4, 3), DEFAULT_CAMERA_DISTANCE))
    assert (p[..., 2] >= 0.3 * DEFAULT_CAMERA_DISTANCE - 1e-5).all()
    assert torch.equal(p, random_light_positions(4, 3, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(p, random_light_positions(4, 3, generator=torch.Generator().manual_seed(2)))
    many = random_light_positions(2000, generator=torch.Generator().manual_seed(0))
    # All azimuths: the mean position is close to the z axis.
    assert many[..., :2].mean(dim=(0, 1)).abs().max() < 0.15
    with pytest.raises(ValueError, match="n_lights"):
        random_light_positions(2, 0)


def test_gradients_reach_every_shaded_map():
    maps = {k: v.clone().requires_grad_(True) for k, v in make_material(size=32, seed=3).to_tensors().items()}
    positions = random_light_positions(1, 2, generator=torch.Generator().manual_seed(0))
    loss = render_plane(maps, positions).mean() + render_sphere(maps, size=32).mean()
    loss.backward()
    for name in ("basecolor", "normal", "roughness", "metallic"):
        grad = maps[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name
        assert (grad.abs() > 0).float().mean() > 0.5, name  # most texels receive gradient
    assert maps["height"].grad is None  # height is not shaded (documented)


@pytest.mark.parametrize("texture_size", [64, 45])  # box-filter mip steps; wrapped antialiased resampling
def test_sphere_prefilter_keeps_gradients(texture_size):
    maps = {k: v.clone().requires_grad_(True) for k, v in make_material(texture_size, seed=1).to_tensors().items()}
    render_sphere(maps, size=16).mean().backward()
    for name in ("basecolor", "normal", "roughness", "metallic"):
        assert torch.isfinite(maps[name].grad).all() and maps[name].grad.abs().sum() > 0, name


def test_rendering_loss_can_recover_roughness():
    # A small optimisation through the renderer moves a wrong roughness towards the target.
    target_maps = uniform_maps(size=17, basecolor=(0.6, 0.5, 0.4), roughness=0.3, metallic=1.0)
    positions = lights((0.3, 0.2, 2.0))
    target = render_plane(target_maps, positions, light_intensity=2.0)
    rough = torch.tensor(0.6, requires_grad=True)  # one value for the whole map: a well-posed fit
    optim = torch.optim.Adam([rough], lr=0.02)
    for _ in range(40):
        optim.zero_grad()
        pred = render_plane(dict(target_maps, roughness=rough.expand(1, 1, 17, 17)), positions, light_intensity=2.0)
        (pred - target).abs().mean().backward()
        optim.step()
    assert abs(rough.item() - 0.3) < 0.05


def test_bad_inputs_raise_value_errors():
    maps = uniform_maps(size=8)
    with pytest.raises(ValueError, match="roughness"):
        render_plane({k: v for k, v in maps.items() if k != "roughness"})
    with pytest.raises(ValueError, match="normal"):
        render_plane(dict(maps, normal=maps["normal"][:, :2]))
    with pytest.raises(ValueError, match="light_positions"):
        render_plane(maps, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="light_intensity"):
        render_plane(maps, light_intensity=torch.ones(5))
    with pytest.raises(ValueError, match="light_direction"):
        render_sphere(maps, light_direction=(0, 0, 0))
    with pytest.raises(ValueError, match="light_direction"):
        render_sphere(maps, light_direction="up")


# ----------------------------------------------------------------------------------------------
# Preview and CLI
# ----------------------------------------------------------------------------------------------


def test_render_preview_image():
    material = make_material(size=48)
    image = render_preview(material, size=40)
    assert isinstance(image, Image.Image) and image.size == (80, 40) and image.mode == "RGB"
    pixels = np.asarray(image).astype(float)
    assert pixels[:, 40:].std() > 2  # the plane shows the material, not a flat colour
    wide = render_preview(material.crop(0, 0, 24, 48), size=40)  # non-square materials are stretched on the plane
    assert wide.size == (80, 40)
    with pytest.raises(ValueError, match="above the plane"):
        render_preview(material, size=40, light_direction=(0, 1, -1))


def test_cli_render_writes_png(tmp_path, capsys):
    folder = save_material(make_material(size=32), tmp_path / "bumps", naming="ambientcg")
    for mode, size in (("preview", (64, 32)), ("plane", (32, 32)), ("sphere", (32, 32))):
        out = tmp_path / f"{mode}.png"
        code = cli_main(["render", str(folder), "--out", str(out), "--size", "32", "--mode", mode, "--light", "1,1,2"])
        assert code == 0
        assert capsys.readouterr().out.strip() == str(out)
        with Image.open(out) as img:
            assert img.size == size
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--light", "1,2"], "--light"),
        (["--light", "a,b,c"], "--light"),
        (["--light", "0,1,-1", "--mode", "plane"], "above the plane"),
        (["--out", "x.jpg"], ".png"),
    ],
)
def test_cli_render_bad_light_or_output(tmp_path, capsys, args, message):
    folder = save_material(make_material(size=16), tmp_path / "m")
    argv = ["render", str(folder), "--out", str(tmp_path / "p.png"), *args]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_render_rejects_a_non_material_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a material")
    assert cli_main(["render", str(tmp_path), "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "basecolor" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.png").exists()
