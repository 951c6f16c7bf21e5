"""Left-right symmetry of a face mesh: the vertex mirror map."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def nearest_mirror_map(vertices: np.ndarray, centre_x: float | None = None) -> np.ndarray:
    """Vertex mirror map (N,) int64 of a roughly symmetric mesh: the nearest vertex of its x-mirror.

    Args:
        vertices: (N, 3) positions in the canonical frame (x to the subject's left), any length unit.
        centre_x: x of the symmetry plane; default: the mean x of the vertices (the centred mesh).

    Returns:
        mirror (N,): ``vertices[mirror[i]]`` is the vertex closest to ``vertices[i]`` reflected in the
        plane ``x = centre_x``. Not necessarily an involution for meshes that are not exactly symmetric.
    """
    v = np.asarray(vertices, dtype=np.float64)
    cx = float(v[:, 0].mean()) if centre_x is None else float(centre_x)
    reflected = v.copy()
    reflected[:, 0] = 2.0 * cx - reflected[:, 0]
    _, idx = cKDTree(v).query(reflected, k=1)
    return np.asarray(idx, dtype=np.int64)


def mirror_error(vertices: np.ndarray, mirror: np.ndarray) -> float:
    """RMS distance (input units) between each vertex and its mirror vertex reflected in x = 0."""
    v = np.asarray(vertices, dtype=np.float64)
    reflected = v[mirror] * np.array([-1.0, 1.0, 1.0])
    return float(np.sqrt(((reflected - v) ** 2).sum(axis=1).mean()))


__all__ = ["mirror_error", "nearest_mirror_map"]
