"""Conventional Laplacian smoothness (the paper's ablation baseline for eq. 9).

Every vertex is pulled to the mean of its first-order neighbours: L = sum_i |s^_i - mean_{j in M_i} s^_j|.
Vertices that sit off their neighbours' mean on any face (mesh border, nostrils, mouth edge) are
flattened, which the paper's Figure 7 shows; `template_smooth` is the paper's remedy.
"""

from __future__ import annotations

from torch import Tensor

from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.geometry.laplacian import umbrella
from facerep.geometry.mean_neighbours import MeanNeighbourCache
from facerep.nn.loss_utils import check_finite, full_precision, mean_vertex_l1

NAME = "laplacian_smooth"


class LaplacianSmoothLoss(Loss):
    """Conventional umbrella-operator smoothness on ``recon.vertices`` (B, N, 3) mm.

    Returns the unweighted mean over rows and vertices of |u(s^)_i|_1 (mm), u(s)_i = s_i - mean of s
    over i's first-order neighbours: the same L1 form as eq. (9) with a zero target, so the ablation
    changes only the target. Not 0 on the template (its border and features are not flat).
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, *, face_model: FaceModel) -> None:
        super().__init__()
        self.weight = float(weight)
        self.operators = MeanNeighbourCache(face_model.triangles, face_model.template)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """(B, N, 3) decoded shapes -> scalar mm (unweighted)."""
        vertices = full_precision(recon.vertices)
        operator, _ = self.operators.get(vertices)
        value = mean_vertex_l1(umbrella(vertices, operator))
        return check_finite(NAME, value, {"recon.vertices": vertices}, batch.sample_ids)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss",
            NAME,
            LaplacianSmoothLoss,
            "conventional Laplacian smoothness (ablation of eq. 9), all rows",
        )
    ]
