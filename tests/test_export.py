"""Export: packed ORM, glTF binary (structure, Khronos validator, Blender import), MaterialX, the export command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pygltflib
import pytest

from stablematerials import Material, load_material, save_material
from stablematerials.cli import main as cli_main
from stablematerials.export import export_glb, export_mtlx, export_texture_set, glb_bytes, orm_file_name, pack_orm
from stablematerials.export.materialx import build_document, validate_document

TOOLS = Path(__file__).parent / "tools"


def make_material(size: int = 32, seed: int = 0) -> Material:
    """A small seeded material with distinct values in every map (normal derived from height)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    height = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(4 * np.pi * yy)
    flat = np.dstack([np.zeros((size, size)), np.zeros((size, size)), np.ones((size, size))])
    m = Material(
        basecolor=rng.random((size, size, 3)),
        normal=flat,
        height=height,
        roughness=0.2 + 0.6 * xx,
        metallic=(yy > 0.5).astype(np.float32),
        metadata={"prompt": "test"},
    )
    return m.with_normal_from_height(strength=8.0)


def decode_png(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None
    return pixels[..., ::-1] if pixels.ndim == 3 else pixels  # BGR -> RGB


def accessor_array(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16}[acc.componentType]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc.type]
    start = view.byteOffset + (acc.byteOffset or 0)
    arr = np.frombuffer(blob, dtype, count=acc.count * width, offset=start)
    return arr.reshape(acc.count, width) if width > 1 else arr


def image_of_texture(gltf: pygltflib.GLTF2, blob: bytes, texture_index: int) -> np.ndarray:
    image = gltf.images[gltf.textures[texture_index].source]
    view = gltf.bufferViews[image.bufferView]
    assert image.mimeType == "image/png"
    return decode_png(blob[view.byteOffset : view.byteOffset + view.byteLength])


def load_glb(data: bytes) -> tuple[pygltflib.GLTF2, bytes]:
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    return gltf, gltf.binary_blob()


# ----------------------------------------------------------------------------------------------
# ORM
# ----------------------------------------------------------------------------------------------


def test_pack_orm_channels_and_ao():
    m = make_material()
    orm = pack_orm(m)
    assert orm.shape == (32, 32, 3) and orm.dtype == np.float32
    np.testing.assert_array_equal(orm[..., 0], 1.0)
    np.testing.assert_array_equal(orm[..., 1], m.roughness)
    np.testing.assert_array_equal(orm[..., 2], m.metallic)
    ao = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    np.testing.assert_array_equal(pack_orm(m, ao)[..., 0], ao)
    with pytest.raises(ValueError, match="ambient occlusion map has shape"):
        pack_orm(m, np.ones((16, 16)))


def test_texture_set_presets_orm_and_directx(tmp_path):
    m = make_material()
    out = export_texture_set(
        m, tmp_path / "Bricks", naming="polyhaven", normal_convention="directx", bit_depth=8, orm=True
    )
    names = sorted(p.name for p in out.iterdir())
    assert "Bricks_arm.png" in names and "Bricks_nor_dx.png" in names and "Bricks_diff.png" in names
    arm = decode_png((out / "Bricks_arm.png").read_bytes())
    np.testing.assert_array_equal(arm[..., 1], np.round(m.roughness * 255))
    np.testing.assert_array_equal(arm[..., 2], np.round(m.metallic * 255))
    back = load_material(out)  # the DirectX normal is read back as OpenGL
    assert np.abs(back.normal - m.normal).max() < 0.02
    assert orm_file_name("ambientcg", "X") == "X_ORM.png"
    with pytest.raises(ValueError, match="unknown naming preset"):
        orm_file_name("unreal", "X")


# ----------------------------------------------------------------------------------------------
# glb structure (pygltflib, every run)
# ----------------------------------------------------------------------------------------------


def check_mesh_frames(gltf: pygltflib.GLTF2, blob: bytes) -> dict[str, np.ndarray]:
    """Assert unit normals/tangents, w = +-1, CCW winding and tangents along +U, bitangents up the image (-V)."""
    prim = gltf.meshes[0].primitives[0]
    pos = accessor_array(gltf, blob, prim.attributes.POSITION)
    nrm = accessor_array(gltf, blob, prim.attributes.NORMAL)
    tan = accessor_array(gltf, blob, prim.attributes.TANGENT)
    uv = accessor_array(gltf, blob, prim.attributes.TEXCOORD_0)
    idx = accessor_array(gltf, blob, prim.indices).astype(np.int64).reshape(-1, 3)
    acc = gltf.accessors[prim.attributes.POSITION]
    np.testing.assert_allclose(acc.min, pos.min(0), atol=1e-6)
    np.testing.assert_allclose(acc.max, pos.max(0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(tan[:, :3], axis=1), 1.0, atol=1e-5)
    assert set(np.unique(tan[:, 3])) <= {-1.0, 1.0}
    assert np.abs((nrm * tan[:, :3]).sum(1)).max() < 1e-4  # tangent is perpendicular to the normal
    p0, p1, p2 = pos[idx[:, 0]], pos[idx[:, 1]], pos[idx[:, 2]]
    face = np.cross(p1 - p0, p2 - p0)
    area = np.linalg.norm(face, axis=1)
    assert area.min() > 0, "degenerate triangles"
    vertex_n = nrm[idx].mean(1)
    assert ((face * vertex_n).sum(1) > 0).all(), "triangles must wind counter-clockwise seen from the normal side"
    # Per-triangle dP/du and dP/dv from the UVs (the standard tangent-frame derivation).
    e1, e2 = p1 - p0, p2 - p0
    d1, d2 = uv[idx[:, 1]] - uv[idx[:, 0]], uv[idx[:, 2]] - uv[idx[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    dpdu = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / det[:, None]
    dpdv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / det[:, None]
    t = tan[idx, :3].mean(1)
    bitangent = np.cross(nrm[idx], tan[idx, :3]) * tan[idx, 3:4]
    assert ((t * dpdu).sum(1) > 0).all(), "tangent must point along +U (image right)"
    assert ((bitangent.mean(1) * dpdv).sum(1) < 0).all(), "bitangent must point up the image (-V), OpenGL normals"
    return {"pos": pos, "nrm": nrm, "uv": uv, "idx": idx}


def test_glb_plane_structure_and_textures(tmp_path):
    m = make_material()
    path = export_glb(m, tmp_path / "plane.glb", tiling=3, size_m=2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["plane.glb"]  # written atomically, no temporary left
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    gltf, blob = load_glb(data)
    assert gltf.asset.version == "2.0"
    assert len(gltf.buffers) == 1 and gltf.buffers[0].byteLength == len(blob)
    assert all(v.byteOffset % 4 == 0 and v.byteOffset + v.byteLength <= len(blob) for v in gltf.bufferViews)
    assert len(gltf.images) == 3 and all(img.mimeType == "image/png" for img in gltf.images)
    sampler = gltf.samplers[0]
    assert (sampler.wrapS, sampler.wrapT) == (10497, 10497)  # REPEAT: the material tiles
    assert all(tex.sampler == 0 for tex in gltf.textures)

    mat = gltf.materials[0]
    pbr = mat.pbrMetallicRoughness
    assert mat.name == "plane"
    assert pbr.metallicFactor == 1.0 and pbr.roughnessFactor == 1.0 and pbr.baseColorFactor == [1, 1, 1, 1]
    assert mat.occlusionTexture is None  # no AO computed: R is white and not referenced
    # baseColor is sRGB as stored (no conversion); normal OpenGL 0.5 n + 0.5; ORM: G roughness, B metallic (linear).
    base = image_of_texture(gltf, blob, pbr.baseColorTexture.index)
    np.testing.assert_array_equal(base, np.round(m.basecolor * 255))
    normal = image_of_texture(gltf, blob, mat.normalTexture.index)
    np.testing.assert_array_equal(normal, np.round(m.encoded("normal", "opengl") * 255))
    orm = image_of_texture(gltf, blob, pbr.metallicRoughnessTexture.index)
    np.testing.assert_array_equal(orm[..., 0], 255)
    np.testing.assert_array_equal(orm[..., 1], np.round(m.roughness * 255))
    np.testing.assert_array_equal(orm[..., 2], np.round(m.metallic * 255))
    assert len({pbr.baseColorTexture.index, mat.normalTexture.index, pbr.metallicRoughnessTexture.index}) == 3

    frames = check_mesh_frames(gltf, blob)
    np.testing.assert_allclose(frames["uv"].min(0), [0, 0])
    np.testing.assert_allclose(frames["uv"].max(0), [3, 3])  # tiles 3 times
    np.testing.assert_allclose(frames["pos"].min(0), [-1, 0, -1])
    np.testing.assert_allclose(frames["pos"].max(0), [1, 0, 1])
    np.testing.assert_allclose(frames["nrm"], np.tile([0, 1, 0], (len(frames["nrm"]), 1)), atol=1e-6)


def test_glb_sphere_displacement_ao_and_texture_size(tmp_path):
    m = make_material()
    gltf, blob = load_glb(glb_bytes(m, shape="sphere", tiling=2, size_m=1.0))
    frames = check_mesh_frames(gltf, blob)
    np.testing.assert_allclose(np.linalg.norm(frames["pos"], axis=1), 0.5, atol=1e-5)
    np.testing.assert_allclose(frames["uv"].min(0), [0, 0], atol=1e-6)
    np.testing.assert_allclose(frames["uv"].max(0), [4, 2], atol=1e-6)  # 2x tiling around, 1x pole to pole

    ao = np.full((32, 32), 0.25, np.float32)
    gltf, blob = load_glb(glb_bytes(m, displacement=0.2, ao=ao, segments=16, texture_size=16))
    frames = check_mesh_frames(gltf, blob)
    assert len(frames["pos"]) == 17 * 17
    y = frames["pos"][:, 1]
    assert 0.2 * (m.height.min() - 0.5) - 1e-3 <= y.min() < y.max() <= 0.2 * (m.height.max() - 0.5) + 1e-3
    assert y.max() - y.min() > 0.05  # really displaced
    assert not np.allclose(frames["nrm"], [0, 1, 0])  # normals follow the surface
    mat = gltf.materials[0]
    assert mat.occlusionTexture.index == mat.pbrMetallicRoughness.metallicRoughnessTexture.index
    orm = image_of_texture(gltf, blob, mat.occlusionTexture.index)
    assert orm.shape == (16, 16, 3)
    np.testing.assert_array_equal(orm[..., 0], 64)  # round(0.25 * 255)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": "cube"}, "shape must be"),
        ({"tiling": 0}, "tiling must be"),
        ({"size_m": -1.0}, "size_m must be"),
        ({"displacement": float("nan")}, "displacement must be"),
        ({"shape": "sphere", "displacement": 0.1}, "only supported on the plane"),
        ({"texture_size": 0}, "texture_size must be"),
    ],
)
def test_glb_rejects_bad_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_glb(make_material(16), tmp_path / "x.glb", **kwargs)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# Khronos glTF validator and Blender (where installed)
# ----------------------------------------------------------------------------------------------


def _validator_env() -> dict[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
    if not (Path(root) / "gltf-validator").is_dir():
        return None
    return os.environ | {"NODE_PATH": root}


def validate_with_khronos(path: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        ["node", str(TOOLS / "validate_gltf.js"), str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_khronos_validator_reports_no_errors(tmp_path):
    env = _validator_env()
    if env is None:
        pytest.skip("Khronos glTF validator not installed (needs node and `npm install -g gltf-validator`)")
    m = make_material()
    files = [
        export_glb(m, tmp_path / "plane.glb", tiling=2),
        export_glb(m, tmp_path / "sphere.glb", shape="sphere"),
        export_glb(m, tmp_path / "displaced.glb", displacement=0.1, ao=np.full((32, 32), 0.5, np.float32)),
    ]
    for path in files:
        issues = validate_with_khronos(path, env)["issues"]
        assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, (path.name, issues["messages"])
    # The check can fail: a file whose normal texture points nowhere is reported.
    gltf, blob = load_glb(files[0].read_bytes())
    gltf.materials[0].normalTexture.index = 17
    gltf.set_binary_blob(blob)
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"".join(gltf.save_to_bytes()))
    assert validate_with_khronos(broken, env)["issues"]["numErrors"] > 0


def test_blender_imports_glb_with_textures_wired(tmp_path):
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip("Blender not installed (apt-get install blender python3-numpy)")
    path = export_glb(make_material(), tmp_path / "wired.glb", tiling=2)
    # Debian's Blender embeds the system Python and finds its home through the first python3 on PATH: put the
    # folder of the Blender binary (where the system python3 lives too) first, ahead of any other Python.
    bin_dir = str(Path(os.path.realpath(blender)).parent)
    env = os.environ | {"PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    proc = subprocess.run(
        [blender, "--background", "--factory-startup", "--python-exit-code", "3",
         "--python", str(TOOLS / "blender_check_glb.py"), "--", str(path)],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("GLB_CHECK ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(lines[-1][len("GLB_CHECK ") :])
    assert report["import"] == ["FINISHED"]
    mesh = next(o for o in report["objects"] if o["type"] == "MESH")
    assert mesh["polygons"] == 2 and mesh["uv_layers"]
    (material,) = report["materials"]
    wiring = material["inputs"]
    base = wiring["Base Color"]
    assert [n["type"] for n in base] == ["TEX_IMAGE"] and base[0]["colorspace"] == "sRGB"
    for socket, channel in (("Roughness", "Green"), ("Metallic", "Blue")):
        chain = wiring[socket]
        assert chain[0]["type"] in ("SEPRGB", "SEPARATE_COLOR") and chain[0]["from_socket"] == channel, chain
        assert chain[-1]["type"] == "TEX_IMAGE" and chain[-1]["colorspace"] == "Non-Color"
    normal = wiring["Normal"]
    assert [n["type"] for n in normal] == ["NORMAL_MAP", "TEX_IMAGE"] and normal[-1]["colorspace"] == "Non-Color"
    assert normal[-1]["size"] == [32, 32]


# ----------------------------------------------------------------------------------------------
# MaterialX
# ----------------------------------------------------------------------------------------------


def test_mtlx_document_is_valid_and_references_the_maps(tmp_path):
    import MaterialX as mx

    folder = save_material(make_material(), tmp_path / "lib" / "Rock", naming="ambientcg", normal_convention="directx")
    doc_path = export_mtlx(folder, tmp_path / "docs" / "rock.mtlx")
    doc = mx.createDocument()
    mx.readFromXmlFile(doc, str(doc_path))
    assert validate_document(doc)[0]
    images = {n.getName(): n for n in doc.getNodeGraphs()[0].getNodes("image")}
    assert set(images) == {"basecolor_image", "roughness_image", "metallic_image", "normal_image", "height_image"}
    for node in images.values():
        rel = node.getInput("file").getValueString()
        assert not Path(rel).is_absolute() and (doc_path.parent / rel).resolve().is_file(), rel
    assert images["basecolor_image"].getInput("file").getColorSpace() == "srgb_texture"
    assert images["normal_image"].getInput("file").getValueString().endswith("Rock_NormalDX.png")
    graph = doc.getNodeGraphs()[0]
    assert graph.getNodes("normalmap") and graph.getNodes("multiply")  # DirectX green flipped before normalmap
    shader = doc.getNodes("standard_surface")[0]
    assert shader.getInput("normal").getConnectedOutput().getConnectedNode().getCategory() == "normalmap"
    assert doc.getMaterialNodes()[0].getInput("displacementshader") is not None


def test_mtlx_from_material_and_validation_can_fail(tmp_path):
    import MaterialX as mx

    path = export_mtlx(make_material(16), tmp_path / "m.mtlx")
    assert (tmp_path / "m" / "basecolor.png").is_file()
    doc = mx.createDocument()
    mx.readFromXmlFile(doc, str(path))
    images = doc.getNodeGraphs()[0].getNodes("image")
    assert {n.getInput("file").getValueString() for n in images} >= {"m/basecolor.png", "m/normal.png"}
    # A wrongly typed connection is caught by the same validation.
    bad = build_document(tmp_path / "m", tmp_path)
    bad.getNodes("standard_surface")[0].getInput("specular_roughness").setConnectedOutput(
        bad.getNodeGraphs()[0].getOutput("base_color_output")  # a color3 output into a float input
    )
    assert not validate_document(bad)[0]
    with pytest.raises(ValueError, match="must end in .mtlx"):
        export_mtlx(tmp_path / "m", tmp_path / "m.xml")


# ----------------------------------------------------------------------------------------------
# The export command
# ----------------------------------------------------------------------------------------------


def test_export_command_converts_a_folder(tmp_path, capsys):
    m = make_material()
    src = save_material(m, tmp_path / "src" / "Tiles")
    out = tmp_path / "ambient" / "Tiles"
    assert (
        cli_main(
            [
                "export",
                str(src),
                "--to",
                "ambientcg",
                "--out",
                str(out),
                "--normal",
                "both",
                "--bit-depth",
                "8",
                "--orm",
            ]
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "Tiles_Color.png",
        "Tiles_NormalGL.png",
        "Tiles_NormalDX.png",
        "Tiles_ORM.png",
        "Tiles_Displacement.png",
    } <= names
    height = cv2.imread(str(out / "Tiles_Displacement.png"), cv2.IMREAD_UNCHANGED)
    assert height.dtype == np.uint8  # --bit-depth 8
    back = load_material(out)
    np.testing.assert_allclose(back.roughness, m.roughness, atol=1 / 255)

    glb = tmp_path / "tiles.glb"
    assert cli_main(["export", str(src), "--to", "glb", "--out", str(glb), "--shape", "sphere", "--tiling", "2"]) == 0
    gltf, blob = load_glb(glb.read_bytes())
    assert len(accessor_array(gltf, blob, gltf.meshes[0].primitives[0].attributes.POSITION)) > 1000  # a sphere

    mtlx = tmp_path / "tiles.mtlx"
    assert cli_main(["export", str(src), "--to", "mtlx", "--out", str(mtlx)]) == 0
    assert "standard_surface" in mtlx.read_text()
    capsys.readouterr()

    assert cli_main(["export", str(src), "--to", "glb", "--out", str(tmp_path / "x.glb"), "--normal", "directx"]) == 2
    assert "--normal do(es) not apply to --to glb" in capsys.readouterr().err
    assert cli_main(["export", str(tmp_path / "nowhere"), "--to", "plain", "--out", str(tmp_path / "y")]) == 2


# ----------------------------------------------------------------------------------------------
# The registry of export formats
# ----------------------------------------------------------------------------------------------


def test_every_registered_format_is_offered_by_the_command_and_writes(tmp_path, capsys):
    from stablematerials.export import EXPORT_FORMATS, folder_formats
    from stablematerials.io import NAMING_PRESETS

    assert [f.name for f in folder_formats()] == list(NAMING_PRESETS)  # a folder format per naming preset
    src = save_material(make_material(), tmp_path / "src" / "Tiles")
    with pytest.raises(SystemExit):  # argparse: --to takes the registered names only
        cli_main(["export", str(src), "--to", "fbx", "--out", str(tmp_path / "x.fbx")])
    assert "--to {" + ",".join(EXPORT_FORMATS) + "}" in capsys.readouterr().err  # the usage line
    for fmt in EXPORT_FORMATS.values():
        out = tmp_path / fmt.name / ("Tiles" + (fmt.suffix or ""))
        assert cli_main(["export", str(src), "--to", fmt.name, "--out", str(out)]) == 0, capsys.readouterr().err
        assert out.is_dir() if fmt.is_folder else out.is_file()
        if fmt.is_folder:  # the folder holds the preset's file names and reads back as the same material
            assert np.abs(load_material(out).roughness - load_material(src).roughness).max() == 0


def test_registry_refuses_what_a_format_does_not_take(tmp_path):
    from stablematerials.export import folder_format, get_format

    m = make_material()
    with pytest.raises(ValueError, match="orm do\\(es\\) not apply to glb"):
        get_format("glb").write(m, tmp_path / "a.glb", orm=True)
    with pytest.raises(ValueError, match="a glb file must end in .glb"):
        get_format("glb").write(m, tmp_path / "a.gltf")
    with pytest.raises(ValueError, match="unknown export format 'fbx'; expected one of glb, mtlx, plain"):
        get_format("fbx")
    with pytest.raises(ValueError, match="unknown naming preset 'glb'; expected one of plain, ambientcg, polyhaven"):
        folder_format("glb")
    with pytest.raises(ValueError, match="mtlx is not written as one file"):
        get_format("mtlx").encode(m)
    assert get_format("glb").encode(m, name="x")[:4] == b"glTF"
