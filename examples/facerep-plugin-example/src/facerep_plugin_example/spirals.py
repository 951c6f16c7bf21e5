"""Spiral sequences on a triangle mesh (Bouritsas et al. 2019; Gong et al. 2019, SpiralNet++).

A vertex's spiral is an ordered list of nearby vertices: the vertex itself, then its 1-ring, then its
2-ring, and so on, each ring sorted by angle around the vertex (counter-clockwise seen from outside the
surface, starting from the direction closest to the canonical "up", +y). Cutting every spiral to one
length ``L`` gives a fixed (N, L) index table, so a convolution is a gather and a linear layer, like an
image convolution over an ordered neighbourhood. Vertices with fewer than ``L`` vertices within reach
(mesh borders) are padded with the index ``N``: the convolution appends a zero feature row there.

The order is deterministic: the same mesh gives the same table on every machine.
"""

from __future__ import annotations

import numpy as np


def neighbours(triangles: np.ndarray, num_vertices: int) -> list[np.ndarray]:
    """Sorted 1-ring vertex indices of every vertex of an (F, 3) triangle list."""
    tri = np.asarray(triangles, dtype=np.int64)
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    edges = np.unique(edges, axis=0)
    starts = np.searchsorted(edges[:, 0], np.arange(num_vertices + 1))
    return [edges[starts[v] : starts[v + 1], 1] for v in range(num_vertices)]


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) unit area-weighted vertex normals (triangles counter-clockwise seen from outside)."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    face = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, tri[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 0, normals / np.maximum(length, 1e-12), np.array([0.0, 0.0, 1.0]))


def _angular_order(centre: np.ndarray, normal: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Order of `points` (M, 3) by angle around `centre` in the plane of `normal`, starting near +y."""
    up = np.array([0.0, 1.0, 0.0]) - normal * normal[1]
    if np.linalg.norm(up) < 1e-6:  # the normal is (anti)parallel to y: use x as the reference
        up = np.array([1.0, 0.0, 0.0]) - normal * normal[0]
    e1 = up / np.linalg.norm(up)
    e2 = np.cross(normal, e1)
    d = points - centre
    angle = np.arctan2(d @ e2, d @ e1)  # counter-clockwise about the normal, 0 along e1 (up)
    angle = np.mod(angle, 2 * np.pi)
    return np.lexsort((np.linalg.norm(d, axis=1), angle))


def spiral_indices(vertices: np.ndarray, triangles: np.ndarray, length: int) -> np.ndarray:
    """(N, length) int64 spiral of every vertex (itself first), padded with N where the mesh ends.

    Args:
        vertices: (N, 3) positions (mm); used only to order each ring by angle.
        triangles: (F, 3) vertex indices.
        length: spiral length L >= 1 (9 covers the 1-ring of a regular mesh and a bit more).
    """
    if int(length) < 1:
        raise ValueError(f"spiral length must be >= 1, got {length}")
    v = np.asarray(vertices, dtype=np.float64)
    n = v.shape[0]
    rings = neighbours(triangles, n)
    normals = vertex_normals(v, triangles)
    out = np.full((n, int(length)), n, dtype=np.int64)
    for i in range(n):
        sequence = [i]
        seen = {i}
        frontier = [i]
        while len(sequence) < length and frontier:
            ring = sorted({int(j) for f in frontier for j in rings[f]} - seen)
            if not ring:
                break
            ring_arr = np.asarray(ring, dtype=np.int64)
            ordered = ring_arr[_angular_order(v[i], normals[i], v[ring_arr])]
            sequence.extend(int(j) for j in ordered)
            seen.update(ring)
            frontier = ring
        sequence = sequence[:length]
        out[i, : len(sequence)] = sequence
    return out
