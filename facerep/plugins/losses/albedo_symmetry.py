"""Albedo symmetry loss (paper eq. 10): L1 between the albedo and its left-right mirror."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import FaceModel, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite, full_precision, mean_vertex_l1

NAME = "albedo_symmetry"


class AlbedoSymmetryLoss(Loss):
    """L_symm = ||A - flip(A)||_1 (eq. 10) on ``recon.albedo`` (B, N, 3) in [0, 1].

    flip(A)_i = A_mirror[i] with ``face_model.mirror`` (N,), the vertex that mirrors i across the
    face's plane of symmetry (x -> -x). Returns the unweighted mean over rows and vertices of
    |A_i - A_mirror[i]|_1 (sum over RGB); 0 for a symmetric albedo.
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, *, face_model: FaceModel) -> None:
        super().__init__()
        self.weight = float(weight)
        mirror = np.asarray(face_model.mirror, dtype=np.int64)
        n = face_model.num_vertices
        if mirror.shape != (n,) or (mirror < 0).any() or (mirror >= n).any():
            raise FacerepError(
                f"loss {NAME!r}: face model {getattr(face_model, 'name', '?')!r} has a mirror map of "
                f"shape {mirror.shape} with values outside [0, {n}); expected ({n},) vertex indices"
            )
        self.register_buffer("mirror", torch.from_numpy(mirror), persistent=False)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """(B, N, 3) albedo -> scalar (unweighted)."""
        albedo = full_precision(recon.albedo)
        mirror = self.mirror.to(albedo.device)
        value = mean_vertex_l1(albedo - albedo[:, mirror])
        return check_finite(NAME, value, {"recon.albedo": albedo}, batch.sample_ids)


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("loss", NAME, AlbedoSymmetryLoss, "L1 to the mirrored albedo (eq. 10), all rows")]
