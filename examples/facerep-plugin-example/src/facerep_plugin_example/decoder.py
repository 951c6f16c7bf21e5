"""Spiral convolution and the spiral shape decoder (Bouritsas et al. 2019, "Neural 3D Morphable Models:
Spiral Convolutional Networks for 3D Shape Representation Learning and Generation").

The decoder mirrors facerep's built-in ``gcn`` decoder, with Chebyshev graph convolutions replaced by
spiral convolutions on the same COMA mesh hierarchy (`facerep.geometry.hierarchy.get_hierarchy`):

    concat(identity, expression) -> FC -> SC(c0) -> up -> SC(c1) -> up -> ... -> SC(c_last) -> SC(3)

Output: ``mean + scale * net(code)`` in millimetres (canonical frame), where ``scale`` is the face model's
RMS prior displacement (`facerep.geometry.shape_prior`); the last layer starts at zero, so the untrained
decoder outputs the mean face.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from facerep.core.interfaces import FaceModel, ShapeDecoder
from facerep.core.types import CodeSizes
from facerep.geometry.shape_prior import prior_shape_scale
from torch import Tensor, nn

from facerep_plugin_example.spirals import spiral_indices


class SpiralConv(nn.Module):
    """One spiral convolution: gather each vertex's spiral of features, then a shared linear layer.

    Args:
        spirals: (N, L) int64 vertex indices; the index N means "padding" (a zero feature).
        in_channels, out_channels: feature widths.

    ``forward(x (B, N, C_in)) -> (B, N, C_out)``.
    """

    def __init__(self, spirals: np.ndarray | Tensor, in_channels: int, out_channels: int) -> None:
        super().__init__()
        spirals = torch.as_tensor(np.asarray(spirals), dtype=torch.long)
        if spirals.dim() != 2:
            raise ValueError(f"spirals must be (N, L), got shape {tuple(spirals.shape)}")
        self.register_buffer("spirals", spirals, persistent=False)
        self.num_vertices, self.length = int(spirals.shape[0]), int(spirals.shape[1])
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.linear = nn.Linear(self.length * self.in_channels, self.out_channels)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels} -> {self.out_channels}, {self.num_vertices} vertices, spiral {self.length}"
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != self.num_vertices or x.shape[2] != self.in_channels:
            raise ValueError(
                f"SpiralConv expects (B, {self.num_vertices}, {self.in_channels}), got {tuple(x.shape)}"
            )
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)
        gathered = padded[:, self.spirals]  # (B, N, L, C_in)
        return self.linear(gathered.reshape(x.shape[0], self.num_vertices, -1))


class Upsample(nn.Module):
    """Barycentric up-sampling with a hierarchy's ``up`` matrix, as a gather (at most 3 weights per row).

    ``forward(x (B, N_coarse, C)) -> (B, N_fine, C)``.
    """

    def __init__(self, up: Any) -> None:
        super().__init__()
        csr = up.tocsr()
        counts = np.diff(csr.indptr)
        width = max(1, int(counts.max(initial=1)))
        index = np.zeros((csr.shape[0], width), dtype=np.int64)
        weight = np.zeros((csr.shape[0], width), dtype=np.float32)
        for row in range(csr.shape[0]):
            lo, hi = csr.indptr[row], csr.indptr[row + 1]
            index[row, : hi - lo] = csr.indices[lo:hi]
            weight[row, : hi - lo] = csr.data[lo:hi]
        self.register_buffer("index", torch.from_numpy(index), persistent=False)
        self.register_buffer("weight", torch.from_numpy(weight), persistent=False)
        self.coarse = int(csr.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        return (x[:, self.index] * self.weight[None, :, :, None].to(x.dtype)).sum(dim=2)


class SpiralShapeDecoder(ShapeDecoder):
    """concat(identity, expression) -> vertices (B, N, 3) in mm, with spiral convolutions.

    Args:
        face_model: injected by facerep; template topology, mean shape and prior scale.
        code_sizes: injected by facerep; the encoder's code sizes (identity and expression are read).
        channels: spiral-convolution widths from the coarsest hierarchy level to the finest.
        length: spiral length (vertices per neighbourhood, the vertex itself included).
        factor: decimation factor between hierarchy levels.
    """

    def __init__(
        self,
        face_model: FaceModel,
        code_sizes: CodeSizes,
        channels: Sequence[int] = (128, 64, 32, 16),
        length: int = 9,
        factor: int = 4,
    ) -> None:
        super().__init__()
        from facerep.geometry.hierarchy import get_hierarchy

        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"spiral decoder: channels must be positive widths, got {channels}")
        sizes = CodeSizes.of(code_sizes)
        self.id_dim, self.exp_dim = sizes.identity, sizes.expression
        levels = len(channels) - 1
        hierarchy = get_hierarchy(face_model, factor=int(factor), levels=levels)
        if hierarchy.sizes[0] != face_model.num_vertices:
            raise ValueError(
                f"spiral decoder: hierarchy level 0 has {hierarchy.sizes[0]} vertices, "
                f"the face model {face_model.num_vertices}"
            )
        spirals = [
            spiral_indices(hierarchy.vertices[i], hierarchy.triangles[i], int(length))
            for i in range(levels + 1)
        ]
        coarse = hierarchy.sizes[levels]
        self.coarse_vertices, self.first_width = coarse, channels[0]
        self.fc = nn.Linear(self.id_dim + self.exp_dim, coarse * channels[0])
        convs = [SpiralConv(spirals[levels], channels[0], channels[0])]
        ups = []
        for j in range(1, levels + 1):
            level = levels - j
            ups.append(Upsample(hierarchy.up[level]))
            convs.append(SpiralConv(spirals[level], channels[j - 1], channels[j]))
        self.convs = nn.ModuleList(convs)
        self.ups = nn.ModuleList(ups)
        self.head = SpiralConv(spirals[0], channels[-1], 3)
        nn.init.zeros_(self.head.linear.weight)
        nn.init.zeros_(self.head.linear.bias)
        self.act = nn.ELU()
        mean = torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer(
            "scale", torch.tensor(prior_shape_scale(face_model), dtype=torch.float32), persistent=False
        )

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm, canonical frame."""
        if identity.shape[1] != self.id_dim or expression.shape[1] != self.exp_dim:
            raise ValueError(
                f"spiral decoder expects codes ({self.id_dim}, {self.exp_dim}), "
                f"got {identity.shape[1]} and {expression.shape[1]}"
            )
        x = self.fc(torch.cat([identity, expression], dim=1))
        x = self.act(self.convs[0](x.view(-1, self.coarse_vertices, self.first_width)))
        for up, conv in zip(self.ups, self.convs[1:], strict=True):
            x = self.act(conv(up(x)))
        return self.mean + self.scale * self.head(x)
