"""Point-to-plane surface error between a predicted face and a ground-truth scan (MICC protocol).

The protocol of Genova et al. 2018, followed by the paper (section 5.1): crop the ground-truth scan
to a sphere of 95 mm around its nose tip, align the prediction to it (see
`facerep.geometry.alignment`), and report the mean point-to-plane distance in millimetres.

Point-to-plane distance of a point p to a surface S: with q the closest point of S to p and n_q the
unit normal of S at q (barycentric interpolation of S's area-weighted vertex normals),
``d(p) = |(p - q) . n_q|``. Directions (`surface_error`):

- ``pred_to_scan`` (default): p runs over the predicted vertices inside the crop sphere, S is the
  cropped scan. Per-vertex values live on the prediction's topology (the error maps of Figure 3).
- ``scan_to_pred``: p runs over the cropped scan's vertices, S is the predicted mesh.
- ``symmetric``: the average of the two directions' statistics.

Statistics: ``mean`` (the paper's number) and ``rmse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facerep.geometry.alignment import MeshSurface

#: The crop radius of the MICC protocol, mm.
SCAN_CROP_RADIUS_MM = 95.0
DIRECTIONS: tuple[str, ...] = ("pred_to_scan", "scan_to_pred", "symmetric")
STATISTICS: tuple[str, ...] = ("mean", "rmse")


@dataclass
class CroppedScan:
    """A ground-truth scan cropped to a sphere around its nose tip, ready for distance queries.

    Attributes:
        vertices: (V, 3) kept vertices, mm.
        triangles: (F, 3) triangles whose three corners are all kept (re-indexed).
        kept: (V,) int64 indices of the kept vertices in the uncropped scan.
        center: (3,) the nose tip, mm.
        radius: crop radius, mm.
        landmarks: (68, 3) scan landmarks (iBUG order), or None.
        surface: the `MeshSurface` of the cropped mesh.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    kept: np.ndarray
    center: np.ndarray
    radius: float
    landmarks: np.ndarray | None
    surface: MeshSurface


def crop_sphere(
    vertices: np.ndarray, triangles: np.ndarray, center: np.ndarray, radius: float = SCAN_CROP_RADIUS_MM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the vertices within `radius` of `center` and the triangles made only of kept vertices.

    Args:
        vertices: (N, 3) mm.
        triangles: (F, 3) indices.
        center: (3,) mm.
        radius: mm.

    Returns:
        (vertices (V, 3), triangles (F', 3) re-indexed, kept (V,) indices into the input vertices).
    """
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    inside = np.linalg.norm(v - np.asarray(center, dtype=np.float64), axis=1) <= radius
    tri = tri[inside[tri].all(axis=1)]
    kept = np.flatnonzero(inside)
    if tri.size == 0:
        raise ValueError(f"no triangle lies within {radius} mm of {np.asarray(center).tolist()}")
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return v[kept], remap[tri], kept


def crop_scan(
    vertices: np.ndarray,
    triangles: np.ndarray,
    nose_tip: np.ndarray,
    *,
    radius: float = SCAN_CROP_RADIUS_MM,
    landmarks: np.ndarray | None = None,
) -> CroppedScan:
    """Crop a scan (N, 3 mm; F, 3) to `radius` mm around `nose_tip` (3,) and prepare its surface."""
    center = np.asarray(nose_tip, dtype=np.float64).reshape(3)
    v, tri, kept = crop_sphere(vertices, triangles, center, radius)
    lms = None if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    return CroppedScan(v, tri, kept, center, float(radius), lms, MeshSurface(v, tri))


def point_to_plane(points: np.ndarray, surface: MeshSurface) -> np.ndarray:
    """Signed point-to-plane distances ``(p - q) . n_q`` of (M, 3) points to `surface`, (M,)."""
    p = np.asarray(points, dtype=np.float64)
    cp = surface.closest(p)
    n = surface.normals_at(cp)
    return np.einsum("mi,mi->m", p - cp.points, n)


@dataclass
class SurfaceError:
    """Surface error of one prediction against one scan.

    Attributes:
        mean: the mean absolute point-to-plane distance of the chosen direction, mm.
        rmse: the root mean square of the same distances, mm.
        direction: one of `DIRECTIONS`.
        per_vertex: (N,) absolute pred->scan distance per predicted vertex, NaN outside the crop
            sphere (always computed: it is what the error maps show).
        scan_per_vertex: (V,) absolute scan->pred distance per cropped-scan vertex, or None when the
            direction did not need it.
    """

    mean: float
    rmse: float
    direction: str
    per_vertex: np.ndarray
    scan_per_vertex: np.ndarray | None = None

    def value(self, statistic: str = "mean") -> float:
        """The `statistic` ("mean" or "rmse") of this error, mm."""
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
        return self.mean if statistic == "mean" else self.rmse


def surface_error(
    prediction: np.ndarray,
    prediction_triangles: np.ndarray,
    scan: CroppedScan | MeshSurface,
    *,
    direction: str = "pred_to_scan",
    center: np.ndarray | None = None,
    radius: float | None = None,
) -> SurfaceError:
    """Point-to-plane error of a prediction that is already in the scan's frame (no alignment here).

    Args:
        prediction: (N, 3) predicted vertices, mm, aligned to the scan.
        prediction_triangles: (F, 3) the prediction's triangles (used by ``scan_to_pred``).
        scan: a `CroppedScan` (its nose tip and radius define the region), or a bare `MeshSurface`
            (then `center` / `radius` define the region, or every predicted vertex counts).
        direction: "pred_to_scan", "scan_to_pred" or "symmetric".
        center, radius: override the region of predicted vertices counted by ``pred_to_scan``.

    Returns:
        `SurfaceError`.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
    pred = np.asarray(prediction, dtype=np.float64)
    if isinstance(scan, CroppedScan):
        surface = scan.surface
        center = scan.center if center is None else center
        radius = scan.radius if radius is None else radius
    else:
        surface = scan
    inside = np.ones(len(pred), dtype=bool)
    if center is not None and radius is not None:
        inside = np.linalg.norm(pred - np.asarray(center, dtype=np.float64), axis=1) <= radius
    if not inside.any():
        raise ValueError("no predicted vertex lies inside the crop sphere: the prediction is not aligned")
    per_vertex = np.full(len(pred), np.nan)
    per_vertex[inside] = np.abs(point_to_plane(pred[inside], surface))
    forward = per_vertex[inside]
    scan_per_vertex = None
    if direction != "pred_to_scan":
        pred_surface = MeshSurface(pred, prediction_triangles)
        scan_per_vertex = np.abs(point_to_plane(surface.vertices, pred_surface))
    if direction == "pred_to_scan":
        mean, rmse = float(forward.mean()), float(np.sqrt((forward**2).mean()))
    elif direction == "scan_to_pred":
        mean, rmse = float(scan_per_vertex.mean()), float(np.sqrt((scan_per_vertex**2).mean()))
    else:
        mean = 0.5 * float(forward.mean() + scan_per_vertex.mean())
        rmse = 0.5 * float(np.sqrt((forward**2).mean()) + np.sqrt((scan_per_vertex**2).mean()))
    return SurfaceError(mean, rmse, direction, per_vertex, scan_per_vertex)
