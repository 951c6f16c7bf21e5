"""Differentiable per-vertex normals of triangle meshes."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _triangles_tensor(triangles: Tensor | np.ndarray, device: torch.device) -> Tensor:
    tri = torch.as_tensor(np.asarray(triangles) if not isinstance(triangles, Tensor) else triangles)
    if tri.ndim != 2 or tri.shape[-1] != 3:
        raise ValueError(f"triangles must be (F, 3) vertex indices, got shape {tuple(tri.shape)}")
    return tri.to(device=device, dtype=torch.long)


def face_normals(vertices: Tensor, triangles: Tensor | np.ndarray, normalise: bool = True) -> Tensor:
    """Triangle normals ``(v1 - v0) x (v2 - v0)``.

    Args:
        vertices: (B, N, 3).
        triangles: (F, 3) vertex indices, counter-clockwise seen from the side the normal points to.
        normalise: unit normals when True; otherwise the cross product (length = twice the area).

    Returns:
        (B, F, 3) normals.
    """
    tri = _triangles_tensor(triangles, vertices.device)
    v0, v1, v2 = (vertices.index_select(1, tri[:, k].contiguous()) for k in range(3))
    ax, ay, az = (v1 - v0).unbind(-1)
    bx, by, bz = (v2 - v0).unbind(-1)
    n = torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)
    if normalise:
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return n


def vertex_normals(vertices: Tensor, triangles: Tensor | np.ndarray, eps: float = 1e-12) -> Tensor:
    """Area-weighted unit vertex normals (differentiable).

    Each vertex's normal is the normalised sum of the cross products of its incident triangles (each
    cross product has length twice the triangle's area, so larger triangles weigh more). With
    triangles counter-clockwise seen from +z, the normals of a face mesh point towards the camera.

    Args:
        vertices: (B, N, 3) positions (mm).
        triangles: (F, 3) vertex indices.
        eps: floor of the norm (isolated vertices get a zero normal).

    Returns:
        (B, N, 3) unit normals.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertex_normals expects vertices (B, N, 3), got shape {tuple(vertices.shape)}")
    tri = _triangles_tensor(triangles, vertices.device)
    fn = face_normals(vertices, tri, normalise=False)  # (B, F, 3)
    batch, num = vertices.shape[0], vertices.shape[1]
    acc = vertices.new_zeros(batch, num, 3)
    for corner in range(3):  # three scatters (corners), not a loop over triangles
        acc = acc.index_add(1, tri[:, corner], fn)
    return acc / acc.norm(dim=-1, keepdim=True).clamp_min(eps)


__all__ = ["face_normals", "vertex_normals"]
