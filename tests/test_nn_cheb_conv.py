"""facerep.nn: sparse operator, Chebyshev convolution and graph resampling against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from facerep.nn import ChebConv, GraphResample, SparseOperator, resample, scaled_laplacian, to_scipy_csr
from facerep.nn.mesh_decoder import MeshDecoder


def grid_mesh(side: int) -> tuple[np.ndarray, np.ndarray]:
    """A side x side vertex grid triangulated into 2 (side-1)^2 triangles."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(side * side)], axis=1)
    idx = np.arange(side * side).reshape(side, side)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    triangles = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return vertices, triangles


def adjacency(triangles: np.ndarray, n: int) -> sp.csr_matrix:
    i = triangles[:, [0, 1, 2, 1, 2, 0]].ravel()
    j = triangles[:, [1, 2, 0, 0, 1, 2]].ravel()
    a = sp.csr_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    return sp.csr_matrix((a > 0).astype(np.float64))


@pytest.fixture(scope="module")
def graph() -> sp.csr_matrix:
    vertices, triangles = grid_mesh(7)
    return adjacency(triangles, len(vertices))


def dense_cheb(x: torch.Tensor, lap: np.ndarray, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Reference: sum_k T_k(L) x W_k + b with dense float64 Chebyshev polynomials of L."""
    n = lap.shape[0]
    polys = [np.eye(n), lap]
    for _ in range(2, weight.shape[0]):
        polys.append(2 * lap @ polys[-1] - polys[-2])
    out = bias.double().clone()
    for k in range(weight.shape[0]):
        t = torch.from_numpy(polys[k]) @ x.double()  # (B, N, C)
        out = out + t @ weight[k].double()
    return out


def test_scaled_laplacian_is_minus_normalised_adjacency(graph: sp.csr_matrix) -> None:
    lap = scaled_laplacian(graph).toarray()
    deg = np.asarray(graph.sum(1)).ravel()
    expected = -graph.toarray() / np.sqrt(np.outer(deg, deg))
    np.testing.assert_allclose(lap, expected, atol=1e-6)
    # spectrum of -D^-1/2 A D^-1/2 lies in [-1, 1]
    eig = np.linalg.eigvalsh(lap.astype(np.float64))
    assert eig.min() >= -1 - 1e-5 and eig.max() <= 1 + 1e-5


@pytest.mark.parametrize("K", [1, 2, 3, 6])
@pytest.mark.parametrize("channels", [(4, 5), (5, 2)])  # widening: recursion; narrowing: Clenshaw
def test_cheb_conv_matches_dense_chebyshev_polynomials(
    graph: sp.csr_matrix, K: int, channels: tuple[int, int]
) -> None:
    lap = scaled_laplacian(graph)
    torch.manual_seed(0)
    c_in, c_out = channels
    conv = ChebConv(c_in, c_out, K, lap)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(3, graph.shape[0], c_in)
    out = conv(x)
    assert out.shape == (3, graph.shape[0], c_out)
    ref = dense_cheb(x, lap.toarray().astype(np.float64), conv.weight, conv.bias)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def test_cheb_conv_accepts_torch_sparse_laplacians_and_strided_inputs(graph: sp.csr_matrix) -> None:
    lap = scaled_laplacian(graph)
    coo = torch.sparse_coo_tensor(np.stack(lap.nonzero()), lap.data, lap.shape)
    torch.manual_seed(0)
    a = ChebConv(3, 2, 4, lap)
    b = ChebConv(3, 2, 4, coo)
    c = ChebConv(3, 2, 4, coo.to_sparse_csr())
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    x = torch.randn(graph.shape[0], 2, 3).transpose(0, 1)  # a non-contiguous (B, N, C) view
    torch.testing.assert_close(a(x), b(x))
    torch.testing.assert_close(a(x), c(x))
    torch.testing.assert_close(a(x), a(x.contiguous()))


def test_cheb_conv_torch_backend_equals_scipy_backend(graph: sp.csr_matrix, monkeypatch) -> None:  # noqa: ANN001
    conv = ChebConv(3, 4, 6, scaled_laplacian(graph))
    x = torch.randn(2, graph.shape[0], 3, requires_grad=True)
    y_scipy = conv(x)
    (g_scipy,) = torch.autograd.grad(y_scipy.square().sum(), x)
    monkeypatch.setattr(SparseOperator, "cpu_backend", "torch")
    y_torch = conv(x)
    (g_torch,) = torch.autograd.grad(y_torch.square().sum(), x)
    torch.testing.assert_close(y_scipy, y_torch)
    torch.testing.assert_close(g_scipy, g_torch)


def test_cheb_conv_gradients_and_double_backward_are_exact() -> None:
    vertices, triangles = grid_mesh(4)
    lap = scaled_laplacian(adjacency(triangles, len(vertices)))
    for c_in, c_out in ((2, 3), (3, 2)):  # the recursion and Clenshaw's recurrence
        conv = ChebConv(c_in, c_out, 5, lap).double()
        x = torch.randn(2, len(vertices), c_in, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(conv, (x,), fast_mode=True)
        assert torch.autograd.gradgradcheck(conv, (x,), fast_mode=True)
        out = conv(x).sum()
        out.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())


def test_sparse_operator_matches_dense_product_and_transposes() -> None:
    rng = np.random.default_rng(0)
    m = sp.random(7, 11, density=0.3, random_state=1, format="csr").astype(np.float64)
    op = SparseOperator(m).double()
    assert not op.symmetric and op.shape == (7, 11)
    x = torch.from_numpy(rng.normal(size=(11, 4)))
    torch.testing.assert_close(op.matmul(x), torch.from_numpy(m @ x.numpy()))
    y = torch.from_numpy(rng.normal(size=(7, 4)))
    torch.testing.assert_close(op.matmul(y, transpose=True), torch.from_numpy(m.T @ y.numpy()))
    xb = torch.from_numpy(rng.normal(size=(2, 11, 3))).requires_grad_(True)
    assert torch.autograd.gradgradcheck(op, (xb,), fast_mode=True)
    np.testing.assert_allclose(to_scipy_csr(op.torch_csr().to_dense()).toarray(), m.toarray(), atol=1e-7)


def test_sparse_buffers_stay_out_of_the_state_dict(graph: sp.csr_matrix) -> None:
    conv = ChebConv(3, 4, 3, scaled_laplacian(graph))
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert all(b.layout == torch.strided for b in conv.buffers())


def test_graph_resample_applies_the_matrix_to_every_batch_element() -> None:
    m = sp.random(5, 9, density=0.4, random_state=2, format="csr")
    down = GraphResample(m)
    x = torch.randn(3, 9, 2)
    expected = torch.einsum("rn,bnc->brc", torch.from_numpy(m.toarray()).float(), x)
    torch.testing.assert_close(down(x), expected)
    torch.testing.assert_close(resample(x, down.operator), expected)
    assert down.in_nodes == 9 and down.out_nodes == 5


def test_shape_errors_name_the_expected_layout(graph: sp.csr_matrix) -> None:
    conv = ChebConv(3, 4, 3, scaled_laplacian(graph))
    with pytest.raises(ValueError, match=r"\(B, 49, 3\)"):
        conv(torch.randn(2, 48, 3))
    with pytest.raises(ValueError, match="K >= 1"):
        ChebConv(3, 4, 0, scaled_laplacian(graph))
    with pytest.raises(ValueError, match=r"\(B, 9, C\)"):
        GraphResample(sp.random(5, 9, density=0.5, format="csr"))(torch.randn(1, 8, 2))


def test_mesh_decoder_on_a_hand_built_hierarchy_starts_at_zero_and_learns(graph: sp.csr_matrix) -> None:
    """A two-level hierarchy by hand: level 1 keeps every other vertex; up-sampling copies neighbours."""
    n = graph.shape[0]
    keep = np.arange(0, n, 2)
    down = sp.csr_matrix((np.ones(len(keep)), (np.arange(len(keep)), keep)), shape=(len(keep), n))
    nearest = np.minimum(np.arange(n) // 2, len(keep) - 1)
    up = sp.csr_matrix((np.ones(n), (np.arange(n), nearest)), shape=(n, len(keep)))
    coarse_adj = sp.csr_matrix(((down @ (graph + graph @ graph) @ down.T) > 0).astype(np.float64))

    class Hierarchy:
        laplacians = [scaled_laplacian(graph), scaled_laplacian(coarse_adj)]
        down_ = [down]
        up_ = [up]

    h = Hierarchy()
    h.down, h.up = h.down_, h.up_
    torch.manual_seed(0)
    net = MeshDecoder(h, in_dim=4, channels=(8, 8), K=3, out_channels=3)
    code = torch.randn(6, 4)
    assert net(code).shape == (6, n, 3) and net(code).abs().max() == 0
    xy = torch.from_numpy(grid_mesh(7)[0][:, :2]).float()
    field = torch.stack([torch.sin(xy[:, 0] / 3), torch.cos(xy[:, 1] / 3), xy.sum(1) / 12], dim=1)  # smooth
    target = code[:, :1, None] * field  # (6, n, 3): a code-dependent smooth field
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = (net(code) - target).square().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first, (first, loss.item())


@pytest.mark.parametrize("backend", ["scipy", "torch"])
def test_sparse_products_under_bf16_autocast_run_in_float32(backend: str, monkeypatch) -> None:  # noqa: ANN001
    """`--precision bf16-mixed`: a bfloat16 input is multiplied in float32 and comes back in bfloat16."""
    monkeypatch.setattr(SparseOperator, "cpu_backend", backend)
    m = sp.random(40, 30, density=0.2, random_state=2, format="csr").astype(np.float32)
    op = SparseOperator(m)
    x = torch.randn(30, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = op.matmul(x.bfloat16().requires_grad_(True))
    assert out.dtype == torch.bfloat16
    expected = torch.from_numpy(m @ x.bfloat16().float().numpy())
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)  # bf16 rounding of the output
