"""Template-relative shape smoothness (paper eq. 9, the paper's proposal).

L_smth = sum_i |(s^_i - mean_{j in M_i} s^_j) - (s~_i - mean_{j in M_i} s~_j)|: every vertex's umbrella
vector (offset from the mean of its first-order neighbours) should stay that of the template s~, so
vertices that legitimately sit off their neighbours' mean (mesh border, nostrils, eye corners, mouth
edge) are not pulled flat, unlike conventional Laplacian smoothing (`laplacian_smooth`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.geometry.laplacian import mean_neighbour_matrix, to_torch_sparse, umbrella
from facerep.plugins.losses._common import check_finite, full_precision, mean_vertex_l1

NAME = "template_smooth"


def mean_neighbour_operator(face_model: FaceModel) -> Tensor:
    """The face model's row-normalised vertex adjacency as a torch sparse (N, N) float32 matrix."""
    matrix = mean_neighbour_matrix(face_model.triangles, face_model.num_vertices)
    return to_torch_sparse(matrix, torch.float32)


class MeanNeighbourCache:
    """The mean-neighbour operator (and the template's umbrella vectors) per device and dtype.

    Kept out of the module's buffers on purpose: the engine averages floating buffers across processes
    and checkpoints them, neither of which suits a derived sparse operator; copies are made on first
    use on each (device, dtype).
    """

    def __init__(self, face_model: FaceModel) -> None:
        self.operator = mean_neighbour_operator(face_model)
        self.template = torch.as_tensor(face_model.template, dtype=torch.float32)
        self._copies: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def get(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(operator (N, N) sparse, template umbrella (N, 3)) on `like`'s device and dtype."""
        key = (like.device, like.dtype)
        if key not in self._copies:
            operator = self.operator.to(device=like.device, dtype=like.dtype)
            template = self.template.to(device=like.device, dtype=like.dtype)[None]
            self._copies[key] = (operator, umbrella(template, operator)[0])
        return self._copies[key]


class TemplateSmoothLoss(Loss):
    """Eq. (9) on ``recon.vertices`` (B, N, 3) mm, relative to ``face_model.template`` (N, 3) mm.

    Returns the unweighted mean over rows and vertices of |u(s^)_i - u(s~)_i|_1 (mm), where
    u(s)_i = s_i - mean of s over i's first-order neighbours (`facerep.geometry.laplacian.umbrella`);
    the paper sums over vertices, the mean keeps the value independent of the template's resolution.
    0 on the template itself (and on any translate of it, up to rounding).
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, *, face_model: FaceModel) -> None:
        super().__init__()
        self.weight = float(weight)
        self.operators = MeanNeighbourCache(face_model)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """(B, N, 3) decoded shapes -> scalar mm (unweighted)."""
        vertices = full_precision(recon.vertices)
        operator, target = self.operators.get(vertices)
        value = mean_vertex_l1(umbrella(vertices, operator) - target)
        return check_finite(NAME, value, {"recon.vertices": vertices}, batch.sample_ids)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss", NAME, TemplateSmoothLoss, "template-relative Laplacian smoothness (eq. 9), all rows"
        )
    ]
