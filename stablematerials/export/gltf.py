"""glTF 2.0 binary (`.glb`) export: a plane or sphere wearing the material, textures embedded as PNG.

Follows the glTF 2.0 specification (Khronos): baseColorTexture is sRGB; normalTexture is a tangent-space normal map
with +X right and +Y up in the image (the OpenGL convention), and each vertex carries a TANGENT whose w is the
handedness (bitangent = cross(normal, tangent.xyz) * w); metallicRoughnessTexture reads roughness from G and
metalness from B, and occlusionTexture reads R, so one packed ORM image serves both. UV (0, 0) is the image's
top-left corner.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .. import __version__
from ..io import atomic_write_bytes
from ..material import Material, resize_wrapped
from .textures import encode_png, pack_orm

Shape = Literal["plane", "sphere"]

# glTF enumerations (glTF 2.0 specification, section 5)
_FLOAT, _UNSIGNED_SHORT, _UNSIGNED_INT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
_TRIANGLES = 4


@dataclass(frozen=True)
class MeshData:
    """A triangle mesh: positions, unit normals, tangents (xyz unit, w = +-1), UVs and CCW triangle indices."""

    positions: np.ndarray  # (N, 3) float32, metres, +Y up
    normals: np.ndarray  # (N, 3) float32
    tangents: np.ndarray  # (N, 4) float32
    uvs: np.ndarray  # (N, 2) float32
    indices: np.ndarray  # (M,) uint32, three per triangle


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


def _normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _grid_triangles(rows: int, cols: int, skip_top: bool = False, skip_bottom: bool = False) -> np.ndarray:
    """CCW triangles of a (rows+1) x (cols+1) vertex grid (row index grows with V, column with U)."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = i * (cols + 1) + j  # top-left of each quad
    b, c = a + 1, a + cols + 1
    d = c + 1
    first = np.stack([a, c, b], axis=-1)  # seen from the front (the normal side): counter-clockwise
    second = np.stack([b, c, d], axis=-1)
    keep_first = np.ones((rows, cols), bool)
    keep_second = np.ones((rows, cols), bool)
    if skip_top:  # a and b coincide at a pole: only the second triangle has area
        keep_first[0] = False
    if skip_bottom:  # c and d coincide
        keep_second[-1] = False
    tris = np.concatenate([first[keep_first], second[keep_second]])
    return tris.reshape(-1).astype(np.uint32)


def _sample_wrapped(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a tileable (H, W) map at UV coordinates (any range; the map repeats)."""
    h, w = image.shape
    x = np.asarray(u, np.float64) * w - 0.5
    y = np.asarray(v, np.float64) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(np.int64) % w, y0.astype(np.int64) % h
    x1i, y1i = (x0i + 1) % w, (y0i + 1) % h
    top = image[y0i, x0i] * (1 - fx) + image[y0i, x1i] * fx
    bottom = image[y1i, x0i] * (1 - fx) + image[y1i, x1i] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def plane_mesh(
    size_m: float = 1.0,
    tiling: int = 1,
    segments: int = 1,
    height: np.ndarray | None = None,
    displacement: float = 0.0,
) -> MeshData:
    """A square plane on the ground (XZ, normal +Y), `size_m` wide, UVs repeating `tiling` times.

    With `displacement > 0` each vertex moves up by displacement * (height - 0.5) metres (mid-level 0.5), the
    height map sampled at the vertex UV; normals and tangents then follow the displaced surface.
    """
    n = segments
    frac = np.linspace(0.0, 1.0, n + 1, dtype=np.float64)
    fz, fx = np.meshgrid(frac, frac, indexing="ij")  # rows along +Z (image down), columns along +X
    u, v = fx * tiling, fz * tiling
    y = np.zeros_like(fx)
    if height is not None and displacement > 0:
        y = displacement * (_sample_wrapped(height, u, v).astype(np.float64) - 0.5)
    pos = np.stack([(fx - 0.5) * size_m, y, (fz - 0.5) * size_m], axis=-1)  # (n+1, n+1, 3)
    d_du = np.gradient(pos, axis=1)  # along +U
    d_dv = np.gradient(pos, axis=0)  # along +V (down the image)
    normals = _normalize(np.cross(d_dv, d_du))
    tangents = _normalize(d_du - (normals * d_du).sum(-1, keepdims=True) * normals)
    # The bitangent must point up the image, i.e. along -V.
    w = np.where((np.cross(normals, tangents) * -d_dv).sum(-1) >= 0, 1.0, -1.0)
    return MeshData(
        positions=pos.reshape(-1, 3).astype(np.float32),
        normals=normals.reshape(-1, 3).astype(np.float32),
        tangents=np.concatenate([tangents, w[..., None]], axis=-1).reshape(-1, 4).astype(np.float32),
        uvs=np.stack([u, v], axis=-1).reshape(-1, 2).astype(np.float32),
        indices=_grid_triangles(n, n),
    )


def sphere_mesh(radius: float = 0.5, tiling: int = 1, segments: tuple[int, int] = (64, 32)) -> MeshData:
    """A UV sphere: U runs 2 * `tiling` times around the equator and V `tiling` times pole to pole (square texels
    at the equator). The image's top is towards the north pole (+Y); normals and tangents are analytic."""
    nu, nv = segments
    theta = np.linspace(0.0, math.pi, nv + 1)[:, None]  # polar angle from +Y, one per row
    ju = np.tile(np.arange(nu + 1, dtype=np.float64), (nv + 1, 1))
    # At the poles each vertex sits in the middle of the one wedge that uses it: the north pole's column j serves
    # quad j - 1, the south pole's column j quad j (see `_grid_triangles`); the unused end columns stay in range.
    ju[0] = np.maximum(ju[0] - 0.5, 0.0)
    ju[-1] = np.minimum(ju[-1] + 0.5, nu)
    phi = 2 * math.pi * ju / nu  # longitude, one per column
    sin_t, cos_t = np.sin(theta) * np.ones_like(phi), np.cos(theta) * np.ones_like(phi)
    normals = np.stack([sin_t * np.sin(phi), cos_t, sin_t * np.cos(phi)], axis=-1)
    normals[0] = (0.0, 1.0, 0.0)
    normals[-1] = (0.0, -1.0, 0.0)
    # dP/dphi is (cos phi, 0, -sin phi) up to a factor; -dP/dtheta points north, which cross(N, T) gives: w = +1.
    tangents = np.stack([np.cos(phi), np.zeros_like(phi), -np.sin(phi), np.ones_like(phi)], axis=-1)
    u = ju / nu * 2 * tiling
    v = (theta / math.pi) * np.ones_like(phi) * tiling
    return MeshData(
        positions=(normals * radius).reshape(-1, 3).astype(np.float32),
        normals=normals.reshape(-1, 3).astype(np.float32),
        tangents=tangents.reshape(-1, 4).astype(np.float32),
        uvs=np.stack([u, v], axis=-1).reshape(-1, 2).astype(np.float32),
        indices=_grid_triangles(nv, nu, skip_top=True, skip_bottom=True),
    )


# ----------------------------------------------------------------------------------------------
# Binary glTF assembly
# ----------------------------------------------------------------------------------------------


class _BinaryBuilder:
    """Collects buffer views (4-byte aligned) and accessors for the single GLB binary chunk."""

    def __init__(self, gltf) -> None:
        import pygltflib

        self.gltf = gltf
        self.pg = pygltflib
        self.blob = bytearray()

    def view(self, data: bytes, target: int | None = None) -> int:
        offset = len(self.blob)
        self.blob += data
        self.blob += b"\x00" * (-len(self.blob) % 4)
        self.gltf.bufferViews.append(
            self.pg.BufferView(buffer=0, byteOffset=offset, byteLength=len(data), target=target)
        )
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, accessor_type: str, target: int, with_bounds: bool = False) -> int:
        if array.dtype == np.float32:
            component = _FLOAT
        elif array.dtype == np.uint16:
            component = _UNSIGNED_SHORT
        else:
            component = _UNSIGNED_INT
        view = self.view(np.ascontiguousarray(array).tobytes(), target)
        flat = array.reshape(len(array), -1)
        self.gltf.accessors.append(
            self.pg.Accessor(
                bufferView=view,
                componentType=component,
                count=len(array),
                type=accessor_type,
                min=flat.min(axis=0).tolist() if with_bounds else None,
                max=flat.max(axis=0).tolist() if with_bounds else None,
            )
        )
        return len(self.gltf.accessors) - 1

    def image(self, png: bytes, name: str) -> int:
        self.gltf.images.append(self.pg.Image(bufferView=self.view(png), mimeType="image/png", name=name))
        self.gltf.textures.append(self.pg.Texture(sampler=0, source=len(self.gltf.images) - 1, name=name))
        return len(self.gltf.textures) - 1


def _check_options(shape: str, size_m: float, tiling: int, displacement: float, texture_size: int | None) -> None:
    if shape not in ("plane", "sphere"):
        raise ValueError(f"shape must be 'plane' or 'sphere', got {shape!r}")
    if not isinstance(size_m, (int, float)) or not math.isfinite(size_m) or size_m <= 0:
        raise ValueError(f"size_m must be a positive number of metres, got {size_m!r}")
    if not isinstance(tiling, int) or isinstance(tiling, bool) or tiling < 1:
        raise ValueError(f"tiling must be a positive integer, got {tiling!r}")
    if not isinstance(displacement, (int, float)) or not math.isfinite(displacement) or displacement < 0:
        raise ValueError(f"displacement must be a number >= 0 (metres), got {displacement!r}")
    if texture_size is not None and (not isinstance(texture_size, int) or texture_size < 1):
        raise ValueError(f"texture_size must be a positive integer or None, got {texture_size!r}")


def glb_bytes(
    material: Material,
    *,
    shape: Shape = "plane",
    size_m: float = 1.0,
    tiling: int = 1,
    displacement: float = 0.0,
    texture_size: int | None = None,
    ao: np.ndarray | None = None,
    segments: int | None = None,
    name: str | None = None,
) -> bytes:
    """The material on a plane or sphere as glTF 2.0 binary bytes (see `export_glb`)."""
    import pygltflib

    _check_options(shape, size_m, tiling, displacement, texture_size)
    if displacement > 0 and shape != "plane":
        raise ValueError("displacement is only supported on the plane shape")
    if texture_size is not None and (texture_size, texture_size) != material.size:
        if ao is not None:
            ao = pack_orm(material, ao)[..., 0]  # checks the shape
            ao = resize_wrapped(torch.from_numpy(ao)[None, None], (texture_size, texture_size))[0, 0].numpy()
        material = material.resize(texture_size)
    label = name or str(material.metadata.get("name") or "material")

    if shape == "sphere":
        mesh = sphere_mesh(size_m / 2, tiling)
    else:
        if segments is None:
            segments = min(256, material.size[1] * tiling) if displacement > 0 else 1
        if not isinstance(segments, int) or segments < 1:
            raise ValueError(f"segments must be a positive integer, got {segments!r}")
        mesh = plane_mesh(size_m, tiling, segments, material.height, displacement)

    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator=f"stablematerials {__version__}"))
    gltf.samplers.append(
        pygltflib.Sampler(magFilter=_LINEAR, minFilter=_LINEAR_MIPMAP_LINEAR, wrapS=_REPEAT, wrapT=_REPEAT)
    )
    binary = _BinaryBuilder(gltf)
    indices = mesh.indices.astype(np.uint16) if len(mesh.positions) < 65536 else mesh.indices
    attributes = pygltflib.Attributes(
        POSITION=binary.accessor(mesh.positions, "VEC3", _ARRAY_BUFFER, with_bounds=True),
        NORMAL=binary.accessor(mesh.normals, "VEC3", _ARRAY_BUFFER),
        TANGENT=binary.accessor(mesh.tangents, "VEC4", _ARRAY_BUFFER),
        TEXCOORD_0=binary.accessor(mesh.uvs, "VEC2", _ARRAY_BUFFER),
    )
    index_accessor = binary.accessor(indices, "SCALAR", _ELEMENT_ARRAY_BUFFER)

    base = binary.image(encode_png(material.basecolor), "basecolor")
    normal = binary.image(encode_png(material.encoded("normal", "opengl")), "normal")
    orm = binary.image(encode_png(pack_orm(material, ao)), "occlusion_roughness_metallic")
    gltf.materials.append(
        pygltflib.Material(
            name=label,
            pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                baseColorTexture=pygltflib.TextureInfo(index=base),
                metallicFactor=1.0,
                roughnessFactor=1.0,
                metallicRoughnessTexture=pygltflib.TextureInfo(index=orm),
            ),
            normalTexture=pygltflib.NormalMaterialTexture(index=normal, scale=1.0),
            occlusionTexture=pygltflib.OcclusionTextureInfo(index=orm, strength=1.0) if ao is not None else None,
        )
    )
    gltf.meshes.append(
        pygltflib.Mesh(
            name=label,
            primitives=[
                pygltflib.Primitive(attributes=attributes, indices=index_accessor, material=0, mode=_TRIANGLES)
            ],
        )
    )
    gltf.nodes.append(pygltflib.Node(mesh=0, name=label))
    gltf.scenes.append(pygltflib.Scene(nodes=[0]))
    gltf.scene = 0
    gltf.buffers.append(pygltflib.Buffer(byteLength=len(binary.blob)))
    gltf.set_binary_blob(bytes(binary.blob))
    data = b"".join(gltf.save_to_bytes())
    (length,) = struct.unpack_from("<I", data, 8)
    if length != len(data):  # pragma: no cover - guards against a pygltflib change
        raise RuntimeError(f"GLB header says {length} bytes, wrote {len(data)}")
    return data


def export_glb(
    material: Material,
    path: str | os.PathLike,
    *,
    shape: Shape = "plane",
    size_m: float = 1.0,
    tiling: int = 1,
    displacement: float = 0.0,
    texture_size: int | None = None,
    ao: np.ndarray | None = None,
    segments: int | None = None,
    name: str | None = None,
) -> Path:
    """Write the material on a plane (or sphere) `size_m` metres across as a `.glb`, atomically; return the path.

    Textures: base colour (sRGB), OpenGL normal map, packed ORM as metallicRoughness (G roughness, B metallic) and,
    when `ao` is given, as occlusion (R). UVs repeat the material `tiling` times; `displacement` (metres, plane
    only) raises a subdivided plane by the height map; `texture_size` resizes the maps (wrapped filtering).
    """
    path = Path(path)
    data = glb_bytes(
        material,
        shape=shape,
        size_m=size_m,
        tiling=tiling,
        displacement=displacement,
        texture_size=texture_size,
        ao=ao,
        segments=segments,
        name=name or path.stem,
    )
    atomic_write_bytes(path, data)
    return path
