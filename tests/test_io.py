import json

import numpy as np
import pytest

from stablematerials import io as smio
from stablematerials.io import (
    MaterialFolderError,
    find_material_files,
    load_material,
    material_files,
    save_material,
    write_image,
)
from stablematerials.material import Material


@pytest.mark.parametrize(
    "naming, expected",
    [
        ("plain", {"basecolor.png", "normal.png", "height.png", "roughness.png", "metallic.png"}),
        (
            "ambientcg",
            {"rust_Color.png", "rust_NormalGL.png", "rust_Displacement.png", "rust_Roughness.png", "rust_Metalness.png"},
        ),
        ("polyhaven", {"rust_diff.png", "rust_nor_gl.png", "rust_disp.png", "rust_rough.png", "rust_metal.png"}),
    ],
)
def test_preset_round_trip_16_bit(tmp_path, material, naming, expected):
    out = save_material(material, tmp_path / "rust", naming=naming)
    names = {p.name for p in out.iterdir()}
    assert names == expected | {"metadata.json"}
    back = load_material(out)
    np.testing.assert_allclose(back.height, material.height, atol=1 / 65535 + 1e-6)
    np.testing.assert_allclose(back.normal, material.normal, atol=3e-4)  # 16-bit, then renormalised
    np.testing.assert_allclose(back.basecolor, material.basecolor, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(back.roughness, material.roughness, atol=0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(back.metallic, material.metallic)
    assert back.metadata["prompt"] == "test bumps"


def test_16_bit_is_finer_than_8_bit(tmp_path, material):
    err = {}
    for depth in (8, 16):
        back = load_material(save_material(material, tmp_path / f"m{depth}", bit_depth=depth))
        err[depth] = np.abs(back.height - material.height).max()
    assert err[16] < 2e-5  # 16-bit steps: 1/65535
    assert err[8] > 1e-3  # 8-bit steps: up to 0.5/255 = 0.002


def test_exr_and_directx_and_both(tmp_path, material):
    out = save_material(material, tmp_path / "exr", naming="ambientcg", exr=True, name="x")
    assert (out / "x_Displacement.exr").exists() and (out / "x_NormalGL.exr").exists()
    back = load_material(out)
    np.testing.assert_allclose(back.height, material.height, atol=1e-6)
    dx = save_material(material, tmp_path / "dx", naming="ambientcg", normal_convention="directx", name="x")
    assert (dx / "x_NormalDX.png").exists() and not (dx / "x_NormalGL.png").exists()
    np.testing.assert_allclose(load_material(dx).normal, material.normal, atol=3e-4)
    both = save_material(material, tmp_path / "both", naming="polyhaven", normal_convention="both", name="x")
    assert (both / "x_nor_gl.png").exists() and (both / "x_nor_dx.png").exists()
    from stablematerials.io import read_image

    gl, dxn = read_image(both / "x_nor_gl.png"), read_image(both / "x_nor_dx.png")
    np.testing.assert_allclose(gl[..., 1], 1 - dxn[..., 1], atol=2 / 65535)
    # A plain folder written in DirectX convention is read back correctly thanks to its metadata.
    plain_dx = save_material(material, tmp_path / "plaindx", normal_convention="directx")
    np.testing.assert_allclose(load_material(plain_dx).normal, material.normal, atol=3e-4)


def test_metadata_records_layout(tmp_path, material):
    out = save_material(material, tmp_path / "m", naming="polyhaven")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["naming"] == "polyhaven" and meta["normal_convention"] == "opengl" and meta["bit_depth"] == 16
    assert meta["files"]["basecolor"] == "m_diff.png" and meta["seed"] == 0 and meta["size"] == [32, 32]


def test_detects_downloaded_layouts(tmp_path, material):
    """Files as downloaded from ambientCG / Poly Haven, with resolution tags, and MatSynth's names."""
    layouts = {
        "acg": {
            "basecolor": "Bricks076C_1K-PNG_Color.png",
            "normal": "Bricks076C_1K-PNG_NormalGL.png",
            "height": "Bricks076C_1K-PNG_Displacement.png",
            "roughness": "Bricks076C_1K-PNG_Roughness.png",
        },
        "ph": {
            "basecolor": "brick_wall_001_diff_1k.png",
            "normal": "brick_wall_001_nor_gl_1k.png",
            "height": "brick_wall_001_disp_1k.png",
            "roughness": "brick_wall_001_rough_1k.png",
            "metallic": "brick_wall_001_metal_1k.png",
        },
        "matsynth": {m: f"{m}.png" for m in ("basecolor", "normal", "height", "roughness", "metallic")},
    }
    for folder, files in layouts.items():
        d = tmp_path / folder
        d.mkdir()
        for map_name, fname in files.items():
            write_image(d / fname, material.encoded(map_name), 16 if map_name in ("normal", "height") else 8)
        found = find_material_files(d)
        assert {k if k != "normal_gl" else "normal" for k in found} == set(files), folder
        back = load_material(d)
        np.testing.assert_allclose(back.height, material.height, atol=1e-4)
        if "metallic" not in files:
            assert back.metallic.max() == 0.0  # a missing metalness map means a dielectric


def test_missing_normal_is_derived_and_missing_basecolor_is_an_error(tmp_path, material):
    d = tmp_path / "partial"
    d.mkdir()
    write_image(d / "basecolor.png", material.basecolor)
    write_image(d / "height.png", material.height, 16)
    m = load_material(d)
    assert m.normal.shape == (32, 32, 3) and np.allclose(m.roughness, 0.5)
    (d / "basecolor.png").unlink()
    with pytest.raises(MaterialFolderError, match="no basecolor map"):
        load_material(d)
    with pytest.raises(MaterialFolderError, match="not a folder"):
        load_material(tmp_path / "nope")


def test_corrupt_image_is_a_clear_error(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "basecolor.png").write_bytes(b"not a png")
    with pytest.raises(MaterialFolderError, match="not a readable image"):
        load_material(d)


def test_save_is_atomic(tmp_path, material, monkeypatch):
    calls = {"n": 0}
    real = smio.write_image

    def failing(path, data, bit_depth=8):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(path, data, bit_depth)

    monkeypatch.setattr(smio, "write_image", failing)
    with pytest.raises(OSError, match="disk full"):
        save_material(material, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary folder left

    monkeypatch.setattr(smio, "write_image", real)
    save_material(material, tmp_path / "m")
    with pytest.raises(FileExistsError):
        save_material(material, tmp_path / "m")
    other = Material(**(material.maps() | {"metallic": np.ones((32, 32))}))
    save_material(other, tmp_path / "m", overwrite=True)
    assert load_material(tmp_path / "m").metallic.min() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_bad_options(tmp_path, material):
    with pytest.raises(ValueError, match="unknown naming preset 'substance'"):
        save_material(material, tmp_path / "a", naming="substance")
    with pytest.raises(ValueError, match="bit_depth must be 8 or 16, got 12"):
        save_material(material, tmp_path / "b", bit_depth=12)
    with pytest.raises(ValueError, match="normal_convention"):
        material_files("x", "plain", "vulkan")


def test_written_files_get_usual_permissions(tmp_path, material):
    import os
    import stat

    from stablematerials.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        out = save_material(material, tmp_path / "m")
        atomic_write_text(tmp_path / "s.json", "{}")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == 0o644
