"""Shape decoder ``gcn`` and albedo decoder ``gcn``: the paper's COMA-style graph decoders (section 4.1).

Both run `facerep.nn.mesh_decoder.MeshDecoder`, ``FC -> GC(K,128) -> US -> GC(K,64) -> US -> GC(K,32)
-> US -> GC(K,16) -> GC(K,3)``, on the face model's mesh hierarchy
(`facerep.geometry.hierarchy.get_hierarchy(face_model, factor, levels=len(channels) - 1)`).

- Shape: input concat(identity, expression) (192-D by default); output ``mean + scale * net(code)``
  in millimetres, canonical frame, where ``scale`` is the linear model's RMS per-coordinate prior
  displacement (so the network works in units of "typical face variation"). The last layer starts at
  zero: the untrained decoder outputs the face model's mean shape.
- Albedo: input identity only; output ``sigmoid(logit(albedo_mean) + net(code))``, in (0, 1), equal to
  the face model's mean albedo before training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import AlbedoDecoder, FaceModel, ShapeDecoder
from facerep.core.registry import Component, hookimpl
from facerep.nn.mesh_decoder import MeshDecoder, check_hierarchy

DEFAULT_CODE_SIZES = {"identity": 128, "expression": 64, "pose": 6, "light": 27}


def code_size(code_sizes: Mapping[str, int] | None, name: str) -> int:
    """The size of code `name` from the run's code sizes (paper defaults when absent)."""
    sizes = dict(DEFAULT_CODE_SIZES)
    if code_sizes:
        sizes.update(code_sizes)
    return int(sizes[name])


def prior_shape_scale(face_model: FaceModel) -> float:
    """RMS displacement (mm) per vertex coordinate of the linear model's prior (identity + expression).

    sqrt(mean over vertices and xyz of sum_k std_k^2 basis_k^2); 1 mm when the model has no bases.
    """
    total = np.zeros(face_model.mean.shape, dtype=np.float64)
    for basis, std in ((face_model.id_basis, face_model.id_std), (face_model.exp_basis, face_model.exp_std)):
        basis = np.asarray(basis, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
        if basis.size:
            total += np.sum((basis * std) ** 2, axis=0)
    scale = float(np.sqrt(total.mean()))
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def face_hierarchy(face_model: FaceModel, factor: int, levels: int):  # noqa: ANN201 - MeshHierarchy
    """The face model's cached COMA hierarchy, checked against its template."""
    from facerep.geometry.hierarchy import get_hierarchy

    hierarchy = get_hierarchy(face_model, factor=factor, levels=levels)
    check_hierarchy(hierarchy, levels, face_model.num_vertices)
    return hierarchy


class GCNShapeDecoder(ShapeDecoder):
    """concat(identity, expression) -> vertices (B, N, 3) in mm (canonical frame).

    Args:
        face_model: injected; gives the template topology, the mean shape and the prior scale.
        code_sizes: injected; identity and expression sizes (128 and 64 by default).
        channels: graph-convolution widths from the coarsest level to the finest.
        K: Chebyshev order.
        factor: decimation factor between hierarchy levels.
    """

    def __init__(
        self,
        face_model: FaceModel,
        code_sizes: Mapping[str, int] | None = None,
        channels: Sequence[int] = (128, 64, 32, 16),
        K: int = 6,
        factor: int = 4,
    ) -> None:
        super().__init__()
        self.id_dim = code_size(code_sizes, "identity")
        self.exp_dim = code_size(code_sizes, "expression")
        hierarchy = face_hierarchy(face_model, factor, len(channels) - 1)
        self.net = MeshDecoder(hierarchy, self.id_dim + self.exp_dim, channels, K, out_channels=3)
        self.register_buffer(
            "mean", torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32), persistent=False
        )
        self.register_buffer("scale", torch.tensor(prior_shape_scale(face_model)), persistent=False)

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm."""
        code = torch.cat([identity, expression], dim=1)
        return self.mean + self.scale * self.net(code)


class GCNAlbedoDecoder(AlbedoDecoder):
    """identity -> per-vertex albedo (B, N, 3) in (0, 1), the face model's mean albedo before training.

    Args:
        face_model: injected; template topology and mean albedo.
        code_sizes: injected; identity size (128 by default).
        channels, K, factor: as for the shape decoder.
    """

    def __init__(
        self,
        face_model: FaceModel,
        code_sizes: Mapping[str, int] | None = None,
        channels: Sequence[int] = (128, 64, 32, 16),
        K: int = 6,
        factor: int = 4,
    ) -> None:
        super().__init__()
        self.id_dim = code_size(code_sizes, "identity")
        hierarchy = face_hierarchy(face_model, factor, len(channels) - 1)
        self.net = MeshDecoder(hierarchy, self.id_dim, channels, K, out_channels=3)
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
