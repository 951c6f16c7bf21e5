"""Template-relative shape smoothness (paper eq. 9, the paper's proposal).

L_smth = sum_i |(s^_i - mean_{j in M_i} s^_j) - (s~_i - mean_{j in M_i} s~_j)|: every vertex's umbrella
vector (offset from the mean of its first-order neighbours) should stay that of the template s~, so
vertices that legitimately sit off their neighbours' mean (mesh border, nostrils, eye corners, mouth
edge) are not pulled flat, unlike conventional Laplacian smoothing (`laplacian_smooth`).
"""

from __future__ import annotations

from torch import Tensor

from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.geometry.laplacian import umbrella
from facerep.geometry.mean_neighbours import MeanNeighbourCache
from facerep.nn.loss_utils import check_finite, full_precision, mean_vertex_l1

NAME = "template_smooth"


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
        self.operators = MeanNeighbourCache(face_model.triangles, face_model.template)

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
