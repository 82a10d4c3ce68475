"""Procedural material library: every family's maps, tiling, determinism, consistency, captions, CLI and dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stablematerials.cli import main
from stablematerials.io import load_material
from stablematerials.material import normal_from_height
from stablematerials.metrics import normal_height_agreement, seam_score
from stablematerials.procedural import (
    FAMILIES,
    generate,
    generate_with,
    get_family,
    sample_params,
)
from stablematerials.procedural.dataset import (
    SPLITS,
    dataset_material,
    plan,
    read_captions,
    read_dataset_info,
    split_of,
    write_dataset,
)
from stablematerials.procedural.noise import Streams, fbm, value_noise, voronoi

SIZE = 64
NAMES = list(FAMILIES)
_CACHE: dict[tuple, object] = {}


def make(family: str, seed: int = 1, sampled: bool = False, size: int = SIZE, **params):
    """A cached material: default parameters (plus overrides), or parameters drawn from the seed."""
    key = (family, seed, sampled, size, tuple(sorted(params.items())))
    if key not in _CACHE:
        _CACHE[key] = dataset_material(family, seed, size) if sampled else generate(family, seed, size, **params)
    return _CACHE[key]


def variants(family: str):
    """Default parameters and two random parameter sets."""
    return [make(family), make(family, 2, sampled=True), make(family, 3, sampled=True)]


# ----------------------------------------------------------------------------------------------
# Every family
# ----------------------------------------------------------------------------------------------


def test_registry_has_at_least_twelve_families_each_with_its_own_parameters():
    assert len(FAMILIES) >= 12
    assert len({f.params for f in FAMILIES.values()}) == len(FAMILIES)
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.metal in ("none", "all", "partial")


@pytest.mark.parametrize("family", NAMES)
def test_five_maps_with_right_shapes_and_ranges(family):
    for m in variants(family):
        assert m.basecolor.shape == (SIZE, SIZE, 3) and m.normal.shape == (SIZE, SIZE, 3)
        for name in ("height", "roughness", "metallic"):
            arr = getattr(m, name)
            assert arr.shape == (SIZE, SIZE) and arr.dtype == np.float32
            assert 0.0 <= arr.min() and arr.max() <= 1.0
        assert 0.0 <= m.basecolor.min() and m.basecolor.max() <= 1.0
        np.testing.assert_allclose(np.linalg.norm(m.normal, axis=-1), 1.0, atol=1e-4)
        assert m.height.std() > 0.003, "height map is flat"
        assert m.basecolor.std() > 0.003, "basecolor is a flat colour"
        assert set(m.metadata) >= {"family", "caption", "params", "seed", "source"}
        assert m.metadata["family"] == family and m.metadata["source"] == "procedural"


@pytest.mark.parametrize("family", NAMES)
def test_every_map_tiles_seamlessly(family):
    for m in variants(family):
        for name, arr in m.maps().items():
            for axis in (0, 1):
                assert seam_score(arr, axis) <= 1.2, f"{family} {name} axis {axis}: {seam_score(arr, axis):.2f}"


@pytest.mark.parametrize("family", ["marble", "soil", "concrete", "sand"])
def test_seam_check_catches_a_non_periodic_crop(family):
    """The seam criterion used above fails on a crop that is not a whole period (so it can fail)."""
    crop = make(family, size=2 * SIZE).crop(5, 7, SIZE, SIZE)
    worst = max(seam_score(arr, axis) for arr in (crop.height, crop.basecolor) for axis in (0, 1))
    assert worst > 1.2


@pytest.mark.parametrize("family", NAMES)
def test_same_seed_same_material_different_seed_differs(family):
    a = make(family, 4)
    b = generate(family, 4, SIZE)
    for name in a.maps():
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata
    c = make(family, 5)
    assert np.abs(a.height - c.height).mean() > 1e-3 or np.abs(a.basecolor - c.basecolor).mean() > 1e-3


@pytest.mark.parametrize("family", NAMES)
def test_normal_map_is_derived_from_height(family):
    for m in variants(family):
        strength = m.metadata["normal_strength"]
        derived = normal_from_height(torch.from_numpy(m.height)[None, None], strength)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(m.normal, derived, atol=1e-5)
        assert normal_height_agreement(m, strength) > 0.99


@pytest.mark.parametrize("family", NAMES)
def test_metallic_follows_the_family(family):
    kind = get_family(family).metal
    for m in variants(family):
        if kind == "none":
            assert m.metallic.max() < 0.01
        elif kind == "all":
            assert m.metallic.mean() > 0.95
        else:
            metal = m.metallic > 0.5
            if metal.any():
                assert m.metallic[metal].mean() > 0.8
            if (~metal).any():
                assert m.metallic[~metal].mean() < 0.2


@pytest.mark.parametrize("family", NAMES)
def test_captions_mention_the_family_and_vary(family):
    noun = get_family(family).noun
    captions = {make(family).metadata["caption"]}
    captions |= {
        generate_with(family, sample_params(family, np.random.default_rng(s)), s, 8).metadata["caption"] for s in range(8)
    }
    for caption in captions:
        assert caption.strip() and noun in caption.lower(), caption
        assert "  " not in caption and " ," not in caption, caption
    assert len(captions) >= 3


def test_families_differ_in_structure_not_only_colour():
    """Colour-free descriptors (relief, its gradient, roughness, metallic) separate every pair of families."""

    def descriptor(m):
        gy, gx = np.gradient(m.height)
        return np.array(
            [m.height.std(), np.hypot(gx, gy).mean() * 10, m.roughness.mean(), m.roughness.std(), m.metallic.mean()]
        )

    desc = {f: descriptor(make(f, size=128)) for f in NAMES}
    for i, a in enumerate(NAMES):
        for b in NAMES[i + 1 :]:
            assert np.abs(desc[a] - desc[b]).max() > 0.01, f"{a} and {b} have the same structure"
    rough = [d[2] for d in desc.values()]
    assert min(rough) < 0.3 and max(rough) > 0.8


# ----------------------------------------------------------------------------------------------
# Physical consistency of particular families
# ----------------------------------------------------------------------------------------------


def test_brick_mortar_is_lower_and_rougher_than_the_bricks():
    m = make("bricks", bond="stack", rows=8, bricks_per_row=4, mortar_width=0.25, chipping=0.0)
    # Layouts are shifted half a unit (joints off the wrap): courses are centred on pixel rows 0, 8, ...
    joints = m.height[4::8].mean()  # pixel rows next to each bed joint
    faces = m.height[0::8].mean()  # course centres
    assert joints < faces - 0.15
    assert m.roughness[4::8].mean() > m.roughness[0::8].mean()


def test_tile_grout_is_lower_than_the_tiles():
    m = make("square_tiles", size=128, tiles=8, grout_width=0.2, wear=0.0)  # 16 px tiles centred on columns 0, 16, ...
    assert m.height[:, 8::16].mean() < m.height[:, 0::16].mean() - 0.2
    assert m.roughness[:, 8::16].mean() > m.roughness[:, 0::16].mean() + 0.3  # matte grout, glazed tiles


def test_wood_gaps_are_lower_than_the_planks():
    m = make("wood_planks", size=128, planks=8, gap_width=0.15, wear=0.0)  # 16 px planks centred on rows 0, 16, ...
    assert m.height[8::16].mean() < m.height[0::16].mean() - 0.2


def test_peeled_paint_shows_bare_metal_and_rust_that_behave_physically():
    m = make("painted_metal", wear=0.9, rust=0.4, paint_color="red", rivets=False)
    metal = m.metallic > 0.9
    dielectric = m.metallic < 0.1
    assert metal.mean() > 0.05 and dielectric.mean() > 0.2
    saturation = m.basecolor.max(-1) - m.basecolor.min(-1)
    assert saturation[metal].mean() < 0.08  # bare steel is grey
    assert m.roughness[metal].mean() < m.roughness[dielectric].mean()


def test_hammered_metal_has_more_relief_than_smooth():
    smooth = make("polished_metal", hammered=0.0, scratches=0.0)
    hammered = make("polished_metal", hammered=1.0, scratches=0.0)
    assert hammered.height.std() > 5 * smooth.height.std()
    assert (1 - hammered.normal[..., 2]).mean() > (1 - smooth.normal[..., 2]).mean()


def test_polished_metal_is_smoother_than_brushed_and_rust():
    assert make("polished_metal", polish=1.0).roughness.mean() < 0.15
    assert make("rusty_metal", corrosion=1.0).roughness.mean() > 0.6


@pytest.mark.parametrize("family", NAMES)
def test_same_material_at_any_resolution(family):
    """Double resolution, downsampled, resembles the low-resolution material (same layout and colours)."""
    low = make(family).basecolor.mean(-1)
    high = make(family, size=2 * SIZE).basecolor.mean(-1).reshape(SIZE, 2, SIZE, 2).mean((1, 3))
    corr = np.corrcoef(low.ravel(), high.ravel())[0, 1]
    assert corr > 0.6, f"{family}: correlation {corr:.2f}"
    assert abs(low.mean() - high.mean()) < 0.05


# ----------------------------------------------------------------------------------------------
# Parameters and bad input
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: generate("velvet", 0, SIZE), "velvet"),
        (lambda: generate("bricks", 0, 0), "multiple of 8"),
        (lambda: generate("bricks", 0, 60), "multiple of 8"),
        (lambda: generate("bricks", 0, -8), "multiple of 8"),
        (lambda: generate("bricks", 0, 64.0), "multiple of 8"),
        (lambda: generate("bricks", 0, True), "multiple of 8"),
        (lambda: generate("bricks", -1, SIZE), "seed"),
        (lambda: generate("bricks", 1.5, SIZE), "seed"),
        (lambda: generate("bricks", 0, SIZE, mortar_colour="white"), "mortar_colour"),
        (lambda: generate("bricks", 0, SIZE, mortar_width=2.0), "mortar_width"),
        (lambda: generate("bricks", 0, SIZE, rows="8"), "rows"),
        (lambda: generate("bricks", 0, SIZE, rows=7), "rows"),
        (lambda: generate("bricks", 0, SIZE, rows=8.5), "rows"),
        (lambda: generate("bricks", 0, SIZE, color="purple"), "color"),
        (lambda: generate("leather", 0, SIZE, stitching=1), "stitching"),
        (lambda: generate("square_tiles", 0, SIZE, pattern="checker", tiles=5), "tiles"),
        (lambda: generate("marble", 0, SIZE, polish=float("nan")), "polish"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("family", NAMES)
def test_sampled_parameters_are_valid_and_reproducible(family):
    cls = get_family(family).params
    for s in range(25):
        p = sample_params(family, np.random.default_rng(s))
        assert isinstance(p, cls)
        assert p == sample_params(family, np.random.default_rng(s))
        assert cls.create(**p.as_dict()) == p
    assert len({sample_params(family, np.random.default_rng(s)) for s in range(10)}) > 1


def test_parameters_parse_from_strings():
    p = get_family("leather").params.from_strings({"stitching": "yes", "pebbles": "24", "wear": "0.5", "color": "tan"})
    assert p.stitching is True and p.pebbles == 24 and p.wear == 0.5 and p.color == "tan"
    with pytest.raises(ValueError, match="pebbles"):
        get_family("leather").params.from_strings({"pebbles": "many"})
    with pytest.raises(ValueError, match="shine"):
        get_family("leather").params.from_strings({"shine": "1"})


# ----------------------------------------------------------------------------------------------
# Noise helpers
# ----------------------------------------------------------------------------------------------


def test_value_noise_is_periodic_and_normalised():
    n = value_noise(np.random.default_rng(0), 64, 8)
    assert abs(float(n.std()) - 1.0) < 0.3 and abs(float(n.mean())) < 0.3
    big = value_noise(np.random.default_rng(0), 128, 8)
    np.testing.assert_allclose(big.reshape(64, 2, 64, 2).mean((1, 3)), n, atol=0.05)
    for axis in (0, 1):
        assert seam_score(n, axis) <= 1.2


def test_fbm_anisotropic_periods_make_streaks():
    n = fbm(np.random.default_rng(1), 64, 2, octaves=3, period_y=32)
    assert np.abs(np.diff(n, axis=0)).mean() > 3 * np.abs(np.diff(n, axis=1)).mean()


def test_voronoi_matches_brute_force_with_wrapped_distances():
    size, cells = 32, 5
    rng = np.random.default_rng(3)
    v = voronoi(np.random.default_rng(3), size, cells, jitter=1.0)
    sites = (0.5 + (rng.random((cells, cells, 2)) - 0.5) * 1.0).astype(np.float32)
    pts = np.stack([(np.arange(cells)[None, :] + sites[..., 0]), (np.arange(cells)[:, None] + sites[..., 1])], -1).reshape(-1, 2)
    c = (np.arange(size) + 0.5) / size * cells
    for iy, ix in [(0, 0), (5, 31), (17, 9), (31, 31), (12, 20)]:
        d = np.array([c[ix], c[iy]]) - pts
        d = d - cells * np.round(d / cells)  # wrapped
        dist = np.hypot(d[:, 0], d[:, 1])
        assert v.cell[iy, ix] == int(np.argmin(dist))
        assert v.f1[iy, ix] == pytest.approx(dist.min(), abs=1e-5)
        assert 0.0 <= v.edge[iy, ix] <= v.f1[iy, ix] + 1e-6


def test_streams_are_independent_and_stable():
    s = Streams(7, "bricks")
    assert s("a").random() == Streams(7, "bricks")("a").random()
    assert s("a").random() != s("b").random()
    assert s("a").random() != Streams(7, "marble")("a").random()


# ----------------------------------------------------------------------------------------------
# CLI and dataset
# ----------------------------------------------------------------------------------------------


def test_procedural_command_writes_one_material(tmp_path, capsys):
    assert main(["procedural", "--family", "bricks", "--seed", "3", "--size", "32", "--out", str(tmp_path),
                 "--param", "bond=stack", "--param", "mortar_color=white"]) == 0
    folder = tmp_path / "bricks_000003"
    assert str(folder) in capsys.readouterr().out
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["family"] == "bricks" and meta["seed"] == 3 and meta["source"] == "procedural"
    assert meta["params"]["bond"] == "stack" and "brick" in meta["caption"]
    loaded = load_material(folder)
    assert loaded.size == (32, 32)
    expected = generate("bricks", 3, 32, bond="stack", mortar_color="white")
    np.testing.assert_allclose(loaded.height, expected.height, atol=1 / 65535 + 1e-6)
    assert main(["procedural", "--family", "bricks", "--seed", "3", "--size", "32", "--out", str(tmp_path)]) == 2


def test_procedural_command_naming_random_params_and_errors(tmp_path, capsys):
    assert main(["procedural", "--family", "marble", "--seed", "9", "--size", "16", "--out", str(tmp_path),
                 "--naming", "ambientcg", "--random-params"]) == 0
    folder = tmp_path / "marble_000009"
    assert (folder / "marble_000009_Color.png").exists() and (folder / "marble_000009_NormalGL.png").exists()
    assert json.loads((folder / "metadata.json").read_text())["params"] == dataset_material("marble", 9, 16).metadata["params"]
    assert main(["procedural", "--family", "marble", "--out", str(tmp_path), "--param", "polish"]) == 2
    assert main(["procedural", "--family", "marble", "--out", str(tmp_path), "--param", "gloss=1"]) == 2
    assert main(["procedural", "--family", "velvet", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["procedural", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(f in listing for f in NAMES) and "mortar_width" in listing


def test_splits_are_decided_by_seed_and_never_overlap():
    seeds = range(2000)
    splits = [split_of(s) for s in seeds]
    assert splits == [split_of(s) for s in seeds]
    for name in ("val", "test"):
        assert abs(splits.count(name) / len(splits) - 0.05) < 0.01
    assert [it.split for it in plan(40, ["bricks", "marble"], 100)] == [split_of(s) for s in range(100, 140)]
    with pytest.raises(ValueError, match="val_fraction"):
        split_of(1, 0.6, 0.5)
    with pytest.raises(ValueError, match="test_fraction"):
        split_of(1, 0.1, -0.1)


def _folders(root: Path) -> dict[str, set[str]]:
    return {s: {p.name for p in (root / s).iterdir() if p.is_dir()} for s in SPLITS if (root / s).exists()}


def test_dataset_command_writes_a_split_captioned_dataset_and_resumes(tmp_path, capsys):
    root = tmp_path / "ds"
    args = ["dataset", "--out", str(root), "-n", "12", "--size", "16", "--workers", "1",
            "--val-fraction", "0.2", "--test-fraction", "0.2"]
    assert main(args) == 0
    assert "wrote 12 materials" in capsys.readouterr().out
    info = read_dataset_info(root)
    assert info["version"] == 1 and info["size"] == 16 and sum(info["counts"].values()) == 12
    assert info["families"] == NAMES
    folders = _folders(root)
    assert all(folders[s] for s in SPLITS)
    assert not (folders["train"] & folders["val"] or folders["train"] & folders["test"] or folders["val"] & folders["test"])
    for split in SPLITS:
        rows = read_captions(root, split)
        assert [r["name"] for r in rows] == sorted(folders[split]) and len(rows) == info["counts"][split]
        for r in rows:
            assert set(r) == {"name", "family", "caption", "seed", "params"}
            assert r["name"] == f"{r['family']}_{r['seed']:06d}" and split_of(r["seed"], 0.2, 0.2) == split
            assert get_family(r["family"]).noun in r["caption"].lower()
    # Resume: nothing to do; a deleted item and a stale partial folder are repaired, captions rebuilt.
    assert main(args) == 0
    assert "wrote 0 materials (12 already done)" in capsys.readouterr().out
    victim = min(folders["train"])
    before = (root / "train" / victim / "height.png").read_bytes()
    shutil.rmtree(root / "train" / victim)
    (root / "train" / f".{victim}.abc.partial").mkdir()
    (root / "train" / "captions.jsonl").write_text("")
    assert main(args) == 0
    assert "wrote 1 materials (11 already done)" in capsys.readouterr().out
    assert (root / "train" / victim / "height.png").read_bytes() == before
    assert not (root / "train" / f".{victim}.abc.partial").exists()
    assert [r["name"] for r in read_captions(root, "train")] == sorted(folders["train"])
    # Growing the dataset adds seeds 12 and 13 only.
    assert main(args[:4] + ["14"] + args[5:]) == 0
    assert "wrote 2 materials (12 already done)" in capsys.readouterr().out
    # A different size or changed fractions cannot be mixed in.
    assert main(args[:6] + ["32"] + args[7:]) == 2
    assert main(args[:-4] + ["--val-fraction", "0.5", "--test-fraction", "0.4"]) == 2


def test_dataset_with_two_workers_matches_one_worker(tmp_path):
    one = write_dataset(tmp_path / "one", 4, size=16, families=["bricks", "fabric"], workers=1, seed=20)
    two = write_dataset(tmp_path / "two", 4, size=16, families=["bricks", "fabric"], workers=2, seed=20)
    assert one.written == two.written == 4 and two.rate > 0
    for split in SPLITS:
        assert read_captions(tmp_path / "one", split) == read_captions(tmp_path / "two", split)
    for folder in (tmp_path / "one").glob("*/*_0000*"):
        twin = tmp_path / "two" / folder.parent.name / folder.name
        assert (folder / "basecolor.png").read_bytes() == (twin / "basecolor.png").read_bytes()


def test_read_captions_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        read_captions(tmp_path, "training")
    with pytest.raises(FileNotFoundError):
        read_captions(tmp_path, "train")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "captions.jsonl").write_text('{"name": "a"}\nnot json\n')
    with pytest.raises(ValueError, match="captions.jsonl:2"):
        read_captions(tmp_path, "val")
