"""The map table (stablematerials.maps.MAPS) is the one description of the maps: it is consistent, every consumer's
list of maps equals it, and an edited entry changes what the consumers do."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import REPO

from stablematerials.maps import (
    ENCODINGS,
    MAP_NAMES,
    MAPS,
    MODEL_CHANNELS,
    MODEL_SLICES,
    NAMING_PRESET_KEYS,
    UNUSED_SLICE,
)


def test_table_is_consistent():
    covered = [c for sl in MODEL_SLICES.values() for c in range(sl.start, sl.stop)]
    assert covered == list(range(UNUSED_SLICE.start)) and UNUSED_SLICE.stop == MODEL_CHANNELS  # contiguous, in order
    for name, spec in MAPS.items():
        assert spec.name == name and spec.channels in (1, 3) and spec.encoding in ENCODINGS
        assert set(spec.stems) == set(NAMING_PRESET_KEYS), name
        assert spec.aliases and all(a == a.lower() for a in spec.aliases + spec.directx_aliases)
        assert bool(spec.directx_stems) == (spec.encoding == "normal") == bool(spec.directx_aliases)
        if spec.directx_stems:
            assert set(spec.directx_stems) == set(NAMING_PRESET_KEYS)
    # Every file name of every preset is distinct, so no two maps overwrite each other.
    for key in NAMING_PRESET_KEYS:
        stems = [s.stems[key] for s in MAPS.values()] + [s.directx_stems[key] for s in MAPS.values() if s.directx_stems]
        assert len(set(stems)) == len(stems), key


def test_material_and_model_space_follow_the_table(material):
    from stablematerials.material import Material, pack_model_channels, unpack_model_channels

    fields = [f.name for f in dataclasses.fields(Material) if f.name != "metadata"]
    assert tuple(fields) == MAP_NAMES  # adding a map: the entry, and its attribute here
    assert {name: arr.shape[2:] or (1,) for name, arr in material.maps().items()} == {
        name: (spec.channels,) for name, spec in MAPS.items()
    }
    packed = pack_model_channels(material.to_tensors())
    assert packed.shape[1] == MODEL_CHANNELS and torch.all(packed[:, UNUSED_SLICE] == 0)
    assert list(unpack_model_channels(packed)) == list(MODEL_SLICES)
    assert material.to_numpy().shape[-1] == sum(spec.channels for spec in MAPS.values())


def test_files_follow_the_table(material, tmp_path):
    from stablematerials.io import find_material_files, load_material, material_files, save_material

    for key in NAMING_PRESET_KEYS:
        files = material_files("Bricks", key, "both", exr=True)
        assert files == {
            **{n: s.stems[key].format(name="Bricks") + (".exr" if s.deep else ".png") for n, s in MAPS.items()},
            "normal_dx": MAPS["normal"].directx_stems[key].format(name="Bricks") + ".exr",
        }
        folder = save_material(material, tmp_path / key, naming=key, name="Bricks", bit_depth=16)
        found = find_material_files(folder)
        assert {k.removesuffix("_gl") for k in found} == set(MAP_NAMES)
        depths = {name: cv2_depth(found[name if name in found else f"{name}_gl"]) for name in MAP_NAMES}
        assert depths == {name: 16 if spec.deep else 8 for name, spec in MAPS.items()}
    # A folder with only the required map reads every other map as its default (the normal: from the flat height).
    only = tmp_path / "plain"
    for path in only.iterdir():
        if path.stem != MAPS["basecolor"].stems["plain"] and path.suffix == ".png":
            path.unlink()
    loaded = load_material(only)
    for name, spec in MAPS.items():
        if spec.default is not None:
            assert np.all(getattr(loaded, name) == np.float32(spec.default)), name
    assert np.allclose(loaded.normal, [0.0, 0.0, 1.0])


def cv2_depth(path) -> int:
    import cv2

    return 16 if cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16 else 8


def test_other_consumers_list_the_table(material):
    from stablematerials.batch.report import CSV_COLUMNS
    from stablematerials.metrics import map_distribution_distance, seam_scores
    from stablematerials.published import StableMaterialsMaterial
    from stablematerials.render import _MAP_SHAPES, SHADED_MAPS
    from stablematerials.studio import MAP_LABELS, map_images
    from training.losses import MAP_CHANNELS

    assert MAP_CHANNELS == {**MODEL_SLICES, "unused": UNUSED_SLICE}
    assert _MAP_SHAPES == {name: MAPS[name].channels for name in SHADED_MAPS}
    assert MAP_LABELS == {name: spec.label for name, spec in MAPS.items()}
    assert [label for _, label in map_images(material)] == [spec.label for spec in MAPS.values()]
    assert [c.removeprefix("seam_") for c in CSV_COLUMNS if c.startswith("seam_")] == list(MAP_NAMES)
    assert list(seam_scores(material)) == list(MAP_NAMES)
    assert list(map_distribution_distance([material], [material])) == list(MAP_NAMES)
    tensors = {name: t[0] for name, t in material.to_tensors().items()}
    published = StableMaterialsMaterial.from_model_maps(tensors)
    assert {name: image.mode for name, image in published.as_dict().items()} == {n: s.pil_mode for n, s in MAPS.items()}
    assert published.as_tensor().shape[0] == sum(spec.model_channels for spec in MAPS.values())


def test_pipeline_array_outputs_follow_the_table(tiny_pipe):
    generator = torch.Generator().manual_seed(0)
    out = tiny_pipe("bricks", num_inference_steps=1, generator=generator, output_type="pt").images
    assert out.shape[1] == sum(spec.channels for spec in MAPS.values())


def test_an_edited_entry_changes_the_consumers(tmp_path):
    """In a fresh interpreter, change the roughness entry (label, stems, aliases, default, bit depth) before anything
    reads it: file names, loading, defaults, bit depth, MaterialX defaults and the UI's label all follow."""
    pytest.importorskip("MaterialX")
    script = textwrap.dedent(
        f"""
        import dataclasses, json
        from pathlib import Path
        import stablematerials.maps as maps
        maps.MAPS["roughness"] = dataclasses.replace(
            maps.MAPS["roughness"], label="Gloss-free", default=0.25, deep=True,
            stems={{"plain": "rgh", "ambientcg": "{{name}}_RGH", "polyhaven": "{{name}}_rgh"}}, aliases=("rgh",),
        )
        import cv2
        import numpy as np
        from stablematerials.io import find_material_files, load_material, material_files, save_material
        from stablematerials.material import Material
        from stablematerials.studio import MAP_LABELS
        from stablematerials.export.materialx import build_document
        size = 8
        m = Material(np.full((size, size, 3), 0.5), np.dstack([np.zeros((size, size, 2)), np.ones((size, size))]),
                     np.full((size, size), 0.5), np.full((size, size), 0.7), np.zeros((size, size)))
        out = Path({str(tmp_path)!r})
        folder = save_material(m, out / "m")
        files = material_files("m")
        rough = cv2.imread(str(folder / files["roughness"]), cv2.IMREAD_UNCHANGED)
        found = sorted(find_material_files(folder))
        (folder / files["roughness"]).unlink()
        loaded = load_material(folder)
        doc = build_document(folder, out)
        shader = doc.getNodes("standard_surface")[0]
        print(json.dumps({{
            "file": files["roughness"], "dtype": str(rough.dtype), "found": found, "label": MAP_LABELS["roughness"],
            "default": float(loaded.roughness.mean()), "mtlx": shader.getInputValue("specular_roughness"),
        }}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "file": "rgh.png", "dtype": "uint16", "found": ["basecolor", "height", "metallic", "normal_gl", "roughness"],
        "label": "Gloss-free", "default": 0.25, "mtlx": 0.25,
    }  # fmt: skip


def test_seam_score_compares_the_wrap_with_the_strongest_interior_edge():
    from stablematerials.metrics import seam_score

    y = np.arange(64, dtype=np.float64)[:, None] * np.ones((1, 32))
    periodic = 0.5 + 0.4 * np.sin(2 * np.pi * y / 16)
    assert abs(seam_score(periodic, 0) - 1.0) < 0.05 and seam_score(periodic, 1) == 0.0
    ramp = y / 63
    assert seam_score(ramp, 0) > 50  # the whole rise comes back down at the wrap
    assert seam_score(ramp, 1) == 0.0 and seam_score(np.zeros((8, 8)), 0) == 0.0
