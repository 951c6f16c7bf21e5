"""Photometric loss (paper eq. 5): masked squared colour error + gradient difference loss.

L_photo = sum_p M_p (||I^_p - I_p||^2 + gdl_weight * GDL_p) / sum_p M_p over every pixel p of the
batch, where M is the input's face-segmentation mask times the renderer's coverage (coverage only with
``mask: false``, the paper's "w/o mask" ablation). The gradient difference loss (Mathieu et al. 2015,
"Deep multi-scale video prediction beyond mean square error", alpha = 1) compares the magnitudes of
horizontal and vertical image gradients, counted only where both pixels of a gradient are in the mask.
"""

from __future__ import annotations

from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite, full_precision, process_mean, require_rendering

NAME = "photometric"


def gradient_difference(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Masked GDL sum (alpha = 1): pred, target (B, C, H, W), mask (B, 1, H, W) -> scalar.

    sum over channels and pixel pairs of | |d pred| - |d target| | for the horizontal (x) and vertical
    (y) neighbour differences d, each pair weighted by the product of its two mask values.
    """
    gx_pred = (pred[..., :, 1:] - pred[..., :, :-1]).abs()
    gx_true = (target[..., :, 1:] - target[..., :, :-1]).abs()
    mx = mask[..., :, 1:] * mask[..., :, :-1]
    gy_pred = (pred[..., 1:, :] - pred[..., :-1, :]).abs()
    gy_true = (target[..., 1:, :] - target[..., :-1, :]).abs()
    my = mask[..., 1:, :] * mask[..., :-1, :]
    return (mx * (gx_pred - gx_true).abs()).sum() + (my * (gy_pred - gy_true).abs()).sum()


class PhotometricLoss(Loss):
    """Masked photometric loss (eq. 5) between ``recon.rendering.image`` and ``batch.images``.

    Inputs: rendered image (B, 3, H, W) in [0, 1] and coverage mask (B, 1, H, W); input images
    (B, 3, H, W) and face masks (B, 1, H, W). The mask is detached (the loss never learns to shrink the
    coverage). The value is per masked pixel: squared colour distance (sum over RGB) plus ``gdl_weight``
    times the GDL, both summed over the batch and divided by the batch's total mask area (pixels);
    0 when the mask is empty. Returns the unweighted scalar.
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, mask: bool = True, gdl_weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.use_mask = bool(mask)
        self.gdl_weight = float(gdl_weight)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Rendering vs input images -> scalar (unweighted, per masked pixel)."""
        rendering = require_rendering(NAME, recon)
        pred = full_precision(rendering.image)
        target = batch.images.to(device=pred.device, dtype=pred.dtype)
        if pred.shape != target.shape:
            raise FacerepError(
                f"loss {NAME!r}: rendered images {tuple(pred.shape)} and input images "
                f"{tuple(target.shape)} differ in shape (renderer image_size vs data image_size)"
            )
        mask = rendering.mask.detach().to(pred.dtype)
        if self.use_mask:
            mask = mask * batch.masks.to(device=pred.device, dtype=pred.dtype)
        error = (mask * (pred - target).pow(2)).sum()
        if self.gdl_weight != 0.0:
            error = error + self.gdl_weight * gradient_difference(pred, target, mask)
        value = error / process_mean(mask.sum()).clamp_min(1e-8)
        return check_finite(
            NAME,
            value,
            {"rendering.image": pred, "batch.images": target, "batch.masks": batch.masks},
            batch.sample_ids,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component("loss", NAME, PhotometricLoss, "masked squared colour error + image GDL (eq. 5), all rows")
    ]
