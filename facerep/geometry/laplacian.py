"""First-order neighbours and Laplacians of a triangle mesh.

The umbrella operator ``v_i - mean_{j in N(i)} v_j`` is the discrete Laplacian of the paper's shape
smoothness loss (equation 9): the conventional loss drives it to zero, the paper's template-relative loss
drives it towards the template's own umbrella vector. `scaled_normalised_laplacian` is the
``L~ = -D^-1/2 A D^-1/2`` operator of Chebyshev graph convolutions (COMA, with lambda_max = 2).

Sparse matrices are scipy CSR with sorted indices (numpy side) or torch sparse COO tensors (torch side).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def mesh_edges(triangles: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2) int64 of a triangle list (F, 3), each with i < j, sorted."""
    tri = np.asarray(triangles, dtype=np.int64)
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ValueError(f"triangles must be (F, 3), got {tri.shape}")
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], axis=0)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


def vertex_adjacency(triangles: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (N, N) float64 CSR of the mesh's edges (no self loops)."""
    e = mesh_edges(triangles)
    if e.size and int(e.max()) >= num_vertices:
        raise ValueError(f"triangles reference vertex {int(e.max())} but num_vertices is {num_vertices}")
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    data = np.ones(rows.shape[0], dtype=np.float64)
    a = sp.csr_matrix((data, (rows, cols)), shape=(num_vertices, num_vertices))
    a.sum_duplicates()
    a.data[:] = 1.0
    a.sort_indices()
    return a


def neighbour_lists(triangles: np.ndarray, num_vertices: int) -> list[np.ndarray]:
    """First-order neighbours of each vertex: a list of N sorted int64 arrays."""
    a = vertex_adjacency(triangles, num_vertices)
    return [a.indices[a.indptr[i] : a.indptr[i + 1]].astype(np.int64) for i in range(num_vertices)]


def mean_neighbour_matrix(triangles: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Row-normalised adjacency M (N, N) float64 CSR: (M v)_i is the mean of vertex i's neighbours.

    Rows of isolated vertices are zero (their umbrella vector is then the vertex itself).
    """
    a = vertex_adjacency(triangles, num_vertices)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    m = sp.diags(inv) @ a
    m = sp.csr_matrix(m)
    m.sort_indices()
    return m


def scaled_normalised_laplacian(triangles: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """``L~ = 2 L / lambda_max - I`` with lambda_max = 2 and L = I - D^-1/2 A D^-1/2: ``-D^-1/2 A D^-1/2``.

    (N, N) float64 CSR, symmetric, spectrum in [-1, 1]; the Chebyshev-convolution operator of COMA.
    """
    a = vertex_adjacency(triangles, num_vertices)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    d = sp.diags(inv_sqrt)
    lap = sp.csr_matrix(-(d @ a @ d))
    lap.sort_indices()
    return lap


def to_torch_sparse(
    matrix: sp.spmatrix, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """A scipy sparse matrix as a coalesced torch sparse COO tensor of the same shape."""
    coo = sp.coo_matrix(matrix)
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    val = torch.from_numpy(np.asarray(coo.data, dtype=np.float64)).to(dtype)
    return torch.sparse_coo_tensor(idx, val, coo.shape, device=device, check_invariants=False).coalesce()


def _apply(matrix: Tensor, vertices: Tensor) -> Tensor:
    """(N, N) sparse or dense matrix applied to every batch row of (B, N, C) -> (B, N, C)."""
    b, n, c = vertices.shape
    flat = vertices.permute(1, 0, 2).reshape(n, b * c)
    m = matrix.to(device=vertices.device, dtype=vertices.dtype)
    out = torch.sparse.mm(m, flat) if m.is_sparse else m @ flat
    return out.reshape(n, b, c).permute(1, 0, 2)


def umbrella(vertices: Tensor, mean_neighbour: Tensor) -> Tensor:
    """Umbrella vectors ``v_i - mean_{j in N(i)} v_j``.

    Args:
        vertices: (B, N, 3) (any trailing size C works) vertex positions, mm.
        mean_neighbour: (N, N) torch sparse (or dense) row-normalised adjacency, see `mean_neighbour_matrix`.

    Returns:
        (B, N, 3) umbrella vectors, mm; differentiable with respect to ``vertices``.
    """
    if vertices.dim() != 3:
        raise ValueError(f"vertices must be (B, N, C), got {tuple(vertices.shape)}")
    return vertices - _apply(mean_neighbour, vertices)


def template_relative_umbrella(vertices: Tensor, template: Tensor, mean_neighbour: Tensor) -> Tensor:
    """The paper's equation-9 residual: umbrella(vertices) - umbrella(template), (B, N, 3) mm.

    ``template`` is (N, 3) or (B, N, 3); it is broadcast over the batch.
    """
    if template.dim() == 2:
        template = template.unsqueeze(0)
    template = template.to(device=vertices.device, dtype=vertices.dtype)
    return umbrella(vertices, mean_neighbour) - umbrella(template, mean_neighbour)


__all__ = [
    "mean_neighbour_matrix",
    "mesh_edges",
    "neighbour_lists",
    "scaled_normalised_laplacian",
    "template_relative_umbrella",
    "to_torch_sparse",
    "umbrella",
    "vertex_adjacency",
]
