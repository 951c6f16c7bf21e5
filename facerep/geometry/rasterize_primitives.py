"""Procedural test meshes for the rasteriser and renderer (planes, spheres, ellipsoids), in millimetres.

All triangles are counter-clockwise seen from outside (for a plane: from +z), the facerep convention.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def grid_plane(
    nx: int, ny: int, width: float, height: float, z: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A flat (nx+1) x (ny+1) vertex grid centred at the origin in the plane z = ``z``.

    Returns:
        vertices (N, 3) float32 mm and triangles (2 nx ny, 3) int64, counter-clockwise seen from +z.
    """
    xs = np.linspace(-width / 2, width / 2, nx + 1)
    ys = np.linspace(-height / 2, height / 2, ny + 1)
    gx, gy = np.meshgrid(xs, ys)  # (ny+1, nx+1)
    vertices = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], -1).astype(np.float32)
    idx = np.arange((nx + 1) * (ny + 1)).reshape(ny + 1, nx + 1)
    v00, v10 = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    v01, v11 = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    triangles = np.concatenate([np.stack([v00, v10, v11], -1), np.stack([v00, v11, v01], -1)])
    return vertices, triangles.astype(np.int64)


def uv_sphere(n_lat: int, n_lon: int, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A latitude-longitude sphere with 2 + (n_lat - 1) n_lon vertices, centred at the origin.

    Returns:
        vertices (N, 3) float32 and triangles (F, 3) int64, counter-clockwise seen from outside.
    """
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]  # polar angle from +y
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")  # (n_lat-1, n_lon)
    ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    vertices = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]]) * radius
    idx = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    nxt = np.roll(idx, -1, axis=1)
    tris = [np.stack([np.zeros(n_lon, dtype=np.int64), idx[0], nxt[0]], -1)]
    for r in range(n_lat - 2):
        tris.append(np.stack([idx[r], idx[r + 1], nxt[r + 1]], -1))
        tris.append(np.stack([idx[r], nxt[r + 1], nxt[r]], -1))
    south = len(vertices) - 1
    tris.append(np.stack([np.full(n_lon, south), nxt[-1], idx[-1]], -1))
    triangles = np.concatenate(tris).astype(np.int64)
    triangles = orient_outwards(vertices, triangles)
    return vertices.astype(np.float32), triangles


def orient_outwards(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Flip triangles of a star-shaped closed mesh around the origin so their normals point outwards."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64).copy()
    a, b, c = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
    normal = np.cross(b - a, c - a)
    flip = (normal * (a + b + c)).sum(-1) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    return tri


def sphere_for_vertices(num_vertices: int, radius: float = 80.0) -> tuple[np.ndarray, np.ndarray]:
    """A `uv_sphere` with about ``num_vertices`` vertices (n_lon = 2 n_lat)."""
    n_lat = max(3, int(round(np.sqrt(num_vertices / 2.0))))
    return uv_sphere(n_lat, 2 * n_lat, radius)


def ellipsoid_cap(
    num_vertices: int = 2000,
    width: float = 150.0,
    height: float = 200.0,
    depth: float = 60.0,
    nose: float = 25.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A face-sized, exactly left-right symmetric height field: an ellipsoidal cap with a nose bump.

    The grid has an even number of columns and mirrored diagonals (cells left of x = 0 are split along
    one diagonal, cells right of it along the other), so both geometry and triangulation are symmetric.

    Args:
        num_vertices: approximate vertex count.
        width, height: extent of the cap's elliptical rim in mm.
        depth: height of the cap's centre above the rim, mm.
        nose: height of a Gaussian nose bump at the centre, mm.

    Returns:
        vertices (N, 3) float32 mm (z towards the camera) and triangles (F, 3) int64, counter-clockwise
        seen from +z.
    """
    n = max(4, int(round(np.sqrt(num_vertices * 4 / np.pi) / 2)) * 2)
    xs = np.linspace(-width / 2, width / 2, n + 1)
    xs = (xs - xs[::-1]) / 2  # exactly antisymmetric
    ys = np.linspace(-height / 2, height / 2, n + 1)
    gx, gy = np.meshgrid(xs, ys)
    r2 = (2 * gx / width) ** 2 + (2 * gy / height) ** 2
    gz = depth * np.sqrt(np.clip(1 - r2, 0, None)) + nose * np.exp(
        -(gx**2) / (2 * 9.0**2) - gy**2 / (2 * 22.0**2)
    )
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    v00, v10, v01, v11 = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    left = (gx[:-1, :-1] + gx[:-1, 1:]) / 2 < 0
    t_left = [np.stack([v00, v10, v11], -1), np.stack([v00, v11, v01], -1)]
    t_right = [np.stack([v00, v10, v01], -1), np.stack([v10, v11, v01], -1)]
    tris = np.concatenate([np.where(left[..., None], t_left[k], t_right[k]).reshape(-1, 3) for k in range(2)])
    keep = (r2.ravel()[tris] < 1.0 - 1e-9).all(-1)
    tris = tris[keep]
    used = np.unique(tris)
    remap = np.full((n + 1) ** 2, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    vertices = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], -1)[used]
    return vertices.astype(np.float32), remap[tris].astype(np.int64)


def mesh_model(
    vertices: np.ndarray, triangles: np.ndarray, landmarks: np.ndarray | None = None
) -> SimpleNamespace:
    """A minimal face-model-like object (template, triangles, landmarks, uv) for a renderer."""
    v = np.asarray(vertices, dtype=np.float32)
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    uv = (v[:, :2] - lo) / np.maximum(hi - lo, 1e-9)
    if landmarks is None:
        landmarks = np.linspace(0, len(v) - 1, 68).astype(np.int64)
    return SimpleNamespace(
        name="mesh",
        template=v,
        mean=v,
        triangles=np.asarray(triangles, dtype=np.int64),
        landmarks=np.asarray(landmarks, dtype=np.int64),
        uv=uv.astype(np.float32),
        num_vertices=len(v),
    )


__all__ = ["ellipsoid_cap", "grid_plane", "mesh_model", "orient_outwards", "sphere_for_vertices", "uv_sphere"]
