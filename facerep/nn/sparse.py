"""A fixed sparse matrix applied along the vertex axis, with a fast, twice-differentiable product.

Graph networks on meshes multiply features by constant sparse matrices: the scaled Laplacian of a
Chebyshev convolution, and the down- and up-sampling matrices of a mesh hierarchy. `SparseOperator`
holds one such matrix ``M`` (R, C) and computes ``M @ X`` for a dense ``X`` (C, F) where the feature
axis F folds the batch and the channels together, so one sparse product serves the whole batch.

The product is an autograd function whose backward is the same function applied with the transpose,
so it can be differentiated any number of times (a WGAN-div critic needs the gradient of a gradient).
On the CPU the product runs through scipy's CSR kernel, which is several times faster there than
torch's sparse CSR product; on other devices torch's sparse CSR product (cuSPARSE on CUDA) is used.
scipy's kernel is single-threaded, so large CPU products are split into row blocks of equal nonzero
counts, one per torch thread (`facerep.nn.csr_threads`), each block written straight into its rows of
one output tensor: the same arithmetic per row, so the result is bitwise the single-threaded one.

The matrix is stored as plain, non-persistent tensor buffers (CSR row pointers, column indices and
values, for M and for its transpose unless M is symmetric): they follow ``module.to(device)``, can be
broadcast by DDP, and stay out of checkpoints (they are derived from the face model).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from facerep.nn import csr_threads

MatrixLike = sp.spmatrix | sp.sparray | Tensor | np.ndarray


def to_scipy_csr(matrix: MatrixLike) -> sp.csr_matrix:
    """Any 2D sparse or dense matrix (scipy, torch sparse COO/CSR, torch dense, numpy) -> scipy CSR."""
    if isinstance(matrix, Tensor):
        m = matrix.detach().cpu()
        if m.layout == torch.sparse_csr:
            return sp.csr_matrix(
                (m.values().numpy(), m.col_indices().numpy(), m.crow_indices().numpy()), shape=tuple(m.shape)
            )
        if m.layout == torch.sparse_coo:
            m = m.coalesce()
            idx = m.indices().numpy()
            return sp.csr_matrix((m.values().numpy(), (idx[0], idx[1])), shape=tuple(m.shape))
        if m.layout == torch.strided:
            return sp.csr_matrix(m.numpy())
        raise TypeError(f"unsupported torch layout {m.layout} for a sparse operator")
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix)
    if isinstance(matrix, np.ndarray):
        return sp.csr_matrix(matrix)
    raise TypeError(f"expected a scipy sparse matrix or a torch tensor, got {type(matrix).__name__}")


class _SparseProduct(torch.autograd.Function):
    """y = M @ x (or M^T @ x); backward is the same product with the transpose, hence differentiable."""

    @staticmethod
    def forward(ctx, x: Tensor, op: SparseOperator, transpose: bool) -> Tensor:  # noqa: ANN001
        ctx.op = op
        ctx.transpose = transpose
        return op._product(x, transpose)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # noqa: ANN001
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return _SparseProduct.apply(grad, ctx.op, not ctx.transpose), None, None


class SparseOperator(nn.Module):
    """A constant sparse matrix M of shape (R, C) acting on per-vertex features.

    Args:
        matrix: (R, C) scipy sparse matrix, torch sparse (COO or CSR) or dense tensor, numpy array.
        symmetric: whether M equals its transpose (then the transpose is not stored). ``None``
            checks it.

    ``forward(x (B, C, F)) -> (B, R, F)``: ``M`` applied to every batch element. `matmul` works on the
    node-major layout (C, F) -> (R, F) used inside the graph networks.
    """

    #: CPU product backend: "scipy" (default, fastest measured) or "torch" (torch sparse CSR).
    cpu_backend: str = "scipy"

    def __init__(self, matrix: MatrixLike, symmetric: bool | None = None) -> None:
        super().__init__()
        m = to_scipy_csr(matrix).astype(np.float32)
        m.sum_duplicates()
        m.sort_indices()
        if symmetric is None:
            symmetric = m.shape[0] == m.shape[1] and abs(m - m.T).max() <= 1e-6 * max(abs(m).max(), 1e-30)
        self.symmetric = bool(symmetric)
        self.shape = (int(m.shape[0]), int(m.shape[1]))
        self._register_csr("fwd", m)
        if not self.symmetric:
            self._register_csr("bwd", sp.csr_matrix(m.T))
        self._scipy_cache: dict[tuple[str, torch.dtype], tuple[int, sp.csr_matrix]] = {}

    def _register_csr(self, prefix: str, m: sp.csr_matrix) -> None:
        m = sp.csr_matrix(m)
        m.sort_indices()
        self.register_buffer(f"{prefix}_crow", torch.from_numpy(m.indptr.astype(np.int64)), persistent=False)
        self.register_buffer(f"{prefix}_col", torch.from_numpy(m.indices.astype(np.int64)), persistent=False)
        self.register_buffer(f"{prefix}_val", torch.from_numpy(m.data.astype(np.float32)), persistent=False)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, nnz={int(self.fwd_val.numel())}, symmetric={self.symmetric}"

    def _parts(self, transpose: bool) -> tuple[str, Tensor, Tensor, Tensor, tuple[int, int]]:
        if transpose and not self.symmetric:
            return "bwd", self.bwd_crow, self.bwd_col, self.bwd_val, (self.shape[1], self.shape[0])
        return "fwd", self.fwd_crow, self.fwd_col, self.fwd_val, self.shape  # M, or M^T = M

    def scipy(self, transpose: bool = False, dtype: torch.dtype = torch.float32) -> sp.csr_matrix:
        """M (or M^T) as a scipy CSR matrix of `dtype` (cached; rebuilt if the buffers were replaced)."""
        name, crow, col, val, shape = self._parts(transpose)
        key = (name, dtype)
        stamp = val.data_ptr()
        cached = self._scipy_cache.get(key)
        if cached is None or cached[0] != stamp:
            np_dtype = np.float64 if dtype == torch.float64 else np.float32
            m = sp.csr_matrix(
                (
                    val.detach().cpu().numpy().astype(np_dtype),
                    col.detach().cpu().numpy().astype(np.int32),
                    crow.detach().cpu().numpy().astype(np.int32),
                ),
                shape=shape,
            )
            self._scipy_cache[key] = (stamp, m)
            cached = self._scipy_cache[key]
        return cached[1]

    def torch_csr(self, transpose: bool = False, dtype: torch.dtype | None = None) -> Tensor:
        """M (or M^T) as a torch sparse CSR tensor on the buffers' device."""
        _, crow, col, val, shape = self._parts(transpose)
        if dtype is not None and val.dtype != dtype:
            val = val.to(dtype)
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)

    def _product(self, x: Tensor, transpose: bool) -> Tensor:
        # The sparse kernels run in float32 (float64 kept): a bfloat16 input under autocast is
        # multiplied in float32 and the result cast back; autocast must not send sparse.mm to bf16.
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        dense = x.detach().to(dtype).contiguous()
        if x.device.type == "cpu" and self.cpu_backend == "scipy":
            out = csr_threads.csr_matmul(self.scipy(transpose, dtype), dense)
        else:
            with torch.autocast(x.device.type, enabled=False):
                out = torch.sparse.mm(self.torch_csr(transpose, dtype), dense)
        return out.to(x.dtype)

    @torch.compiler.disable  # scipy and the cached CSR copies are opaque to torch.compile: run eagerly
    def matmul(self, x: Tensor, transpose: bool = False) -> Tensor:
        """(C, F) -> (R, F): M @ x (or M^T @ x with ``transpose``), differentiable any number of times."""
        rows = self.shape[0] if transpose else self.shape[1]
        if x.dim() != 2 or x.shape[0] != rows:
            raise ValueError(
                f"sparse operator {self.shape}{'^T' if transpose else ''} expects (rows={rows}, F) input, "
                f"got {tuple(x.shape)}"
            )
        return _SparseProduct.apply(x, self, transpose)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, F) -> (B, R, F): M applied to the vertex axis of every batch element."""
        if x.dim() != 3 or x.shape[1] != self.shape[1]:
            raise ValueError(
                f"sparse operator {self.shape} expects (B, {self.shape[1]}, F), got {tuple(x.shape)}"
            )
        B, C, F = x.shape
        nodes = x.transpose(0, 1).reshape(C, B * F)
        return self.matmul(nodes).view(self.shape[0], B, F).transpose(0, 1)
