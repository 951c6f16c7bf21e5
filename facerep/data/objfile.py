"""Minimal Wavefront OBJ reading and writing for scans (vertices and triangle faces only)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facerep.common.errors import DataError
from facerep.common.safe_write import output_folder, write_text


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OBJ -> (vertices (N, 3) float64, triangles (F, 3) int64, 0-based).

    Polygons are fan-triangulated; texture/normal indices (``f 1/2/3``) and other records are ignored.
    Negative (relative) indices are resolved. A malformed line, a ``nan`` / ``inf`` coordinate or a face
    index outside the vertices is a `DataError` naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read OBJ ({exc.strerror or exc})") from exc
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    face_lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("v "):
            parts = line.split()
            try:
                xyz = (float(parts[1]), float(parts[2]), float(parts[3]))
            except (IndexError, ValueError):
                raise DataError(f"{path}:{number}: bad vertex line {line!r}") from None
            if not all(math.isfinite(c) for c in xyz):
                raise DataError(f"{path}:{number}: coordinate is not a finite number: {line.strip()!r}")
            verts.append(xyz)
        elif line.startswith("f "):
            try:
                idx = [int(p.split("/")[0]) for p in line.split()[1:]]
            except ValueError:
                raise DataError(f"{path}:{number}: bad face line {line!r}") from None
            if 0 in idx:
                raise DataError(f"{path}:{number}: face index 0 (OBJ indices start at 1): {line!r}")
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            if min(idx, default=0) < 0:
                raise DataError(f"{path}:{number}: relative face index before the first vertex: {line!r}")
            for k in range(1, len(idx) - 1):
                faces.append((idx[0], idx[k], idx[k + 1]))
                face_lines.append(number)
    if not verts:
        raise DataError(f"{path}: OBJ has no vertices")
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    outside = np.flatnonzero((f >= len(v)).any(axis=1))
    if outside.size:
        number = face_lines[int(outside[0])]
        raise DataError(f"{path}:{number}: face index outside the file's {len(v)} vertices")
    return v, f


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray | None = None) -> None:
    """Write vertices (N, 3) and optional 0-based triangles (F, 3) as an OBJ (1-based indices), atomically
    (`facerep.common.safe_write`)."""
    path = Path(path)
    output_folder(path.parent)
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    lines = [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in v]
    if triangles is not None:
        t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3) + 1
        lines += [f"f {a} {b} {c}" for a, b, c in t]
    write_text(path, "\n".join(lines) + "\n")
