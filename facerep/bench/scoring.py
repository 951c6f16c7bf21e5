"""Score one predicted face against one ground-truth scan: align (landmarks, then ICP), then measure.

The MICC protocol of the paper (section 5.1, after Genova et al. 2018), as facerep implements it:

1. the scan is cropped to 95 mm around its nose tip (`facerep.geometry.surface_distance.crop_scan`);
2. a similarity (rotation, translation, isotropic scale) is initialised by Umeyama on the 68
   landmarks: the prediction's landmark vertices (``face_model.landmarks``) against the scan's 68
   landmarks. Scans without landmarks start from the translation that puts the prediction's nose-tip
   vertex on the scan's nose tip;
3. the similarity is refined by ICP on closest points of the cropped scan's surface, counting only
   predicted vertices inside the crop sphere;
4. the error is the mean point-to-plane distance in mm (``pred_to_scan`` by default; see
   `facerep.geometry.surface_distance` for the other directions and RMSE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facerep.core.interfaces import FaceModel
from facerep.geometry.alignment import Similarity, icp_similarity, umeyama
from facerep.geometry.surface_distance import CroppedScan, SurfaceError, surface_error


@dataclass
class ShapeScore:
    """The result of `score_shape`.

    Attributes:
        error: the `SurfaceError` after alignment (mean, rmse, per-vertex values).
        transform: the similarity taking the prediction into the scan's frame.
        aligned: (N, 3) the prediction in the scan's frame, mm.
    """

    error: SurfaceError
    transform: Similarity
    aligned: np.ndarray


def initial_alignment(
    prediction: np.ndarray,
    scan: CroppedScan,
    landmark_vertices: np.ndarray | None,
    nose_tip_vertex: int | None,
    *,
    with_scale: bool = True,
) -> Similarity:
    """Landmark-based start of the alignment (see the module docstring).

    Args:
        prediction: (N, 3) mm.
        scan: the cropped scan (its ``landmarks`` (68, 3) may be None).
        landmark_vertices: (68,) vertex indices of the prediction's landmarks, or None.
        nose_tip_vertex: the prediction's nose-tip vertex, used when landmarks are unavailable.
        with_scale: similarity (True) or rigid (False).
    """
    if scan.landmarks is not None and landmark_vertices is not None:
        lms = np.asarray(scan.landmarks, dtype=np.float64)
        idx = np.asarray(landmark_vertices, dtype=np.int64)
        ok = np.isfinite(lms).all(axis=1)
        if ok.sum() >= 3:
            return umeyama(prediction[idx[ok]], lms[ok], with_scale=with_scale)
    anchor = prediction[nose_tip_vertex] if nose_tip_vertex is not None else prediction.mean(axis=0)
    return Similarity(1.0, np.eye(3), scan.center - anchor)


def score_shape(
    prediction: np.ndarray,
    triangles: np.ndarray,
    scan: CroppedScan,
    *,
    landmark_vertices: np.ndarray | None = None,
    nose_tip_vertex: int | None = None,
    direction: str = "pred_to_scan",
    icp_iterations: int = 30,
    icp_tolerance: float = 1e-3,
    icp_points: int | None = 1500,
    init: Similarity | None = None,
    with_scale: bool = True,
) -> ShapeScore:
    """Align a prediction to a cropped scan and measure its point-to-plane error.

    Args:
        prediction: (N, 3) predicted vertices, mm, any frame.
        triangles: (F, 3) the prediction's triangles.
        scan: the cropped ground truth.
        landmark_vertices: (68,) the prediction's landmark vertex indices (iBUG order).
        nose_tip_vertex: the prediction's nose-tip vertex (fallback start).
        direction: "pred_to_scan", "scan_to_pred" or "symmetric".
        icp_iterations: ICP iteration cap (0 keeps the landmark alignment).
        icp_tolerance: ICP stops when the mean distance improves by less than this (mm; 0.001 as in
            public implementations of the protocol).
        icp_points: predicted vertices used by ICP (a fixed subset), None for all.
        init: start from this similarity instead of the landmark alignment.
        with_scale: similarity alignment (True, the protocol) or rigid (False, used by the linear fit).

    Returns:
        `ShapeScore`.
    """
    pred = np.asarray(prediction, dtype=np.float64)
    if init is None:
        init = initial_alignment(pred, scan, landmark_vertices, nose_tip_vertex, with_scale=with_scale)
    transform = init
    if icp_iterations > 0:
        result = icp_similarity(
            pred,
            scan.surface,
            init,
            max_iterations=icp_iterations,
            tolerance=icp_tolerance,
            center=scan.center,
            radius=scan.radius,
            max_points=icp_points,
            with_scale=with_scale,
        )
        transform = result.transform
    aligned = transform.apply(pred)
    return ShapeScore(surface_error(aligned, triangles, scan, direction=direction), transform, aligned)


def score_face_shape(
    prediction: np.ndarray, face_model: FaceModel, scan: CroppedScan, **options: Any
) -> ShapeScore:
    """`score_shape` for a (N, 3) mm shape on a face model's template: its triangles, landmark vertices
    and nose tip come from `face_model`; `options` are
    `score_shape`'s keywords (direction, ICP settings)."""
    return score_shape(
        prediction,
        np.asarray(face_model.triangles),
        scan,
        landmark_vertices=np.asarray(face_model.landmarks),
        nose_tip_vertex=int(face_model.nose_tip),
        **options,
    )
