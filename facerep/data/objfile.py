"""Minimal Wavefront OBJ reading and writing for scans (vertices and triangle faces only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerep.core.errors import DataError


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OBJ -> (vertices (N, 3) float64, triangles (F, 3) int64, 0-based).

    Polygons are fan-triangulated; texture/normal indices (``f 1/2/3``) and other records are ignored.
    Negative (relative) indices are resolved. Errors name the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read OBJ ({exc.strerror or exc})") from exc
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("v "):
            parts = line.split()
            try:
                verts.append((float(parts[1]), float(parts[2]), float(parts[3])))
            except (IndexError, ValueError):
                raise DataError(f"{path}:{number}: bad vertex line {line!r}") from None
        elif line.startswith("f "):
            try:
                idx = [int(p.split("/")[0]) for p in line.split()[1:]]
            except ValueError:
                raise DataError(f"{path}:{number}: bad face line {line!r}") from None
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            for k in range(1, len(idx) - 1):
                faces.append((idx[0], idx[k], idx[k + 1]))
    if not verts:
        raise DataError(f"{path}: OBJ has no vertices")
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise DataError(f"{path}: face index outside the {len(v)} vertices")
    return v, f


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray | None = None) -> None:
    """Write vertices (N, 3) and optional 0-based triangles (F, 3) as an OBJ (1-based indices)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    lines = [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in v]
    if triangles is not None:
        t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3) + 1
        lines += [f"f {a} {b} {c}" for a, b, c in t]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
