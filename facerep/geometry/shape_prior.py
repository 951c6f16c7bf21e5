"""The scale of a linear face model's shape prior, the unit graph networks work in."""

from __future__ import annotations

from typing import Any

import numpy as np


def prior_shape_scale(face_model: Any) -> float:
    """RMS displacement (mm) per vertex coordinate of a linear model's prior (identity + expression).

    ``sqrt(mean over vertices and xyz of sum_k std_k^2 basis_k^2)`` over the model's ``id_basis`` (K_id, N,
    3) mm / ``id_std`` (K_id,) and ``exp_basis`` / ``exp_std``; 1 mm when the model has no bases.
    `face_model` is any object with those arrays and ``mean`` (N, 3) (a `facerep.core.interfaces.FaceModel`).
    """
    total = np.zeros(np.shape(face_model.mean), dtype=np.float64)
    for basis, std in ((face_model.id_basis, face_model.id_std), (face_model.exp_basis, face_model.exp_std)):
        basis = np.asarray(basis, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
        if basis.size:
            total += np.sum((basis * std) ** 2, axis=0)
    scale = float(np.sqrt(total.mean()))
    return scale if np.isfinite(scale) and scale > 0 else 1.0
