"""Critic ``gcn``: a COMA-style graph encoder that scores how face-like a shape is (WGAN-div, section 4.2).

``(vertices (B, N, 3) mm) -> (B,)``: the shape is centred on the face model's mean and divided by the
prior's RMS displacement, then ``GC(K, c_0) -> DS -> GC(K, c_1) -> DS -> ... -> GC(K, c_L) -> FC(1)``
with ELU after each graph convolution and ``hierarchy.down`` for each down-sampling (L = len(channels)
- 1). There is no normalisation layer: WGAN-div penalises per-sample input gradients, which batch
statistics would mix. Every operation, including the sparse products, supports double backward
(``torch.autograd.grad(..., create_graph=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from facerep.core.interfaces import Critic, FaceModel
from facerep.core.registry import Component, hookimpl
from facerep.geometry.shape_prior import prior_shape_scale
from facerep.nn.cheb_conv import ChebConv
from facerep.nn.graph_sampling import GraphResample
from facerep.nn.mesh_decoder import check_hierarchy


class GCNCritic(Critic):
    """Shape -> realism score (B,), no batch statistics.

    Args:
        face_model: injected; template topology, mean shape and prior scale.
        channels: graph-convolution widths from the finest level to the coarsest.
        K: Chebyshev order.
        factor: decimation factor between hierarchy levels.
    """

    def __init__(
        self,
        face_model: FaceModel,
        channels: Sequence[int] = (16, 32, 64, 128),
        K: int = 6,
        factor: int = 4,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels:
            raise ValueError("the gcn critic needs at least one channel width")
        levels = len(channels) - 1
        from facerep.geometry.hierarchy import get_hierarchy

        hierarchy = get_hierarchy(face_model, factor=factor, levels=levels)
        check_hierarchy(hierarchy, levels, face_model.num_vertices)
        blocks: list[nn.Module] = []
        previous = 3
        for level, width in enumerate(channels):
            blocks.append(ChebConv(previous, width, K, hierarchy.laplacians[level]))
            blocks.append(nn.ELU())
            if level < levels:
                blocks.append(GraphResample(hierarchy.down[level]))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.coarse_vertices = int(hierarchy.laplacians[levels].shape[0])
        self.fc = nn.Linear(self.coarse_vertices * previous, 1)
        self.register_buffer(
            "mean", torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32), persistent=False
        )
        self.register_buffer("scale", torch.tensor(prior_shape_scale(face_model)), persistent=False)

    def forward(self, vertices: Tensor) -> Tensor:
        """(B, N, 3) vertices in mm -> (B,) scores."""
        if vertices.dim() != 3 or vertices.shape[1:] != self.mean.shape:
            raise ValueError(
                f"gcn critic expects (B, {self.mean.shape[0]}, 3) vertices, got {tuple(vertices.shape)}"
            )
        x = self.blocks((vertices - self.mean) / self.scale)
        return self.fc(x.reshape(x.shape[0], -1)).squeeze(1)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "critic",
            "gcn",
            GCNCritic,
            "COMA-style graph encoder (Chebyshev GC + down-sampling + FC) -> shape score, no batch norm",
        )
    ]
