"""Sparse landmark loss (paper eq. 6): projected landmark vertices vs detected 2D landmarks, plus GDL.

L_lmk = ||s^_2D[:, L] - U||^2 / size^2 + gdl_weight * L_gdl,lmk per row (the squared norm sums over the
68 landmarks, as eq. 6 writes it), averaged over the batch. ``size`` is the diagonal of the detected
landmarks' bounding box (pixels), so the value does not depend on the image resolution or on the face's
size in the image. The landmark GDL compares distances between pairs of landmarks with the detected
ones: neighbours along every iBUG-68 contour (the landmark analogue of image gradients) and, weighted
`OPENING_WEIGHT` times more, the eyelid (upper vs lower lid) and lip (upper vs lower lip) pairs whose
distances are the eyes' and mouth's openings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite, full_precision, process_mean, require_rendering

NAME = "landmark"

#: iBUG-68 contours (0-based, inclusive ranges) and whether each closes into a loop.
CONTOURS: tuple[tuple[int, int, bool], ...] = (
    (0, 16, False),  # jaw
    (17, 21, False),  # right brow (the subject's right)
    (22, 26, False),  # left brow
    (27, 30, False),  # nose bridge
    (31, 35, False),  # nose base
    (36, 41, True),  # right eye
    (42, 47, True),  # left eye
    (48, 59, True),  # outer lips
    (60, 67, True),  # inner lips
)
#: Upper-vs-lower eyelid pairs and upper-vs-lower lip pairs (0-based iBUG-68).
OPENING_PAIRS: tuple[tuple[int, int], ...] = (
    (37, 41),
    (38, 40),
    (43, 47),
    (44, 46),
    (50, 58),
    (51, 57),
    (52, 56),
    (61, 67),
    (62, 66),
    (63, 65),
)
#: Weight of an opening pair relative to a contour-neighbour pair.
OPENING_WEIGHT: float = 5.0
#: Added under the square root of pair distances (px^2) so their gradient is defined at 0.
DISTANCE_EPS: float = 1e-8


def landmark_pairs() -> tuple[Tensor, Tensor]:
    """The GDL's landmark pairs (P, 2) long and their weights (P,) float (see the module docstring)."""
    pairs: list[tuple[int, int]] = []
    weights: list[float] = []
    for first, last, closed in CONTOURS:
        idx = list(range(first, last + 1))
        links = list(zip(idx[:-1], idx[1:], strict=True))
        if closed:
            links.append((last, first))
        pairs.extend(links)
        weights.extend([1.0] * len(links))
    pairs.extend(OPENING_PAIRS)
    weights.extend([OPENING_WEIGHT] * len(OPENING_PAIRS))
    return torch.tensor(pairs, dtype=torch.long), torch.tensor(weights, dtype=torch.float32)


def pair_distances(points: Tensor, pairs: Tensor) -> Tensor:
    """(B, K, 2) points, (P, 2) pairs -> (B, P) distances (same unit as the points)."""
    d = points[:, pairs[:, 0]] - points[:, pairs[:, 1]]
    return (d.pow(2).sum(dim=-1) + DISTANCE_EPS).sqrt()


#: Rows whose detected landmarks span less than this (px, bounding-box diagonal) have no usable landmarks
#: (e.g. all zeros for a failed detection) and contribute nothing.
MIN_FACE_SIZE: float = 1.0


def face_size(landmarks: Tensor) -> Tensor:
    """(B, K, 2) px -> (B,) diagonal of the landmarks' bounding box in px."""
    extent = landmarks.amax(dim=1) - landmarks.amin(dim=1)
    return extent.norm(dim=-1)


class LandmarkLoss(Loss):
    """Sparse landmark loss (eq. 6) between ``recon.rendering.landmarks_2d`` and ``batch.landmarks``.

    Inputs: (B, 68, 2) projected and detected landmarks in pixels (iBUG order). Per row b with face
    size d_b (`face_size` of the detected landmarks):
    l2_b = sum_k ||p^_k - p_k||^2 / d_b^2 and
    gdl_b = sum_(i,j) w_ij (|p^_i - p^_j| - |p_i - p_j|)^2 / d_b^2 over `landmark_pairs` (w = 1 for
    contour neighbours, `OPENING_WEIGHT` for eyelid and lip openings).
    Returns the unweighted mean over rows of l2_b + gdl_weight * gdl_b (dimensionless); rows whose
    detected landmarks are degenerate (face size below `MIN_FACE_SIZE`, e.g. all zeros) are left out.
    For scale: every landmark off by 2 % of the face size gives l2 = 68 * 0.0004 = 0.027; off by 20 %, 2.7.
    """

    applies_to = "all"

    def __init__(self, weight: float = 1.0, gdl_weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.gdl_weight = float(gdl_weight)
        pairs, weights = landmark_pairs()
        self.register_buffer("pairs", pairs, persistent=False)
        self.register_buffer("pair_weights", weights, persistent=False)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Projected vs detected landmarks -> scalar (unweighted, dimensionless)."""
        rendering = require_rendering(NAME, recon)
        pred = full_precision(rendering.landmarks_2d)
        target = batch.landmarks.to(device=pred.device, dtype=pred.dtype)
        if pred.shape != target.shape:
            raise FacerepError(
                f"loss {NAME!r}: projected landmarks {tuple(pred.shape)} and detected landmarks "
                f"{tuple(target.shape)} differ in shape"
            )
        if self.gdl_weight != 0.0 and pred.shape[1] != 68:
            raise FacerepError(
                f"loss {NAME!r}: the landmark GDL needs the 68 iBUG landmarks, got {pred.shape[1]} "
                "(set gdl_weight: 0 for other landmark sets)"
            )
        size = face_size(target)
        usable = ~(size < MIN_FACE_SIZE)  # (B,); NaN stays usable, so NaN input is reported
        scale = size.clamp_min(MIN_FACE_SIZE).pow(2)
        per_row = (pred - target).pow(2).sum(dim=(1, 2)) / scale
        if self.gdl_weight != 0.0:
            w = self.pair_weights.to(pred.dtype)
            gap = pair_distances(pred, self.pairs) - pair_distances(target, self.pairs)
            per_row = per_row + self.gdl_weight * (gap.pow(2) * w).sum(dim=-1) / scale
        per_row = torch.where(usable, per_row, torch.zeros_like(per_row))
        value = per_row.sum() / process_mean(usable.sum().to(per_row.dtype)).clamp_min(1)
        return check_finite(
            NAME,
            value,
            {"rendering.landmarks_2d": pred, "batch.landmarks": target},
            batch.sample_ids,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss",
            NAME,
            LandmarkLoss,
            "68-landmark squared error + eyelid/lip-opening GDL, face-size normalised (eq. 6), all rows",
        )
    ]
