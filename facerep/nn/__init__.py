"""Small, fast neural-network building blocks for meshes (no dependency beyond torch and scipy).

- `SparseOperator`: a constant sparse matrix applied along the vertex axis (batch folded into channels),
  differentiable any number of times.
- `ChebConv`: Chebyshev graph convolution of order K on a scaled Laplacian.
- `GraphResample`: down- / up-sampling with a hierarchy's sparse matrices.
- `facerep.nn.mesh_decoder`: the COMA-style decoder the graph decoders share; `facerep.nn.loss_utils`: what
  the losses share (row selection, NaN/Inf checks, precision).
"""

from facerep.nn.cheb_conv import ChebConv, scaled_laplacian
from facerep.nn.graph_sampling import GraphResample, resample
from facerep.nn.sparse import SparseOperator, to_scipy_csr

__all__ = ["ChebConv", "GraphResample", "SparseOperator", "resample", "scaled_laplacian", "to_scipy_csr"]
