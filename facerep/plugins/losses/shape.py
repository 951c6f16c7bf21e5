"""Shape loss (paper eq. 7): L1 between the decoded shape and the 3DMM shape of labelled rows."""

from __future__ import annotations

from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import (
    check_finite,
    check_same_template,
    full_precision,
    model_shape,
    row_mask,
    shape_l1,
    zero_like_graph,
)

NAME = "shape"


class ShapeLoss(Loss):
    """L_shp = ||s^ - s||_1 (eq. 7) on the labelled rows of the batch.

    Inputs: ``recon.vertices`` (B, N, 3) mm; ``batch.id_params`` (B, K_id), ``batch.exp_params``
    (B, K_exp) and ``batch.labelled`` (B,). The target s = face_model.shape(id_params, exp_params) is on
    the template's vertices (our template *is* the face model's topology, so the paper's index set T is
    the identity). Returns the unweighted mean over labelled rows and vertices of the per-vertex L1 norm
    |dx| + |dy| + |dz| in mm; 0 (with a graph) when the batch has no labelled row.
    """

    applies_to = "labelled"

    def __init__(self, weight: float = 1.0, *, face_model: FaceModel, l2_steps: int = 0) -> None:
        super().__init__()
        if int(l2_steps) < 0:
            raise FacerepError(f"loss {NAME!r}: l2_steps must be >= 0, got {l2_steps}")
        self.weight = float(weight)
        self.face_model = face_model
        self.l2_steps = int(l2_steps)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Decoded vs 3DMM shapes of labelled rows -> scalar mm (unweighted)."""
        vertices = full_precision(recon.vertices)
        rows = row_mask(batch.labelled, self.applies_to).to(vertices.device)
        if not bool(rows.any()):
            return zero_like_graph(vertices)
        if batch.id_params is None or batch.exp_params is None:
            raise FacerepError(
                f"loss {NAME!r}: the batch has labelled rows but no id_params / exp_params "
                f"(samples {batch.sample_ids[:4]})"
            )
        rows_dev = rows.to(batch.id_params.device)
        target = model_shape(self.face_model, batch.id_params[rows_dev], batch.exp_params[rows_dev], vertices)
        pred = vertices[rows]
        if int(context.get("step", 0)) < self.l2_steps:
            check_same_template(NAME, pred, target)
            value = (pred - target).pow(2).sum(-1).mean()
        else:
            value = shape_l1(NAME, pred, target)
        return check_finite(
            NAME,
            value,
            {
                "recon.vertices": vertices,
                "batch.id_params": batch.id_params,
                "batch.exp_params": batch.exp_params,
            },
            batch.sample_ids,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("loss", NAME, ShapeLoss, "L1 to the 3DMM shape (eq. 7), labelled rows")]
