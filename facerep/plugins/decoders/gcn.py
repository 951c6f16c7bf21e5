"""Shape decoder ``gcn`` and albedo decoder ``gcn``: the paper's COMA-style graph decoders (section 4.1).

Both run `facerep.nn.mesh_decoder.MeshDecoder`, ``FC -> GC(K,128) -> US -> GC(K,64) -> US -> GC(K,32)
-> US -> GC(K,16) -> GC(K,3)``, on the face model's mesh hierarchy
(`facerep.geometry.hierarchy.get_hierarchy(face_model, factor, levels=len(channels) - 1)`).

- Shape: input concat(identity, expression) (192-D at the paper's code sizes); output
  ``mean + scale * net(code)`` in millimetres, canonical frame, where ``scale`` is the linear model's
  RMS per-coordinate prior displacement (`facerep.geometry.shape_prior`; the network works in units of
  "typical face variation"). The last layer starts at zero: the untrained decoder outputs the face
  model's mean shape.
- Albedo: input identity only; output ``sigmoid(logit(albedo_mean) + net(code))``, in (0, 1), equal to
  the face model's mean albedo before training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from facerep.core.interfaces import AlbedoDecoder, FaceModel, ShapeDecoder
from facerep.core.registry import Component, hookimpl
from facerep.core.types import CodeSizes
from facerep.geometry.shape_prior import prior_shape_scale
from facerep.nn.mesh_decoder import MeshDecoder, check_hierarchy


def graph_decoder(
    face_model: FaceModel, in_dim: int, channels: Sequence[int], K: int, factor: int
) -> MeshDecoder:
    """A `MeshDecoder` from an `in_dim` code to xyz / RGB on the face model's cached mesh hierarchy."""
    from facerep.geometry.hierarchy import get_hierarchy

    levels = len(channels) - 1
    hierarchy = get_hierarchy(face_model, factor=factor, levels=levels)
    check_hierarchy(hierarchy, levels, face_model.num_vertices)
    return MeshDecoder(hierarchy, in_dim, channels, K, out_channels=3)


class _GraphCodeDecoder(nn.Module):
    """The construction the two decoders share: code sizes -> a `MeshDecoder` -> the decoder's buffers.

    Args:
        face_model: injected; the template topology and the means the decoder starts from.
        code_sizes: injected; the encoder's code sizes (the decoder reads the ones it decodes).
        channels: graph-convolution widths from the coarsest level to the finest.
        K: Chebyshev order.
        factor: decimation factor between hierarchy levels.
    """

    def __init__(
        self,
        face_model: FaceModel,
        code_sizes: CodeSizes,
        channels: Sequence[int] = (128, 64, 32, 16),
        K: int = 6,
        factor: int = 4,
    ) -> None:
        super().__init__()
        sizes = CodeSizes.of(code_sizes)
        self.net = graph_decoder(face_model, self._set_input_sizes(sizes), channels, K, factor)
        self._register_means(face_model)

    def _set_input_sizes(self, sizes: CodeSizes) -> int:
        """Keep the sizes of the codes this decoder reads; return their total (the network's input)."""
        raise NotImplementedError

    def _register_means(self, face_model: FaceModel) -> None:
        """Register the (non-persistent) buffers the output starts from."""
        raise NotImplementedError


class GCNShapeDecoder(_GraphCodeDecoder, ShapeDecoder):
    """concat(identity, expression) -> vertices (B, N, 3) in mm (canonical frame).

    Arguments as `_GraphCodeDecoder`'s: ``face_model`` gives the template topology, the mean shape and
    the prior scale; ``code_sizes`` the identity and expression sizes.
    """

    def _set_input_sizes(self, sizes: CodeSizes) -> int:
        self.id_dim, self.exp_dim = sizes.identity, sizes.expression
        return self.id_dim + self.exp_dim

    def _register_means(self, face_model: FaceModel) -> None:
        self.register_buffer(
            "mean", torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32), persistent=False
        )
        self.register_buffer("scale", torch.tensor(prior_shape_scale(face_model)), persistent=False)

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm."""
        code = torch.cat([identity, expression], dim=1)
        return self.mean + self.scale * self.net(code)


class GCNAlbedoDecoder(_GraphCodeDecoder, AlbedoDecoder):
    """identity -> per-vertex albedo (B, N, 3) in (0, 1), the face model's mean albedo before training.

    Arguments as `_GraphCodeDecoder`'s: ``face_model`` gives the template topology and the mean albedo;
    ``code_sizes`` the identity size.
    """

    def _set_input_sizes(self, sizes: CodeSizes) -> int:
        self.id_dim = sizes.identity
        return self.id_dim

    def _register_means(self, face_model: FaceModel) -> None:
        albedo = np.clip(np.asarray(face_model.albedo_mean, dtype=np.float64), 1e-3, 1 - 1e-3)
        self.register_buffer(
            "mean_logit",
            torch.as_tensor(np.log(albedo / (1 - albedo)), dtype=torch.float32),
            persistent=False,
        )

    def forward(self, identity: Tensor, skips: list[Tensor] | None = None) -> Tensor:
        """(B, D_id) -> (B, N, 3) albedo in (0, 1); `skips` is ignored."""
        return torch.sigmoid(self.mean_logit + self.net(identity))


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "shape_decoder",
            "gcn",
            GCNShapeDecoder,
            "COMA-style Chebyshev GCN: concat(id, exp) -> mean + offsets (mm) on the mesh hierarchy",
        ),
        Component(
            "albedo_decoder",
            "gcn",
            GCNAlbedoDecoder,
            "COMA-style Chebyshev GCN: identity -> per-vertex albedo, starts at the mean albedo",
        ),
    ]
