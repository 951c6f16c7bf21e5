"""Mesh down- and up-sampling: a fixed sparse matrix applied to per-vertex features.

COMA's hierarchy (`facerep.geometry.hierarchy.MeshHierarchy`) gives, per level i, ``down[i]``
(N_{i+1}, N_i), a 0/1 selection of the vertices that survive decimation, and ``up[i]`` (N_i, N_{i+1}),
barycentric weights of each fine vertex in the coarse mesh. `GraphResample` applies one of them to
(B, N_in, C) features; like `facerep.nn.cheb_conv.ChebConv` it works node-major with the batch folded
into the channels (one sparse product per call), and returns a transposed view of node-major memory.
"""

from __future__ import annotations

from torch import Tensor, nn

from facerep.nn.sparse import MatrixLike, SparseOperator


class GraphResample(nn.Module):
    """Apply a fixed (N_out, N_in) sparse matrix to the vertex axis.

    Args:
        matrix: (N_out, N_in) scipy sparse / torch sparse matrix (a hierarchy's ``down[i]`` or ``up[i]``).

    ``forward(x (B, N_in, C)) -> (B, N_out, C)``; differentiable any number of times.
    """

    def __init__(self, matrix: MatrixLike | SparseOperator) -> None:
        super().__init__()
        self.operator = matrix if isinstance(matrix, SparseOperator) else SparseOperator(matrix)

    @property
    def in_nodes(self) -> int:
        return self.operator.shape[1]

    @property
    def out_nodes(self) -> int:
        return self.operator.shape[0]

    def extra_repr(self) -> str:
        return f"{self.in_nodes} -> {self.out_nodes} vertices"

    def forward(self, x: Tensor) -> Tensor:
        """(B, N_in, C) -> (B, N_out, C)."""
        if x.dim() != 3 or x.shape[1] != self.in_nodes:
            raise ValueError(f"GraphResample expects (B, {self.in_nodes}, C) input, got {tuple(x.shape)}")
        B, N, C = x.shape
        nodes = x.transpose(0, 1).reshape(N, B * C)
        return self.operator.matmul(nodes).view(self.out_nodes, B, C).transpose(0, 1)


def resample(x: Tensor, matrix: SparseOperator) -> Tensor:
    """Functional form: (B, N_in, C) features, an (N_out, N_in) `SparseOperator` -> (B, N_out, C)."""
    B, N, C = x.shape
    nodes = x.transpose(0, 1).reshape(N, B * C)
    return matrix.matmul(nodes).view(matrix.shape[0], B, C).transpose(0, 1)
