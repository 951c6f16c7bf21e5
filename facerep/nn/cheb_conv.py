"""Chebyshev spectral graph convolution (Defferrard et al. 2016), as used by COMA (Ranjan et al. 2018).

``y = sum_{k<K} T_k(L~) x W_k + b`` with the Chebyshev recursion ``T_0 x = x``, ``T_1 x = L~ x``,
``T_k x = 2 L~ T_{k-1} x - T_{k-2} x`` on the scaled Laplacian ``L~ = 2 L / lambda_max - I``; with the
symmetric normalised Laplacian and lambda_max = 2 (COMA's choice) ``L~ = -D^-1/2 A D^-1/2``.

Speed comes from folding the batch into the channels: the features of a batch are kept node-major,
(N, B * C), so each Chebyshev step is ONE sparse product for the whole batch
(`facerep.nn.sparse.SparseOperator`), and the K terms are combined by one dense matrix product. The
module takes and returns (B, N, C); its output is a transposed view of node-major memory, so stacked
layers pass features along without copies.

The K - 1 sparse products run on whichever side of the layer is narrower. When C_out < C_in (every
layer of a mesh decoder) the channel mixing comes first, u_k = x W_k, and the polynomial is summed by
Clenshaw's recurrence, b_k = u_k + 2 L~ b_{k+1} - b_{k+2}, y = u_0 + L~ b_1 - b_2, which is the same
sum (T_k(L~) acts on vertices, W_k on channels, so they commute) with products on C_out channels
instead of C_in: a GC(16 -> 3) layer on the full-resolution mesh does about 5x less sparse work, and
keeps 5x less for the backward pass.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from facerep.nn.sparse import MatrixLike, SparseOperator, to_scipy_csr


def scaled_laplacian(adjacency: MatrixLike, lambda_max: float = 2.0) -> sp.csr_matrix:
    """(N, N) symmetric 0/1 adjacency -> scaled normalised Laplacian 2 L / lambda_max - I (CSR, float32).

    With L = I - D^-1/2 A D^-1/2 and lambda_max = 2 this is -D^-1/2 A D^-1/2 (isolated vertices get 0).
    """
    a = to_scipy_csr(adjacency).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-30)), 0.0)
    d = sp.diags(inv_sqrt)
    lap = sp.identity(a.shape[0], format="csr") - d @ a @ d
    scaled = (2.0 / lambda_max) * lap - sp.identity(a.shape[0], format="csr")
    scaled = sp.csr_matrix(scaled)
    scaled.eliminate_zeros()
    return scaled.astype(np.float32)


class ChebConv(nn.Module):
    """Chebyshev graph convolution of order K on a fixed graph.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        K: number of Chebyshev terms (K=6 uses T_0..T_5; COMA's and the paper's setting).
        laplacian: (N, N) scaled Laplacian L~ (scipy sparse or torch sparse), e.g. from
            `scaled_laplacian` or `facerep.geometry.hierarchy.MeshHierarchy.laplacians`; or an
            already built `SparseOperator` (to share it between layers on the same level).
        bias: add a learnt bias.

    ``forward(x (B, N, C_in)) -> (B, N, C_out)``.

    Parameters: ``weight`` (K, C_in, C_out), Glorot-uniform over fan-in K * C_in; ``bias`` (C_out,).
    """

    #: Use Clenshaw's recurrence when the layer narrows (class-wide switch; benchmarks turn it off).
    clenshaw: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        laplacian: MatrixLike | SparseOperator,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if K < 1:
            raise ValueError(f"ChebConv needs K >= 1 Chebyshev terms, got K={K}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.K = int(K)
        if isinstance(laplacian, SparseOperator):
            self.laplacian = laplacian
        else:
            self.laplacian = SparseOperator(laplacian, symmetric=True)
        if self.laplacian.shape[0] != self.laplacian.shape[1]:
            raise ValueError(f"the Laplacian must be square, got {self.laplacian.shape}")
        self.weight = nn.Parameter(torch.empty(self.K, self.in_channels, self.out_channels))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.reset_parameters()

    @property
    def num_nodes(self) -> int:
        return self.laplacian.shape[0]

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.K * self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.K}, nodes={self.num_nodes}"

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, C_in) -> (B, N, C_out)."""
        if x.dim() != 3 or x.shape[1] != self.num_nodes or x.shape[2] != self.in_channels:
            raise ValueError(
                f"ChebConv expects (B, {self.num_nodes}, {self.in_channels}) input, got {tuple(x.shape)}"
            )
        B, N, C = x.shape
        if self.K > 1 and self.out_channels < self.in_channels and self.clenshaw:
            return self._forward_clenshaw(x)
        t0 = x.transpose(0, 1).reshape(N, B * C)  # node-major; free when x came from another layer
        terms = [t0]
        if self.K > 1:
            t1 = self.laplacian.matmul(t0)
            terms.append(t1)
            for _ in range(2, self.K):
                t2 = self.laplacian.matmul(t1).mul_(2.0).sub_(t0)  # in place on a fresh product
                terms.append(t2)
                t0, t1 = t1, t2
        stacked = torch.stack([t.view(N, B, C) for t in terms], dim=2)  # (N, B, K, C)
        out = stacked.view(N * B, self.K * C) @ self.weight.view(self.K * C, self.out_channels)
        if self.bias is not None:
            out = out + self.bias
        return out.view(N, B, self.out_channels).transpose(0, 1)

    def _forward_clenshaw(self, x: Tensor) -> Tensor:
        """(B, N, C_in) -> (B, N, C_out): mix channels first, then Clenshaw's recurrence on C_out."""
        B, N, C = x.shape
        F = B * self.out_channels
        rows = x.transpose(0, 1).reshape(N * B, C)  # node-major rows
        # All K products u_k = x W_k in ONE plain GEMM, (N * B, C) @ (C, K * C_out): its backward needs
        # no transposed copies (a broadcast (K, C, C_out) matmul copied its (K, N * B, C_out) gradient
        # twice); unbind (not indexing) so the backward assembles the K gradients in one stack instead
        # of K zero-filled copies of the whole tensor. Each u_k is a strided (N, B, C_out) view, added
        # to contiguous (N, B, C_out) partial sums, which keeps the sums contiguous.
        mixing = self.weight.permute(1, 0, 2).reshape(C, self.K * self.out_channels)
        u = (rows @ mixing).view(N, B, self.K, self.out_channels).unbind(2)

        def apply(t: Tensor) -> Tensor:  # L~ t: (N, B, C_out) contiguous -> (N, B, C_out)
            return self.laplacian.matmul(t.view(N, F)).view(N, B, self.out_channels)

        # Each step writes one fresh tensor (add with alpha) and updates it in place: autograd saves
        # none of these tensors, and on a large mesh the recurrence is bound by memory traffic.
        b1 = u[self.K - 1].contiguous()
        b2: Tensor | None = None
        for k in range(self.K - 2, 0, -1):
            b = torch.add(u[k], apply(b1), alpha=2.0)
            if b2 is not None:
                b.sub_(b2)
            b1, b2 = b, b1
        out = torch.add(u[0], apply(b1))
        if b2 is not None:
            out.sub_(b2)
        if self.bias is not None:
            out.add_(self.bias)
        return out.transpose(0, 1)
