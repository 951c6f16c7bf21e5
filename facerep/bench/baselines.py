"""Baselines computed in the same bench run: the template mean face and the best linear 3DMM fit.

- **mean face**: the face model's mean shape, scored like any prediction. Every method should beat it.
- **linear 3DMM fit** of each ground-truth scan: the floor any model restricted to the linear 3DMM's
  span can reach on that scan. The scan has its own topology, so correspondence is established by
  closest point after alignment, iteratively (a rigid-then-linear non-rigid ICP):

  1. align the current shape (the mean at first) to the cropped scan (`score_shape`: landmarks, ICP);
  2. each model vertex inside the crop sphere takes as target its closest point on the scan surface
     (pairs farther than `max_distance` mm are ignored); vertices outside the crop keep their current
     position, so they neither pull the fit nor are left undetermined;
  3. the targets are mapped back to the model's frame with the inverse similarity and
     ``face_model.fit`` returns the least-squares identity and expression coefficients; the fitted
     shape ``face_model.shape(alpha_id, alpha_exp)`` is the next current shape.

  Steps 2-3 repeat `inner` times per alignment (so the vertices outside the crop converge to the
  masked least-squares solution), and the whole loop `iterations` times.
"""

from __future__ import annotations

import numpy as np
import torch

from facerep.bench.scoring import score_shape
from facerep.core.interfaces import FaceModel
from facerep.geometry.surface_distance import CroppedScan

BASELINES: tuple[str, ...] = ("mean_face", "linear_fit")
BASELINE_TITLES: dict[str, str] = {
    "mean_face": "Template mean face",
    "linear_fit": "Best linear 3DMM fit of the scan",
}


def mean_face(face_model: FaceModel) -> np.ndarray:
    """(N, 3) mm: the face model's mean shape."""
    return np.asarray(face_model.mean, dtype=np.float64)


def linear_fit(
    face_model: FaceModel,
    scan: CroppedScan,
    *,
    iterations: int = 3,
    inner: int = 3,
    max_distance: float = 10.0,
) -> np.ndarray:
    """(N, 3) mm: the face model's best linear fit of a cropped scan, in the model's frame.

    Args:
        face_model: provides mean, triangles, landmarks, nose_tip, ``fit`` and ``shape``.
        scan: the cropped ground truth.
        iterations: alignment / correspondence rounds.
        inner: fits per round (vertices outside the crop follow the fit).
        max_distance: correspondences farther than this (mm) are ignored.
    """
    shape = mean_face(face_model)
    triangles = np.asarray(face_model.triangles)
    for _ in range(iterations):
        score = score_shape(
            shape,
            triangles,
            scan,
            landmark_vertices=face_model.landmarks,
            nose_tip_vertex=int(face_model.nose_tip),
        )
        transform = score.transform
        inverse = transform.inverse()
        aligned = score.aligned
        inside = np.linalg.norm(aligned - scan.center, axis=1) <= scan.radius
        cp = scan.surface.closest(aligned[inside])
        near = cp.distances <= max_distance
        targets_scan = cp.points[near]
        rows = np.flatnonzero(inside)[near]
        if rows.size < 3:
            break
        targets_model = inverse.apply(targets_scan)
        current = shape
        for _ in range(inner):
            target = current.copy()
            target[rows] = targets_model
            with torch.no_grad():
                alpha_id, alpha_exp = face_model.fit(torch.as_tensor(target[None], dtype=torch.float32))
                fitted = face_model.shape(alpha_id, alpha_exp)
            current = fitted[0].detach().double().cpu().numpy()
        shape = current
    return shape
