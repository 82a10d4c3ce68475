"""MaterialX (`.mtlx`) export: a standard_surface material whose image nodes read a material folder's maps.

Written with the maintained `materialx` package (ASWF) and validated against its standard node library. Files are
referenced by paths relative to the `.mtlx` file, so the document and the folder move together. MaterialX
tangent-space normal maps follow the OpenGL convention (+Y up); a DirectX-only folder gets its green channel
flipped by nodes in the graph.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..io import METADATA_FILE, atomic_write_text, find_material_files, save_material
from ..maps import MAPS
from ..material import Material

logger = logging.getLogger(__name__)

MATERIALX_FILE_EXTENSION = ".mtlx"
_COLOR_SPACES = {"srgb": "srgb_texture"}  # MaterialX's name of a map encoding's colour space
# The standard_surface inputs the grey maps drive: map -> (input, name of the graph output feeding it)
_GREY_INPUTS = {"roughness": ("specular_roughness", "roughness"), "metallic": ("metalness", "metalness")}


def _materialx():
    """The MaterialX module, with a clear message when the `export` extra is missing."""
    try:
        import MaterialX
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("MaterialX export needs `pip install materialx` (extra: export)") from e
    return MaterialX


def standard_library():
    """The MaterialX standard data library (node definitions), loaded from the installed package."""
    mx = _materialx()
    library = mx.createDocument()
    mx.loadLibraries(mx.getDefaultDataLibraryFolders(), mx.getDefaultDataSearchPath(), library)
    return library


def _normal_file(folder: Path, files: dict[str, Path]) -> tuple[Path | None, bool]:
    """The normal map file of a folder and whether it is DirectX (green down)."""
    convention = None
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        try:
            convention = json.loads(meta_path.read_text()).get("normal_convention")
        except json.JSONDecodeError:
            convention = None
    if "normal_gl" in files:
        return files["normal_gl"], convention == "directx"
    if "normal_dx" in files:
        return files["normal_dx"], True
    return None, False


def _material_name(folder: Path) -> str:
    """A valid MaterialX element name for the folder's material."""
    return _materialx().createValidName(folder.name) or "material"


def build_document(folder: str | os.PathLike, relative_to: str | os.PathLike, displacement_scale: float = 0.05):
    """A MaterialX document (standard_surface + surfacematerial) for the maps of a material folder.

    File paths are written relative to the folder `relative_to` (where the `.mtlx` will live).
    """
    mx = _materialx()
    folder = Path(folder)
    files = find_material_files(folder)
    if "basecolor" not in files:
        raise ValueError(f"{folder} has no basecolor map to reference")
    name = _material_name(folder)
    base_dir = Path(relative_to)

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), base_dir.resolve())).as_posix()

    doc = mx.createDocument()
    doc.setColorSpace("lin_rec709")
    graph = doc.addNodeGraph(f"NG_{name}")

    def image(label: str, path: Path, node_type: str, colorspace: str | None = None):
        node = graph.addNode("image", f"{label}_image", node_type)
        file_input = node.addInput("file", "filename")
        file_input.setValueString(rel(path))
        if colorspace:
            file_input.setColorSpace(colorspace)
        return node

    def output(label: str, node, node_type: str):
        out = graph.addOutput(f"{label}_output", node_type)
        out.setConnectedNode(node)
        return out

    shader = doc.addNode("standard_surface", f"SR_{name}", "surfaceshader")
    shader.setInputValue("base", 1.0, "float")
    base = image("basecolor", files["basecolor"], "color3", _COLOR_SPACES[MAPS["basecolor"].encoding])
    shader.addInput("base_color", "color3").setConnectedOutput(output("base_color", base, "color3"))

    for map_name, (input_name, output_name) in _GREY_INPUTS.items():
        if map_name in files:
            node = image(map_name, files[map_name], "float")
            shader.addInput(input_name, "float").setConnectedOutput(output(output_name, node, "float"))
        else:  # what a folder without the map reads as (the map table's default)
            shader.setInputValue(input_name, float(MAPS[map_name].default), "float")

    normal_path, directx = _normal_file(folder, files)
    if normal_path is not None:
        encoded = image("normal", normal_path, "vector3")
        if directx:  # n_gl = (r, 1 - g, b) in encoded [0, 1] values
            flip = graph.addNode("multiply", "normal_flip_green", "vector3")
            flip.addInput("in1", "vector3").setConnectedNode(encoded)
            flip.setInputValue("in2", mx.Vector3(1.0, -1.0, 1.0), "vector3")
            shift = graph.addNode("add", "normal_to_opengl", "vector3")
            shift.addInput("in1", "vector3").setConnectedNode(flip)
            shift.setInputValue("in2", mx.Vector3(0.0, 1.0, 0.0), "vector3")
            encoded = shift
        normal_map = graph.addNode("normalmap", "normal_map", "vector3")
        normal_map.addInput("in", "vector3").setConnectedNode(encoded)
        shader.addInput("normal", "vector3").setConnectedOutput(output("normal", normal_map, "vector3"))

    material = doc.addMaterialNode(f"M_{name}", shader)
    if "height" in files:
        height = image("height", files["height"], "float")
        disp = doc.addNode("displacement", f"DISP_{name}", "displacementshader")
        disp.addInput("displacement", "float").setConnectedOutput(output("height", height, "float"))
        disp.setInputValue("scale", float(displacement_scale), "float")
        material.addInput("displacementshader", "displacementshader").setConnectedNode(disp)
    return doc


def validate_document(doc) -> tuple[bool, str]:
    """Validate a document against the MaterialX standard library: (valid, messages)."""
    mx = _materialx()
    checked = mx.createDocument()
    checked.copyContentFrom(doc)
    checked.importLibrary(standard_library())
    valid, message = checked.validate()
    return bool(valid), message


def export_mtlx(
    material_dir_or_material: str | os.PathLike | Material,
    path: str | os.PathLike,
    *,
    displacement_scale: float = 0.05,
) -> Path:
    """Write a validated `.mtlx` document referencing a material folder's maps by relative path; return its path.

    A `Material` is first saved (plain naming, 16-bit) into a folder beside the document named like it
    (`out/bricks.mtlx` -> `out/bricks/`).
    """
    mx = _materialx()
    path = Path(path)
    if path.suffix.lower() != MATERIALX_FILE_EXTENSION:
        raise ValueError(f"a MaterialX document must end in .mtlx, got {str(path)!r}")
    if isinstance(material_dir_or_material, Material):
        folder = save_material(material_dir_or_material, path.with_suffix(""))
    else:
        folder = Path(material_dir_or_material)
        if not folder.is_dir():
            raise ValueError(f"{str(folder)!r} is not a material folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = build_document(folder, path.parent, displacement_scale)
    valid, message = validate_document(doc)
    if not valid:
        raise RuntimeError(f"the MaterialX document for {folder} does not validate: {message}")
    atomic_write_text(path, mx.writeToXmlString(doc))
    logger.info("wrote %s", path)
    return path
