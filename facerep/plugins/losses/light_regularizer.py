"""Near-monochrome light regulariser (off by default): the three colour channels' SH coefficients
should agree, so colour is explained by the albedo rather than by coloured light (as in Deep3DFaceRecon)."""

from __future__ import annotations

from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite

NAME = "light_regularizer"


class LightRegularizer(Loss):
    """Variance across R, G, B of each SH coefficient of ``recon.codes.light`` (B, 27).

    The light code is channel-major (3 x 9: R's 9 coefficients, then G's, then B's). Returns the
    unweighted mean over rows and the 9 coefficients of the population variance over the 3 channels;
    0 for monochrome light. The renderer's ambient term is the same for all channels, so it does not
    change the value.
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """(B, 27) light codes -> scalar (unweighted)."""
        light = recon.codes.light
        if light.shape[-1] % 3 != 0:
            raise FacerepError(f"loss {NAME!r}: light code of size {light.shape[-1]} is not 3 channels")
        per_channel = light.reshape(light.shape[0], 3, -1)
        value = per_channel.var(dim=1, unbiased=False).mean()
        return check_finite(NAME, value, {"codes.light": light}, batch.sample_ids)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss", NAME, LightRegularizer, "near-monochrome SH light (channel variance), off by default"
        )
    ]
