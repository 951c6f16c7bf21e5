"""Triangle-mesh files: Wavefront OBJ (+ MTL and texture image) and Stanford PLY.

`Mesh` is what the readers return. OBJ keeps texture coordinates with their own indices (``vt``), so a
mesh read from OBJ carries ``uv_coords`` (T, 2) and ``face_uv`` (F, 3) and, when every vertex has a single
UV, also per-vertex ``uv`` (N, 2). Polygons are split into triangle fans. Vertex colours are read from the
common ``v x y z r g b`` OBJ extension and from PLY ``red green blue`` properties (uchar or float).

Writers take per-vertex arrays (colours and UVs in [0, 1], UV v pointing up as in OBJ) and, for OBJ, an
optional texture image written next to the mesh with an MTL file referencing it. They write through
`facerep.common.safe_write` (a temporary file renamed into place; an OBJ with its MTL and texture all or
none): a failed write leaves no partial file and raises a `WriteError` naming the file.

Readers reject what would poison later geometry (a ``nan`` or ``inf`` coordinate, a face index outside
the vertices) with a `DataError` naming the file and the line (OBJ) or the vertex (PLY).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.common.safe_write import all_or_nothing, output_folder, write_atomic, write_text


@dataclass
class Mesh:
    """A triangle mesh read from a file.

    Attributes:
        vertices: (N, 3) float64 positions (file units).
        triangles: (F, 3) int64 vertex indices.
        colors: (N, 3) float64 vertex colours in [0, 1], or None.
        uv: (N, 2) float64 per-vertex texture coordinates, or None (not present or not per-vertex).
        uv_coords: (T, 2) float64 texture coordinates as listed in the file, or None.
        face_uv: (F, 3) int64 indices into ``uv_coords`` per triangle corner, or None.
        texture: path of the texture image (from the OBJ's MTL ``map_Kd``), or None.
        normals: (N, 3) float64 vertex normals from the file, or None.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    uv_coords: np.ndarray | None = None
    face_uv: np.ndarray | None = None
    texture: Path | None = None
    normals: np.ndarray | None = None


def _fmt_rows(prefix: str, arr: np.ndarray, fmt: str) -> list[str]:
    line = prefix + " " + " ".join([fmt] * arr.shape[1])
    return [line % tuple(row) for row in arr.tolist()]


# ----------------------------------------------------------------------------------------------------------
# OBJ


def write_obj(
    path: str | Path,
    vertices: Any,
    triangles: Any,
    colors: Any | None = None,
    uv: Any | None = None,
    texture: Any | None = None,
    normals: Any | None = None,
) -> Path:
    """Write a Wavefront OBJ.

    Args:
        path: output ``.obj`` path.
        vertices: (N, 3) positions (array or tensor; mm by facerep's convention).
        triangles: (F, 3) vertex indices (0-based).
        colors: optional (N, 3) vertex colours in [0, 1] (written as ``v x y z r g b``).
        uv: optional (N, 2) per-vertex texture coordinates in [0, 1] (v up).
        texture: optional texture image: (H, W, 3) array in [0, 1] or uint8, (3, H, W) tensor, or a PIL
            image (an image file: read it first, e.g. `facerep.data.imagefile.load_image`); written as
            ``<stem>.png`` with ``<stem>.mtl`` next to the OBJ (needs ``uv``).
        normals: optional (N, 3) vertex normals.

    Returns:
        The OBJ path.
    """
    path = Path(path)
    v = _np(vertices, np.float64, (3,), "vertices")
    f = _np(triangles, np.int64, (3,), "triangles")
    with all_or_nothing():
        output_folder(path.parent)
        lines = ["# written by facerep"]
        if texture is not None:
            if uv is None:
                raise ValueError("write_obj: a texture needs per-vertex uv coordinates")
            tex_path, mtl_path = path.with_suffix(".png"), path.with_suffix(".mtl")
            _write_texture(texture, tex_path)
            write_text(
                mtl_path,
                f"newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {tex_path.name}\n",
            )
            lines += [f"mtllib {mtl_path.name}"]
        lines += _obj_body(v, f, colors, uv, normals, textured=texture is not None)
        write_text(path, "\n".join(lines) + "\n")
    return path


def _obj_body(
    v: np.ndarray, f: np.ndarray, colors: Any | None, uv: Any | None, normals: Any | None, textured: bool
) -> list[str]:
    """The ``v`` / ``vt`` / ``vn`` / ``f`` lines of an OBJ (see `write_obj`)."""
    lines: list[str] = []
    if colors is not None:
        c = _np(colors, np.float64, (3,), "colors")
        lines += _fmt_rows("v", np.concatenate([v, np.clip(c, 0, 1)], 1), "%.6f")
    else:
        lines += _fmt_rows("v", v, "%.6f")
    if uv is not None:
        lines += _fmt_rows("vt", _np(uv, np.float64, (2,), "uv"), "%.6f")
    if normals is not None:
        lines += _fmt_rows("vn", _np(normals, np.float64, (3,), "normals"), "%.6f")
    if textured:
        lines += ["usemtl material_0"]
    g = f + 1
    if uv is not None and normals is not None:
        lines += [f"f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}" for a, b, c in g.tolist()]
    elif uv is not None:
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in g.tolist()]
    elif normals is not None:
        lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in g.tolist()]
    else:
        lines += _fmt_rows("f", g, "%d")
    return lines


def _write_texture(texture: Any, path: Path) -> None:
    from PIL import Image

    if isinstance(texture, (str, Path)):
        raise TypeError(f"write_obj: texture {str(texture)!r} is a path; pass the image (read it first)")
    if isinstance(texture, Image.Image):
        img = texture.convert("RGB")
    else:
        arr = np.asarray(texture.detach().cpu() if hasattr(texture, "detach") else texture)
        if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
            arr = arr.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
        img = Image.fromarray(arr)
    write_atomic(path, lambda fh: img.save(fh, format="PNG"))


def read_obj(path: str | Path) -> Mesh:
    """Read a Wavefront OBJ (triangles or polygons, optional vertex colours, UVs, normals, MTL texture)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read OBJ file ({exc.strerror or exc})") from exc
    verts, cols, vts, vns = [], [], [], []
    faces, face_vt = [], []
    mtllib: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts or parts[0].startswith("#"):
            continue
        key = parts[0]
        try:
            if key == "v":
                vals = _finite([float(x) for x in parts[1:]], path, lineno, raw, count=3)
                verts.append(vals[:3])
                if len(vals) >= 6:
                    cols.append(vals[3:6])
            elif key == "vt":
                vts.append(_finite([float(x) for x in parts[1:3]], path, lineno, raw, count=2))
            elif key == "vn":
                vns.append(_finite([float(x) for x in parts[1:4]], path, lineno, raw, count=3))
            elif key == "f":
                corners = [c.split("/") for c in parts[1:]]
                vi = [int(c[0]) for c in corners]
                ti = [int(c[1]) if len(c) > 1 and c[1] else 0 for c in corners]
                for k in range(1, len(vi) - 1):  # fan
                    faces.append([vi[0], vi[k], vi[k + 1]])
                    face_vt.append([ti[0], ti[k], ti[k + 1]])
            elif key == "mtllib" and mtllib is None:
                mtllib = raw.split(None, 1)[1].strip()
        except (ValueError, IndexError) as exc:
            raise DataError(f"{path}:{lineno}: malformed OBJ line {raw.strip()!r}") from exc
    if not verts:
        raise DataError(f"{path}: no vertices ('v' lines) in OBJ file")
    v = np.asarray(verts, dtype=np.float64)
    f = _resolve_obj_indices(np.asarray(faces, dtype=np.int64).reshape(-1, 3), len(v), path, "vertex")
    mesh = Mesh(vertices=v, triangles=f)
    if cols and len(cols) == len(verts):
        c = np.asarray(cols, dtype=np.float64)
        mesh.colors = c / 255.0 if c.max() > 1.0 else c
    if vns and len(vns) == len(verts):
        mesh.normals = np.asarray(vns, dtype=np.float64)
    if vts:
        tv = np.asarray(face_vt, dtype=np.int64).reshape(-1, 3)
        if (tv != 0).all():
            mesh.uv_coords = np.asarray(vts, dtype=np.float64)
            mesh.face_uv = _resolve_obj_indices(tv, len(vts), path, "texture")
            mesh.uv = _per_vertex_uv(f, mesh.face_uv, mesh.uv_coords, len(v))
    if mtllib:
        mesh.texture = _texture_from_mtl(path.parent / mtllib)
    return mesh


def _finite(values: list[float], path: Path, lineno: int, raw: str, count: int = 0) -> list[float]:
    """`values` when all are finite (and at least `count`); a `DataError` naming the file and line
    otherwise (``nan``, ``inf``, a short line)."""
    if len(values) < count:
        raise DataError(f"{path}:{lineno}: expected {count} numbers: {raw.strip()!r}")
    if not all(np.isfinite(values)):
        raise DataError(f"{path}:{lineno}: coordinate is not a finite number: {raw.strip()!r}")
    return values


def _resolve_obj_indices(idx: np.ndarray, count: int, path: Path, what: str) -> np.ndarray:
    out = np.where(idx < 0, idx + count, idx - 1)
    if out.size and (out.min() < 0 or out.max() >= count):
        raise DataError(f"{path}: OBJ face references a {what} index outside 1..{count}")
    return out


def _per_vertex_uv(f: np.ndarray, fuv: np.ndarray, coords: np.ndarray, n: int) -> np.ndarray | None:
    uv = np.full((n, 2), np.nan)
    uv[f.ravel()] = coords[fuv.ravel()]
    again = uv[f.ravel()]
    if np.isnan(uv).any() or not np.allclose(again, coords[fuv.ravel()]):
        return None  # some vertex has several UVs (seams) or none
    return uv


def _texture_from_mtl(mtl: Path) -> Path | None:
    try:
        lines = mtl.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == "map_Kd":
            return mtl.parent / parts[1].strip().split()[-1]
    return None


# ----------------------------------------------------------------------------------------------------------
# PLY

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def write_ply(
    path: str | Path, vertices: Any, triangles: Any, colors: Any | None = None, binary: bool = False
) -> Path:
    """Write a PLY mesh (ascii, or binary little endian), with optional (N, 3) colours in [0, 1] as uchar."""
    path = Path(path)
    v = _np(vertices, np.float64, (3,), "vertices")
    f = _np(triangles, np.int64, (3,), "triangles")
    c = None if colors is None else (np.clip(_np(colors, np.float64, (3,), "colors"), 0, 1) * 255 + 0.5)
    header = [
        "ply",
        f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
        "comment written by facerep",
    ]
    header += [f"element vertex {len(v)}", "property float x", "property float y", "property float z"]
    if c is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    if binary:
        fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")] if c is not None else []
        vr = np.empty(len(v), dtype=fields)
        vr["x"], vr["y"], vr["z"] = v[:, 0], v[:, 1], v[:, 2]
        if c is not None:
            vr["red"], vr["green"], vr["blue"] = c[:, 0], c[:, 1], c[:, 2]
        fr = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
        fr["n"], fr["i"] = 3, f
        body = ("\n".join(header) + "\n").encode("ascii") + vr.tobytes() + fr.tobytes()
    else:
        rows = [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in v.tolist()]
        if c is not None:
            rows = [f"{a} {int(r[0])} {int(r[1])} {int(r[2])}" for a, r in zip(rows, c.tolist(), strict=True)]
        rows += [f"3 {a} {b} {c}" for a, b, c in f.tolist()]
        body = ("\n".join(header + rows) + "\n").encode("ascii")
    output_folder(path.parent)
    return write_atomic(path, lambda fh: fh.write(body))


def read_ply(path: str | Path) -> Mesh:
    """Read a PLY mesh (ascii, binary little or big endian): vertices, faces (fans), colours, normals."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read PLY file ({exc.strerror or exc})") from exc
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise DataError(f"{path}: not a PLY file (expected 'ply' ... 'end_header')")
    newline = data.find(b"\n", end)
    body_start = len(data) if newline < 0 else newline + 1
    fmt, elements = _ply_header(data[:end].decode("ascii", errors="replace"), path)
    try:
        if fmt == "ascii":
            values = _read_ply_ascii(data[body_start:].decode("ascii", errors="replace"), elements)
        else:
            values = _read_ply_binary(
                data[body_start:], elements, "<" if fmt.endswith("little_endian") else ">"
            )
    except StopIteration:
        raise DataError(f"{path}: PLY body ends before the elements its header announces") from None
    except (ValueError, IndexError, KeyError, OverflowError, TypeError) as exc:
        raise DataError(f"{path}: malformed PLY body ({exc or type(exc).__name__})") from exc
    vert = values.get("vertex")
    if vert is None or not all(k in vert for k in ("x", "y", "z")):
        raise DataError(f"{path}: PLY has no vertex element with x, y, z")
    v = np.stack([vert["x"], vert["y"], vert["z"]], 1).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
    if bad.size:
        raise DataError(
            f"{path}: vertex {int(bad[0])} (0-based) has a coordinate that is not a finite number "
            f"({', '.join(str(x) for x in v[bad[0]])}); {bad.size} such vertices"
        )
    faces = values.get("face", {})
    lists = faces.get("vertex_indices", faces.get("vertex_index", []))
    tris = [[poly[0], poly[k], poly[k + 1]] for poly in lists for k in range(1, len(poly) - 1)]
    mesh = Mesh(vertices=v, triangles=np.asarray(tris, dtype=np.int64).reshape(-1, 3))
    if mesh.triangles.size and (mesh.triangles.min() < 0 or mesh.triangles.max() >= len(v)):
        raise DataError(f"{path}: PLY face references a vertex outside 0..{len(v) - 1}")
    if all(k in vert for k in ("red", "green", "blue")):
        c = np.stack([vert["red"], vert["green"], vert["blue"]], 1).astype(np.float64)
        mesh.colors = c / 255.0 if np.issubdtype(np.asarray(vert["red"]).dtype, np.integer) else c
    if all(k in vert for k in ("nx", "ny", "nz")):
        mesh.normals = np.stack([vert["nx"], vert["ny"], vert["nz"]], 1).astype(np.float64)
    if all(k in vert for k in ("s", "t")):
        mesh.uv = np.stack([vert["s"], vert["t"]], 1).astype(np.float64)
    return mesh


def _ply_header(text: str, path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, ...]]]]]:
    """The format and the (name, count, properties) elements of a PLY header; errors name the line."""
    fmt = None
    elements: list[tuple[str, int, list[tuple[str, ...]]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        p = line.split()
        if not p:
            continue
        if p[0] == "format" and len(p) >= 2:
            fmt = p[1]
        elif p[0] == "element":
            if len(p) != 3 or not p[2].isdigit():
                raise DataError(f"{path}:{number}: malformed PLY element line {line.strip()!r}")
            elements.append((p[1], int(p[2]), []))
        elif p[0] == "property" and elements:
            types = p[2:4] if len(p) == 5 and p[1] == "list" else p[1:2] if len(p) == 3 else None
            if types is None or any(t not in _PLY_TYPES for t in types):
                raise DataError(f"{path}:{number}: malformed PLY property line {line.strip()!r}")
            elements[-1][2].append(tuple(p[1:]))
        elif p[0] in ("format", "property"):
            raise DataError(f"{path}:{number}: malformed PLY header line {line.strip()!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise DataError(f"{path}: unsupported PLY format {fmt!r}")
    return fmt, elements


def _read_ply_ascii(text: str, elements: list) -> dict[str, dict[str, Any]]:
    tokens = iter(text.split())
    out: dict[str, dict[str, Any]] = {}
    for name, count, props in elements:
        cols: dict[str, list] = {p[-1]: [] for p in props}
        for _ in range(count):
            for p in props:
                if p[0] == "list":
                    n = int(next(tokens))
                    cols[p[-1]].append([int(float(next(tokens))) for _ in range(n)])
                else:
                    cols[p[-1]].append(float(next(tokens)))
        out[name] = {
            k: (vals if any(p[0] == "list" and p[-1] == k for p in props) else _typed(vals, props, k))
            for k, vals in cols.items()
        }
    return out


def _typed(vals: list, props: list, key: str) -> np.ndarray:
    kind = next(p[0] for p in props if p[-1] == key)
    return np.asarray(vals, dtype=_PLY_TYPES[kind])


def _read_ply_binary(buf: bytes, elements: list, order: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    pos = 0
    for name, count, props in elements:
        if not any(p[0] == "list" for p in props):
            dt = np.dtype([(p[-1], order + _PLY_TYPES[p[0]]) for p in props])
            arr = np.frombuffer(buf, dtype=dt, count=count, offset=pos)
            pos += dt.itemsize * count
            out[name] = {k: arr[k] for k in dt.names or ()}
            continue
        # faces: try the fast path (a single list property of constant length 3)
        if len(props) == 1 and count:
            _, ct, it, key = props[0]
            cdt, idt = np.dtype(order + _PLY_TYPES[ct]), np.dtype(order + _PLY_TYPES[it])
            first = int(np.frombuffer(buf, dtype=cdt, count=1, offset=pos)[0])
            rec = np.dtype([("n", cdt), ("i", idt, (first,))])
            if pos + rec.itemsize * count <= len(buf):
                arr = np.frombuffer(buf, dtype=rec, count=count, offset=pos)
                if (arr["n"] == first).all():
                    pos += rec.itemsize * count
                    out[name] = {key: arr["i"].astype(np.int64).tolist()}
                    continue
        cols: dict[str, list] = {p[-1]: [] for p in props}
        for _ in range(count):
            for p in props:
                if p[0] == "list":
                    cdt, idt = np.dtype(order + _PLY_TYPES[p[1]]), np.dtype(order + _PLY_TYPES[p[2]])
                    n = int(np.frombuffer(buf, dtype=cdt, count=1, offset=pos)[0])
                    pos += cdt.itemsize
                    cols[p[-1]].append(np.frombuffer(buf, dtype=idt, count=n, offset=pos).tolist())
                    pos += idt.itemsize * n
                else:
                    dt = np.dtype(order + _PLY_TYPES[p[0]])
                    cols[p[-1]].append(np.frombuffer(buf, dtype=dt, count=1, offset=pos)[0])
                    pos += dt.itemsize
        out[name] = cols
    return out


# ----------------------------------------------------------------------------------------------------------
# dispatch


def read_mesh(path: str | Path) -> Mesh:
    """Read an ``.obj`` or ``.ply`` mesh (by extension)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".obj":
        return read_obj(path)
    if suffix == ".ply":
        return read_ply(path)
    raise DataError(f"{path}: unsupported mesh format {suffix!r} (expected .obj or .ply)")


def write_mesh(path: str | Path, vertices: Any, triangles: Any, colors: Any | None = None, **kw: Any) -> Path:
    """Write an ``.obj`` (keywords of `write_obj`) or ``.ply`` (keywords of `write_ply`) mesh."""
    suffix = Path(path).suffix.lower()
    if suffix == ".obj":
        return write_obj(path, vertices, triangles, colors=colors, **kw)
    if suffix == ".ply":
        return write_ply(path, vertices, triangles, colors=colors, **kw)
    raise ValueError(f"{path}: unsupported mesh format {suffix!r} (expected .obj or .ply)")


def _np(a: Any, dtype: Any, tail: tuple[int, ...], what: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[1:] != tail:
        raise ValueError(f"{what}: expected shape (n, {tail[0]}), got {arr.shape}")
    return arr


__all__ = ["Mesh", "read_mesh", "read_obj", "read_ply", "write_mesh", "write_obj", "write_ply"]
