"""Mesh adjacency, mean-neighbour matrix, umbrella operator and scaled normalised Laplacian."""

from __future__ import annotations

import numpy as np
import torch

from facerep.geometry.laplacian import (
    mean_neighbour_matrix,
    mesh_edges,
    neighbour_lists,
    scaled_normalised_laplacian,
    template_relative_umbrella,
    to_torch_sparse,
    umbrella,
    vertex_adjacency,
)

# a square split in two triangles plus a dangling triangle: vertices 0..4
TRI = np.array([[0, 1, 2], [0, 2, 3], [2, 4, 3]])


def test_adjacency_is_symmetric_binary_without_self_loops() -> None:
    a = vertex_adjacency(TRI, 6)  # vertex 5 isolated
    d = a.toarray()
    assert np.array_equal(d, d.T)
    assert set(np.unique(d)) <= {0.0, 1.0}
    assert np.all(np.diag(d) == 0)
    assert d.sum() == 2 * len(mesh_edges(TRI)) == 2 * 7
    assert d[5].sum() == 0
    assert [list(n) for n in neighbour_lists(TRI, 5)][2] == [0, 1, 3, 4]


def test_mean_neighbour_rows_sum_to_one_and_umbrella_of_affine_field_vanishes_inside() -> None:
    # a regular grid: the umbrella of an affine function is zero at interior vertices
    n = 6
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    idx = np.arange(n * n).reshape(n, n)
    tri = np.concatenate(
        [
            np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()], 1),
            np.stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()], 1),
        ]
    )
    m = mean_neighbour_matrix(tri, n * n)
    assert np.allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0)
    v = np.stack([xs.ravel(), ys.ravel(), 2 * xs.ravel() - 3 * ys.ravel() + 1], 1)
    u = umbrella(torch.tensor(v[None]), to_torch_sparse(m, torch.float64))[0].numpy()
    interior = ((xs > 0) & (xs < n - 1) & (ys > 0) & (ys < n - 1)).ravel()
    assert np.abs(u[interior]).max() < 1e-12
    assert np.abs(u[~interior]).max() > 0.1  # boundary vertices do not satisfy it (the paper's point)


def test_umbrella_batches_and_gradients_and_template_relative_is_zero_on_template() -> None:
    m = to_torch_sparse(mean_neighbour_matrix(TRI, 5))
    v = torch.randn(3, 5, 3, requires_grad=True)
    u = umbrella(v, m)
    dense = torch.as_tensor(mean_neighbour_matrix(TRI, 5).toarray(), dtype=torch.float32)
    assert torch.allclose(u, v - dense @ v, atol=1e-6)
    u.square().sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    t = torch.randn(5, 3)
    r = template_relative_umbrella(t[None].expand(2, 5, 3), t, m)
    assert r.shape == (2, 5, 3) and r.abs().max() < 1e-6


def test_scaled_normalised_laplacian_spectrum_in_unit_interval() -> None:
    lap = scaled_normalised_laplacian(TRI, 5).toarray()
    assert np.allclose(lap, lap.T)
    w = np.linalg.eigvalsh(lap)
    assert w.min() >= -1 - 1e-9 and w.max() <= 1 + 1e-9
    a = vertex_adjacency(TRI, 5).toarray()
    deg = a.sum(1)
    assert np.allclose(lap, -a / np.sqrt(np.outer(deg, deg)))
