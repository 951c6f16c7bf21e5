"""The "learnt nothing" landmark baseline: the face model's mean 68-point layout placed in the face box.

The layout is the mean shape's landmark vertices seen from the front (x right, y down in the image);
it is fitted to a ground-truth box by a similarity without rotation: its bounding-box centre moved to
the box's centre and scaled by sqrt(w * h) of the box over its own sqrt(w * h). A model that predicted
one constant face would score this (given the box, as the 3DDFA protocol's crop gives it).
"""

from __future__ import annotations

import numpy as np

from facerep.core.interfaces import FaceModel


def mean_layout(face_model: FaceModel) -> np.ndarray:
    """(68, 2) frontal view of the face model's mean landmarks: (x, -y) in mm."""
    points = np.asarray(face_model.mean, dtype=np.float64)[np.asarray(face_model.landmarks)]
    return np.stack([points[:, 0], -points[:, 1]], axis=1)


def fit_to_box(layout: np.ndarray, box_points: np.ndarray) -> np.ndarray:
    """`layout` (K, 2) moved and scaled onto the bounding box of `box_points` (M, 2) (module docstring)."""
    src = np.asarray(layout, dtype=np.float64)
    dst = np.asarray(box_points, dtype=np.float64)
    s_lo, s_hi = src.min(axis=0), src.max(axis=0)
    d_lo, d_hi = dst.min(axis=0), dst.max(axis=0)
    scale = np.sqrt(np.prod(d_hi - d_lo) / np.prod(s_hi - s_lo))
    return (src - (s_lo + s_hi) / 2.0) * scale + (d_lo + d_hi) / 2.0
