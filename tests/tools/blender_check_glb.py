"""Run inside Blender: import a .glb and report how its first material's Principled BSDF is wired, as JSON.

Usage: blender --background --factory-startup --python-exit-code 3 --python blender_check_glb.py -- FILE.glb
Prints one line `GLB_CHECK {json}`: for each Principled BSDF input of interest, the chain of node types that
feeds it back to an image texture (and that image's size and colour space).
"""

import json
import sys

import numpy as np

# Debian bookworm's Blender 3.4 importer uses numpy.bool, which numpy >= 1.24 removed (fixed upstream in 3.5).
if not hasattr(np, "bool"):
    np.bool = bool

import bpy  # noqa: E402


def upstream_chain(socket, depth=0):
    """Node types from a socket back to the first image texture: e.g. ['SEPRGB', 'TEX_IMAGE']."""
    if not socket.is_linked or depth > 6:
        return []
    node = socket.links[0].from_node
    if node.type == "TEX_IMAGE":
        return [
            {
                "type": node.type,
                "image": node.image.name if node.image else None,
                "size": list(node.image.size) if node.image else None,
                "colorspace": node.image.colorspace_settings.name if node.image else None,
                "from_socket": socket.links[0].from_socket.name,
            }
        ]
    link_socket = socket.links[0].from_socket.name
    for inp in node.inputs:
        chain = upstream_chain(inp, depth + 1)
        if chain:
            return [{"type": node.type, "from_socket": link_socket}] + chain
    return [{"type": node.type, "from_socket": link_socket}]


def main():
    path = sys.argv[sys.argv.index("--") + 1]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.import_scene.gltf(filepath=path)
    report = {"import": sorted(result), "objects": [], "materials": []}
    for obj in bpy.context.scene.objects:
        entry = {"name": obj.name, "type": obj.type}
        if obj.type == "MESH":
            mesh = obj.data
            entry.update(
                {
                    "vertices": len(mesh.vertices),
                    "polygons": len(mesh.polygons),
                    "uv_layers": [uv.name for uv in mesh.uv_layers],
                }
            )
        report["objects"].append(entry)
    for mat in bpy.data.materials:
        if not mat.use_nodes:
            continue
        bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
        if bsdf is None:
            continue
        wiring = {name: upstream_chain(bsdf.inputs[name]) for name in ("Base Color", "Roughness", "Metallic", "Normal")}
        report["materials"].append({"name": mat.name, "inputs": wiring})
    print("GLB_CHECK " + json.dumps(report))


main()
