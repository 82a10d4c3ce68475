import numpy as np
import pytest
import torch

from stablematerials.material import (
    Material,
    flip_normal_convention,
    normal_from_height,
    pack_model_channels,
    rebuild_normal,
    unpack_model_channels,
)
from stablematerials.metrics import normal_height_agreement, seam_score

from conftest import make_material


def test_pack_unpack_round_trip(material):
    x = material.to_model_tensor()
    assert x.shape == (9, 32, 32)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.all(x[8] == 0)
    back = Material.from_model_tensor(x)
    for name, arr in material.maps().items():
        np.testing.assert_allclose(getattr(back, name), arr, atol=1e-5, err_msg=name)


def test_published_channel_layout():
    x = torch.zeros(1, 9, 2, 2)
    x[:, 0:3] = torch.tensor([1.0, -1.0, 0.0])[None, :, None, None]  # basecolor
    x[:, 3:5] = torch.tensor([0.6, 0.0])[None, :, None, None]  # normal X, Y
    x[:, 5] = 1.0  # height
    x[:, 6] = -1.0  # roughness
    x[:, 7] = 0.0  # metallic
    maps = unpack_model_channels(x)
    assert torch.allclose(maps["basecolor"][0, :, 0, 0], torch.tensor([1.0, 0.0, 0.5]))
    assert torch.allclose(maps["normal"][0, :, 0, 0], torch.tensor([0.6, 0.0, 0.8]), atol=1e-6)
    assert maps["height"].min() == 1.0 and maps["roughness"].max() == 0.0
    assert torch.allclose(maps["metallic"], torch.full_like(maps["metallic"], 0.5))


def test_rebuild_normal_renormalises_outside_unit_disc():
    xy = torch.tensor([[0.0, 0.0], [0.3, 0.4], [3.0, 4.0]]).T.reshape(1, 2, 3, 1)
    n = rebuild_normal(xy)
    assert torch.allclose(n[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(n[0, :, 1, 0], torch.tensor([0.3, 0.4, (1 - 0.25) ** 0.5]))
    assert torch.allclose(n[0, :, 2, 0], torch.tensor([0.6, 0.8, 0.0]))
    assert torch.allclose(n.norm(dim=1), torch.ones(1, 3, 1))


def test_pack_is_inverse_of_unpack_on_maps(material):
    maps = material.to_tensors()
    again = unpack_model_channels(pack_model_channels(maps))
    for k in maps:
        assert torch.allclose(again[k], maps[k], atol=1e-5), k


def test_normal_from_height_is_opengl_and_wraps():
    size = 64
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    ramp_up = (-(y.float()) / size)[None, None]  # height grows towards the top of the image (+V, OpenGL +Y)
    n = normal_from_height(ramp_up, 8.0)
    # A surface rising towards +Y faces -Y.
    assert n[0, 1, size // 2, size // 2] < -0.01
    assert abs(float(n[0, 0, size // 2, size // 2])) < 1e-6
    periodic = torch.sin(2 * torch.pi * x.float() / size)[None, None]
    n2 = normal_from_height(periodic)
    assert seam_score(n2[0].permute(1, 2, 0).numpy(), 1) < 1.05


def test_opengl_directx_flip(material):
    dx = flip_normal_convention(material.normal)
    assert np.allclose(dx[..., 1], -material.normal[..., 1])
    assert np.allclose(flip_normal_convention(dx), material.normal)


def test_tile_roll_crop_resize(material):
    tiled = material.tile(2)
    assert tiled.size == (64, 64)
    assert np.array_equal(tiled.basecolor[32:, 32:], material.basecolor)
    rolled = material.roll(5, 7)
    assert np.array_equal(rolled.tile(2).crop(5, 7, 32, 32).height, material.height)
    small = material.resize(16)
    assert small.size == (16, 16)
    assert np.allclose(np.linalg.norm(small.normal, axis=-1), 1.0, atol=1e-5)
    # Wrap-aware resize keeps a tileable material tileable.
    assert seam_score(small.height, 0) < 1.2 and seam_score(small.height, 1) < 1.2
    assert material.resize((20, 40)).size == (20, 40)
    with pytest.raises(ValueError, match="tile counts"):
        material.tile(0)
    with pytest.raises(ValueError, match="outside"):
        material.crop(30, 0, 8, 8)


def test_conversions(material):
    pil = material.to_pil()
    assert pil["basecolor"].mode == "RGB" and pil["height"].mode == "L" and pil["normal"].size == (32, 32)
    stack = material.to_numpy()
    assert stack.shape == (32, 32, 9) and stack.min() >= 0 and stack.max() <= 1
    t = material.to_tensors()
    assert t["normal"].shape == (1, 3, 32, 32) and t["height"].shape == (1, 1, 32, 32)
    assert normal_height_agreement(material) > 0.99


def test_bad_maps_are_rejected():
    base = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match="height map is 4x4"):
        Material(base, np.zeros((8, 8, 3)), np.zeros((4, 4)), np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="normal map must have shape"):
        Material(base, np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        Material(base, np.zeros((8, 8, 3)), np.full((8, 8), np.nan), np.zeros((8, 8)), np.zeros((8, 8)))


def test_make_material_is_seeded():
    assert np.array_equal(make_material(seed=1).basecolor, make_material(seed=1).basecolor)
    assert not np.array_equal(make_material(seed=1).basecolor, make_material(seed=2).basecolor)
