"""Pairwise shape loss (paper eq. 8): decode A's identity code with B's expression code and compare
with the 3DMM shape of A's identity and B's expression coefficients."""

from __future__ import annotations

import torch
from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite, full_precision, model_shape, shape_l1, zero_like_graph

NAME = "pairwise"


class PairwiseShapeLoss(Loss):
    """L_pair = ||f_shape([c_id,A, c_exp,B]) - s_A,B||_1 (eq. 8) over the labelled pairs of the batch.

    Inputs: ``recon.codes.identity`` (B, D_id) and ``.expression`` (B, D_exp); ``batch.pair_index``
    (B,) long, the partner row of each labelled row (-1 for none); ``batch.id_params``,
    ``batch.exp_params``; and ``context["shape_decoder"]`` (the model's decoder, called as
    ``decoder(identity, expression) -> (M, N, 3)``). Every labelled row A whose partner B is a labelled
    row contributes decoder(c_id[A], c_exp[B]) vs face_model.shape(id_params[A], exp_params[B]); both
    directions of a pair appear when the sampler links both rows. Returns the unweighted mean over
    those rows and vertices of the per-vertex L1 norm in mm; 0 (with a graph) when there is no pair.
    """

    applies_to = "labelled"

    def __init__(self, weight: float = 1.0, *, face_model: FaceModel) -> None:
        super().__init__()
        self.weight = float(weight)
        self.face_model = face_model

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Swapped-expression decodings vs 3DMM shapes -> scalar mm (unweighted)."""
        codes = recon.codes
        zero = zero_like_graph(codes.identity, codes.expression)
        if batch.pair_index is None:
            return zero
        device = codes.identity.device
        partner = batch.pair_index.to(device=device, dtype=torch.long)
        labelled = batch.labelled.to(device=device, dtype=torch.bool)
        size = labelled.shape[0]
        if bool(((partner >= size) | (partner < -1)).any()):
            raise FacerepError(
                f"loss {NAME!r}: pair_index holds rows outside [-1, {size}): {partner.tolist()}"
            )
        valid = labelled & (partner >= 0)
        valid = valid & labelled[partner.clamp_min(0)]
        if not bool(valid.any()):
            return zero
        if batch.id_params is None or batch.exp_params is None:
            raise FacerepError(f"loss {NAME!r}: the batch has labelled pairs but no id_params / exp_params")
        a = torch.nonzero(valid).reshape(-1)
        b = partner[a]
        decoder = context["shape_decoder"]
        pred = full_precision(decoder(codes.identity[a], codes.expression[b]))
        a_p, b_p = a.to(batch.id_params.device), b.to(batch.exp_params.device)
        target = model_shape(self.face_model, batch.id_params[a_p], batch.exp_params[b_p], pred)
        value = shape_l1(NAME, pred, target)
        return check_finite(
            NAME,
            value,
            {
                "shape_decoder output": pred,
                "codes.identity": codes.identity,
                "codes.expression": codes.expression,
                "batch.id_params": batch.id_params,
                "batch.exp_params": batch.exp_params,
            },
            batch.sample_ids,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss",
            NAME,
            PairwiseShapeLoss,
            "L1 of swapped-expression decodings to 3DMM (eq. 8), labelled pairs",
        )
    ]
