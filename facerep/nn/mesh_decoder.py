"""COMA-style mesh decoder: a code vector -> per-vertex features through a mesh hierarchy.

The paper's decoders (section 4.1) modify COMA's decoder with an extra graph convolution and
up-sampling at the start::

    FC -> GC(K, c_0) -> US -> GC(K, c_1) -> US -> ... -> GC(K, c_L) -> GC(K, out)

with L = len(channels) - 1 up-samplings: the FC output lives on the coarsest level L of the hierarchy,
each US (``hierarchy.up``) goes one level finer, and the last two convolutions run on the full template
(level 0). ELU follows every convolution except the last. The last convolution starts at zero (weights
and bias), so an untrained decoder outputs exactly zero: the decoders that use this module add it to
a mean (shape) or a mean logit (albedo), so an untrained model already outputs the mean face.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from facerep.nn.cheb_conv import ChebConv
from facerep.nn.graph_sampling import GraphResample
from facerep.nn.sparse import SparseOperator


def check_hierarchy(hierarchy: Any, levels: int, num_vertices: int | None = None) -> None:
    """Raise a clear error unless `hierarchy` has `levels` sampling steps (and `num_vertices` on level 0)."""
    for name, need in (("laplacians", levels + 1), ("up", levels), ("down", levels)):
        have = len(getattr(hierarchy, name))
        if have < need:
            raise ValueError(f"mesh hierarchy has {have} {name}, a {levels}-level network needs {need}")
    if num_vertices is not None and hierarchy.laplacians[0].shape[0] != num_vertices:
        raise ValueError(
            f"mesh hierarchy level 0 has {hierarchy.laplacians[0].shape[0]} vertices, the face model "
            f"{num_vertices}: the hierarchy was built for another template"
        )


class MeshDecoder(nn.Module):
    """Code (B, D) -> per-vertex features (B, N_0, out_channels) on the hierarchy's finest level.

    Args:
        hierarchy: a `facerep.geometry.hierarchy.MeshHierarchy` (or any object with ``laplacians``
            (scaled, per level, finest first) and ``up`` (up[i]: (N_i, N_{i+1})) lists of sparse matrices).
        in_dim: D, the code size.
        channels: widths of the graph convolutions from the coarsest level to the finest
            (the paper: 128, 64, 32, 16); len(channels) - 1 up-samplings.
        K: Chebyshev order (number of terms).
        out_channels: features per output vertex (3 for xyz or RGB).
    """

    def __init__(
        self, hierarchy: Any, in_dim: int, channels: Sequence[int], K: int = 6, out_channels: int = 3
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels:
            raise ValueError("a mesh decoder needs at least one channel width")
        levels = len(channels) - 1
        check_hierarchy(hierarchy, levels)
        laplacians = [SparseOperator(hierarchy.laplacians[i], symmetric=True) for i in range(levels + 1)]
        self.levels = levels
        self.in_dim = int(in_dim)
        self.coarse_vertices = int(hierarchy.laplacians[levels].shape[0])
        self.channels = channels
        self.fc = nn.Linear(self.in_dim, self.coarse_vertices * channels[0])
        blocks: list[nn.Module] = []
        previous = channels[0]
        for i, width in enumerate(channels):
            level = levels - i
            blocks.append(ChebConv(previous, width, K, laplacians[level]))
            blocks.append(nn.ELU())
            if level > 0:
                blocks.append(GraphResample(hierarchy.up[level - 1]))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.head = ChebConv(previous, out_channels, K, laplacians[0])
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def num_vertices(self) -> int:
        return self.head.num_nodes

    def forward(self, code: Tensor) -> Tensor:
        """(B, in_dim) -> (B, N_0, out_channels)."""
        if code.dim() != 2 or code.shape[1] != self.in_dim:
            raise ValueError(f"mesh decoder expects a (B, {self.in_dim}) code, got {tuple(code.shape)}")
        x = self.fc(code).view(code.shape[0], self.coarse_vertices, self.channels[0])
        return self.head(self.blocks(x))
