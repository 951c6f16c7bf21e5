"""Code-magnitude regulariser (off by default): keeps identity and expression codes near the origin,
the latent-space analogue of the 3DMM coefficient prior."""

from __future__ import annotations

from torch import Tensor

from facerep.core.interfaces import Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite

NAME = "code_regularizer"


class CodeRegularizer(Loss):
    """identity x mean_b ||c_id,b||^2 + expression x mean_b ||c_exp,b||^2.

    Inputs: ``recon.codes.identity`` (B, D_id), ``recon.codes.expression`` (B, D_exp). The arguments
    ``identity`` and ``expression`` weigh the two codes' squared magnitudes (sum over dimensions, mean
    over rows). Returns the unweighted scalar.
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, identity: float = 1.0, expression: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.identity_weight = float(identity)
        self.expression_weight = float(expression)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Identity and expression codes -> scalar (unweighted)."""
        codes = recon.codes
        value = self.identity_weight * codes.identity.pow(2).sum(dim=1).mean()
        value = value + self.expression_weight * codes.expression.pow(2).sum(dim=1).mean()
        return check_finite(
            NAME,
            value,
            {"codes.identity": codes.identity, "codes.expression": codes.expression},
            batch.sample_ids,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss", NAME, CodeRegularizer, "squared magnitude of identity/expression codes, off by default"
        )
    ]
