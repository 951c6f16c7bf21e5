"""Baselines computed in the same bench run: the template mean face and the best linear 3DMM fit.

- **mean face**: the face model's mean shape, scored like any prediction. Every method should beat it.
- **linear 3DMM fit** of each ground-truth scan: the floor any model restricted to the linear 3DMM's
  span can reach on that scan. The scan has its own topology, so correspondence is established by
  closest point after alignment, iteratively (rigid-then-linear non-rigid ICP):

  1. align the current shape (the mean at first) to the cropped scan (`score_shape`: landmarks, then
     ICP), rigidly: the bases model the face's size, and a free scale would trade off against them
     (the shape shrinking while the alignment scale grows);
  2. each model vertex inside the crop sphere is paired with its closest point q on the scan surface
     and the scan normal n there (pairs farther than `max_distance` mm are dropped; at most
     `max_points` vertices, a fixed subset, for speed);
  3. with the pairs mapped into the model's frame by the inverse transform, the identity and
     expression coefficients c = (alpha_id, alpha_exp) minimise
     ``sum_i ((m_i + B_i c - q_i) . n_i)^2 + w sum_i |m_i + B_i c - q_i|^2 + ridge sum_k (c_k / std_k)^2``
     (point-to-plane plus a little point-to-point, ``w`` = `point_weight`), plus a soft pull of the
     vertices without a pair (outside the crop) towards their current place, so that they cannot
     drift into the next round's crop, plus optionally the 68 landmark pairs. The ridge is a weak
     Gaussian prior (as if each pair had ~3 mm of noise) that keeps the ~100 coefficients stable
     against scanner noise. A small rigid correction of the current shape (6 more unknowns,
     discarded afterwards: the next round's ICP applies it) is solved jointly, so the coefficients
     do not absorb residual misalignment. Plain vertex least squares (``face_model.fit``) is not
     used: closest-point targets carry tangential sliding that it would fit as shape, whereas
     point-to-plane ignores it;
  4. the fitted shape ``face_model.shape(alpha_id, alpha_exp)`` is the next current shape.
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
    max_distance: float = 10.0,
    point_weight: float = 0.05,
    landmark_weight: float = 0.0,
    outside_weight: float = 0.1,
    ridge: float = 0.1,
    max_points: int = 6000,
    seed: int = 0,
) -> np.ndarray:
    """(N, 3) mm: the face model's best linear fit of a cropped scan, in the model's frame.

    Args:
        face_model: provides mean, bases and their stds, triangles, landmarks, nose_tip, ``shape``.
        scan: the cropped ground truth.
        iterations: alignment / correspondence / fit rounds.
        max_distance: correspondences farther than this (mm) are dropped.
        point_weight: weight of the point-to-point term relative to point-to-plane.
        landmark_weight: total weight of the 68 landmark pairs (model landmark vertex -> scan
            landmark, point-to-point) relative to all surface pairs; they pin tangential directions
            that closest points cannot, but pull towards the scan's own landmark definition (which
            differs between meshes of different resolution, by ~4 mm on the synthetic world), so the
            default is 0 (off); unused for scans without landmarks.
        outside_weight: total weight (relative to the surface pairs) of a point-to-point pull of the
            vertices without correspondence towards their current position.
        ridge: weight of the prior term (per unit of (coefficient / std)^2, relative to one vertex).
        max_points: vertices used per round (a fixed random subset).
        seed: seed of that subset.
    """
    mean = mean_face(face_model)
    basis = np.concatenate(
        [
            np.asarray(face_model.id_basis, dtype=np.float64),
            np.asarray(face_model.exp_basis, dtype=np.float64),
        ]
    )  # (K, N, 3)
    std = np.concatenate([np.asarray(face_model.id_std), np.asarray(face_model.exp_std)]).astype(np.float64)
    k_id = int(np.asarray(face_model.id_basis).shape[0])
    rng = np.random.default_rng(seed)
    shape = mean
    triangles = np.asarray(face_model.triangles)
    transform = None
    for _ in range(iterations):
        score = score_shape(
            shape,
            triangles,
            scan,
            landmark_vertices=face_model.landmarks,
            nose_tip_vertex=int(face_model.nose_tip),
            init=transform,
            with_scale=False,
        )
        transform = score.transform
        inside = np.flatnonzero(np.linalg.norm(score.aligned - scan.center, axis=1) <= scan.radius)
        if inside.size > max_points:
            inside = np.sort(rng.choice(inside, size=max_points, replace=False))
        cp = scan.surface.closest(score.aligned[inside])
        near = cp.distances <= max_distance
        rows = inside[near]
        if rows.size < 3:
            break
        inverse = score.transform.inverse()
        q = inverse.apply(cp.points[near])  # (M, 3) targets in the model's frame
        n = inverse.apply_vectors(scan.surface.normals_at(cp)[near])  # rotations keep unit length
        # unknowns: K coefficients, then a small rigid correction of the current shape x
        # (rotation w: w x x_i, translation: tau), solved jointly so that the
        # coefficients are not distorted by a misalignment that the next round's ICP will remove
        x = shape[rows]
        pose = np.stack(
            [np.cross(np.eye(3)[a], x) for a in range(3)]
            + [np.broadcast_to(np.eye(3)[a], x.shape) for a in range(3)]
        )  # (6, M, 3)
        b = np.concatenate([basis[:, rows], pose])  # (K + 6, M, 3)
        r = q - mean[rows]  # what the columns should reach
        a_plane = np.einsum("kmc,mc->mk", b, n)  # (M, K + 6)
        y_plane = np.einsum("mc,mc->m", r, n)
        gram = a_plane.T @ a_plane + point_weight * np.einsum("kmc,lmc->kl", b, b)
        rhs = a_plane.T @ y_plane + point_weight * np.einsum("kmc,mc->k", b, r)
        # vertices without a correspondence (outside the crop, or too far) keep their current place
        # softly, so the fit cannot move them arbitrarily (they would enter the next round's crop)
        free = np.setdiff1d(np.arange(len(mean)), rows)
        if free.size > max_points:
            free = np.sort(rng.choice(free, size=max_points, replace=False))
        if free.size and outside_weight > 0:
            b_f = basis[:, free]
            r_f = shape[free] - mean[free]
            w_f = outside_weight * len(rows) / free.size
            gram[: len(std), : len(std)] += w_f * np.einsum("kmc,lmc->kl", b_f, b_f)
            rhs[: len(std)] += w_f * np.einsum("kmc,mc->k", b_f, r_f)
        if scan.landmarks is not None and landmark_weight > 0:
            lm_rows = np.asarray(face_model.landmarks, dtype=np.int64)
            ok = np.isfinite(scan.landmarks).all(axis=1)
            lm_rows = lm_rows[ok]
            x_l = shape[lm_rows]
            b_l = np.concatenate(
                [
                    basis[:, lm_rows],
                    np.stack(
                        [np.cross(np.eye(3)[a], x_l) for a in range(3)]
                        + [np.broadcast_to(np.eye(3)[a], x_l.shape) for a in range(3)]
                    ),
                ]
            )
            r_l = inverse.apply(scan.landmarks[ok]) - mean[lm_rows]
            w_l = landmark_weight * len(rows) / max(len(lm_rows), 1)
            gram += w_l * np.einsum("kmc,lmc->kl", b_l, b_l)
            rhs += w_l * np.einsum("kmc,mc->k", b_l, r_l)
        prior = np.zeros(len(b))
        prior[: len(std)] = ridge / np.maximum(std, 1e-12) ** 2
        gram += np.diag(prior)
        coeffs = np.linalg.solve(gram, rhs)[: len(std)]
        with torch.no_grad():
            alpha_id = torch.as_tensor(coeffs[None, :k_id], dtype=torch.float32)
            alpha_exp = torch.as_tensor(coeffs[None, k_id:], dtype=torch.float32)
            shape = face_model.shape(alpha_id, alpha_exp)[0].double().cpu().numpy()
    return shape
