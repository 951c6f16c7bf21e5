"""Similarity alignment of point sets to triangle meshes: Umeyama, exact closest surface points, ICP.

Everything here is numpy (float64) and vectorised over points; units are whatever the inputs use
(millimetres in facerep). A similarity maps ``x -> scale * R @ x + t`` with a proper rotation R
(det +1) and an isotropic scale > 0.

- `umeyama`: the least-squares similarity between corresponding points (Umeyama 1991).
- `MeshSurface`: a triangle mesh prepared for closest-point queries on its *surface*
  (point-to-triangle, not nearest vertex). Candidate triangles come from a scipy cKDTree over the
  triangle centroids; every answer is exact: a query is accepted only once no untested triangle can
  be nearer (see `MeshSurface.closest`).
- `icp_similarity`: iterative closest point with a similarity transform, source points matched to
  the closest points of a `MeshSurface`, optionally restricted to a sphere around a centre (the
  MICC crop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * rotation @ x + translation``.

    Attributes:
        scale: isotropic scale (> 0).
        rotation: (3, 3) proper rotation matrix.
        translation: (3,) translation, in the target's units.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> Similarity:
        return cls(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points -> (..., 3) transformed points."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(..., 3) directions (e.g. normals) -> rotated directions (no scale, no translation)."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T

    def inverse(self) -> Similarity:
        rt = self.rotation.T
        return Similarity(1.0 / self.scale, rt, -(rt @ self.translation) / self.scale)

    def compose(self, inner: Similarity) -> Similarity:
        """The similarity ``self(inner(x))``."""
        return Similarity(
            self.scale * inner.scale,
            self.rotation @ inner.rotation,
            self.scale * self.rotation @ inner.translation + self.translation,
        )

    def matrix(self) -> np.ndarray:
        """(4, 4) homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out


def umeyama(
    source: np.ndarray, target: np.ndarray, *, with_scale: bool = True, weights: np.ndarray | None = None
) -> Similarity:
    """Least-squares similarity taking `source` onto `target` (Umeyama 1991).

    Args:
        source: (M, 3) points.
        target: (M, 3) corresponding points.
        with_scale: estimate the isotropic scale (else scale = 1, a rigid transform).
        weights: optional (M,) non-negative weights.

    Returns:
        the `Similarity` minimising sum_i w_i |s R source_i + t - target_i|^2.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"umeyama needs two (M, 3) arrays of equal shape, got {src.shape} and {dst.shape}")
    if src.shape[0] < 3:
        raise ValueError(f"umeyama needs at least 3 correspondences, got {src.shape[0]}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        raise ValueError("umeyama: the weights sum to zero")
    w = w / total
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs  # (3, 3) = sum w_i xd_i xs_i^T
    U, S, Vt = np.linalg.svd(cov)
    D = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2] = -1.0
    R = U @ np.diag(D) @ Vt
    if with_scale:
        var_s = float(w @ np.einsum("ij,ij->i", xs, xs))
        scale = float((S * D).sum() / var_s) if var_s > 0 else 1.0
    else:
        scale = 1.0
    t = mu_d - scale * R @ mu_s
    return Similarity(scale, R, t)


# -- closest points on a triangle mesh ----------------------------------------------------------------


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def closest_on_triangles(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of each triangle (a, b, c) to p, all broadcast to (..., 3).

    Region tests of Ericson, *Real-Time Collision Detection* (2005), section 5.1.5, evaluated for all
    pairs at once. Degenerate triangles fall back to their closest vertex or edge.

    Returns:
        (closest points (..., 3), barycentric weights (..., 3) of a, b, c).
    """
    ab = b - a
    ac = c - a
    ap = p - a
    d1 = _rowdot(ab, ap)
    d2 = _rowdot(ac, ap)
    bp = p - b
    d3 = _rowdot(ab, bp)
    d4 = _rowdot(ac, bp)
    cp = p - c
    d5 = _rowdot(ab, cp)
    d6 = _rowdot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    shape = d1.shape
    bary = np.empty((*shape, 3))
    done = np.zeros(shape, dtype=bool)

    def assign(mask: np.ndarray, u: np.ndarray | float, v: np.ndarray | float, w: np.ndarray | float) -> None:
        sel = mask & ~done
        if not sel.any():
            return
        for j, val in enumerate((u, v, w)):
            bary[..., j][sel] = val[sel] if isinstance(val, np.ndarray) else val
        done[sel] = True

    with np.errstate(divide="ignore", invalid="ignore"):
        assign((d1 <= 0) & (d2 <= 0), 1.0, 0.0, 0.0)  # vertex a
        assign((d3 >= 0) & (d4 <= d3), 0.0, 1.0, 0.0)  # vertex b
        t_ab = np.clip(d1 / (d1 - d3), 0.0, 1.0)
        assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1.0 - t_ab, t_ab, 0.0)  # edge ab
        assign((d6 >= 0) & (d5 <= d6), 0.0, 0.0, 1.0)  # vertex c
        t_ac = np.clip(d2 / (d2 - d6), 0.0, 1.0)
        assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1.0 - t_ac, 0.0, t_ac)  # edge ac
        e43 = d4 - d3
        e56 = d5 - d6
        t_bc = np.clip(e43 / (e43 + e56), 0.0, 1.0)
        assign((va <= 0) & (e43 >= 0) & (e56 >= 0), 0.0, 1.0 - t_bc, t_bc)  # edge bc
        denom = va + vb + vc
        v_in = vb / denom
        w_in = vc / denom
        inside = np.isfinite(v_in) & np.isfinite(w_in)
        assign(inside, 1.0 - v_in - w_in, v_in, w_in)  # face interior
    if not done.all():  # degenerate (zero-area) triangles: closest of the three vertices
        rest = ~done
        dists = np.stack([_rowdot(x, x) for x in (ap, bp, cp)], axis=-1)
        pick = np.argmin(dists, axis=-1)
        onehot = np.eye(3)[pick]
        bary[rest] = onehot[rest]
    closest = bary[..., 0:1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
    return closest, bary


def closest_on_triangles_flat(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Same as `closest_on_triangles` for flat (P, 3) arrays, branch-free (faster for many pairs).

    The point's projection onto the triangle's plane is kept when its barycentric coordinates are
    all non-negative; otherwise the nearest of the three edges' clamped projections wins.
    """
    ab, ac, bc = b - a, c - a, c - b
    ap, bp = p - a, p - b
    d00 = np.einsum("ij,ij->i", ab, ab)
    d01 = np.einsum("ij,ij->i", ab, ac)
    d11 = np.einsum("ij,ij->i", ac, ac)
    d20 = np.einsum("ij,ij->i", ap, ab)
    d21 = np.einsum("ij,ij->i", ap, ac)
    dbc = np.einsum("ij,ij->i", bc, bc)
    den = d00 * d11 - d01 * d01
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (d11 * d20 - d01 * d21) / den
        w = (d00 * d21 - d01 * d20) / den
        t_ab = np.clip(d20 / d00, 0.0, 1.0)
        t_ac = np.clip(d21 / d11, 0.0, 1.0)
        t_bc = np.clip(np.einsum("ij,ij->i", bp, bc) / dbc, 0.0, 1.0)
    t_ab, t_ac, t_bc = (np.nan_to_num(t, nan=0.0) for t in (t_ab, t_ac, t_bc))
    inside = np.isfinite(v) & np.isfinite(w) & (v >= 0) & (w >= 0) & (v + w <= 1) & (den > 0)
    e_ab = ap - t_ab[:, None] * ab
    e_ac = ap - t_ac[:, None] * ac
    e_bc = bp - t_bc[:, None] * bc
    dist = np.stack([np.einsum("ij,ij->i", e, e) for e in (e_ab, e_ac, e_bc)], axis=1)
    edge = np.argmin(dist, axis=1)
    zero = np.zeros_like(t_ab)
    bary = np.stack(
        [
            np.choose(edge, [1 - t_ab, 1 - t_ac, zero]),
            np.choose(edge, [t_ab, zero, 1 - t_bc]),
            np.choose(edge, [zero, t_ac, t_bc]),
        ],
        axis=1,
    )
    bary[inside] = np.stack([1 - v[inside] - w[inside], v[inside], w[inside]], axis=1)
    closest = bary[:, 0:1] * a + bary[:, 1:2] * b + bary[:, 2:3] * c
    return closest, bary


@dataclass
class ClosestPoints:
    """Closest surface points of a set of queries.

    Attributes:
        points: (M, 3) closest points on the surface.
        triangles: (M,) int64 index of the triangle each lies on.
        barycentric: (M, 3) weights of that triangle's corners.
        distances: (M,) Euclidean distances query -> closest point.
    """

    points: np.ndarray
    triangles: np.ndarray
    barycentric: np.ndarray
    distances: np.ndarray


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) unit area-weighted vertex normals of a mesh (CCW triangles: normals point outwards)."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    fn = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])  # length = 2 * area
    normals = np.zeros_like(v)
    for j in range(3):
        np.add.at(normals, tri[:, j], fn)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


@dataclass
class _TriangleGroup:
    """Triangles of similar size, with their own centroid tree and candidate bound."""

    ids: np.ndarray  # (F_g,) triangle indices into the mesh
    tree: cKDTree
    radius: float  # largest centroid-to-corner distance in the group
    first_k: int  # candidates tested first


class MeshSurface:
    """A triangle mesh prepared for exact closest-point queries and interpolated normals.

    Triangles are grouped by size (centroid-to-corner radius within 2x, 4x, ... of the median), each
    group with a cKDTree of its centroids, so that a few large triangles (common at scan borders) do
    not loosen the candidate bound of all the others (see `closest`).

    Args:
        vertices: (N, 3) vertex positions.
        triangles: (F, 3) vertex indices (counter-clockwise seen from outside).
    """

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray) -> None:
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (N, 3), got {self.vertices.shape}")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3 or len(self.triangles) == 0:
            raise ValueError(f"triangles must be a non-empty (F, 3) array, got {self.triangles.shape}")
        self.corners = self.vertices[self.triangles]  # (F, 3, 3)
        self.centroids = self.corners.mean(axis=1)
        radii = np.linalg.norm(self.corners - self.centroids[:, None], axis=2).max(axis=1)
        self.radii = radii
        #: largest distance from a triangle's centroid to one of its corners
        self.max_radius = float(radii.max())
        areas = 0.5 * np.linalg.norm(
            np.cross(self.corners[:, 1] - self.corners[:, 0], self.corners[:, 2] - self.corners[:, 0]), axis=1
        )
        mean_area = float(areas.mean()) or 1.0
        median = float(np.median(radii)) or 1.0
        size_class = np.floor(np.log2(np.maximum(radii / median, 1.0) + 1e-12)).astype(int)
        self.groups: list[_TriangleGroup] = []
        for c in np.unique(size_class):
            ids = np.flatnonzero(size_class == c)
            radius = float(radii[ids].max())
            # enough centroids that, on the surface, the k-th lies beyond the group's radius (a disc
            # of radius r holds about pi r^2 / mean area triangles of the whole mesh)
            first_k = int(np.clip(np.ceil(1.3 * np.pi * radius**2 / mean_area), 8, 128))
            self.groups.append(
                _TriangleGroup(ids, cKDTree(self.centroids[ids]), radius, min(first_k, len(ids)))
            )
        self.groups.sort(key=lambda g: -len(g.ids))
        self.normals = vertex_normals(self.vertices, self.triangles)

    @property
    def num_triangles(self) -> int:
        return int(self.triangles.shape[0])

    def _test(self, points: np.ndarray, cand: np.ndarray, dist_c: np.ndarray) -> tuple[np.ndarray, ...]:
        """Closest point over candidate triangles `cand` (P, k), nearest centroid first, for (P, 3) points.

        The first candidate gives an upper bound u; a candidate j can only beat it when its
        centroid distance minus its own radius is below u, so only those pairs are tested.
        """
        n = len(points)
        rows = np.arange(n)
        first = cand[:, 0]
        c0 = self.corners[first]
        q0, b0 = closest_on_triangles_flat(points, c0[:, 0], c0[:, 1], c0[:, 2])
        d0 = np.linalg.norm(q0 - points, axis=1)
        need = dist_c[:, 1:] - self.radii[cand[:, 1:]] < d0[:, None]
        pr, pc = np.nonzero(need)
        if pr.size == 0:
            return q0, first, b0, d0
        tri = cand[:, 1:][pr, pc]
        cc = self.corners[tri]
        q, b = closest_on_triangles_flat(points[pr], cc[:, 0], cc[:, 1], cc[:, 2])
        d = np.linalg.norm(q - points[pr], axis=1)
        order = np.lexsort((d, pr))
        pr_sorted = pr[order]
        head = np.ones(len(order), dtype=bool)
        head[1:] = pr_sorted[1:] != pr_sorted[:-1]
        pick = order[head]  # the best tested pair of each point that had any
        who = pr[pick]
        better = d[pick] < d0[who]
        who, pick = who[better], pick[better]
        q0[who], b0[who], d0[who] = q[pick], b[pick], d[pick]
        first = first.copy()
        first[who] = tri[pick]
        del rows
        return q0, first, b0, d0

    def closest(self, points: np.ndarray, k: int | None = None, max_pairs: int = 200_000) -> ClosestPoints:
        """Exact closest surface points of (M, 3) queries.

        Per triangle group (largest first): a query whose nearest centroid in the group is farther
        than (its best distance so far + the group's radius) skips the group; otherwise the k
        triangles (default: the group's ``first_k``) with the nearest centroids are tested, and the
        query is done with the group once its best distance is at most (k-th centroid distance -
        radius), since no untested triangle of the group can then be nearer. Undecided queries are
        retried with twice the candidates, until decided or the whole group was tested. Queries run
        in chunks of at most `max_pairs` (query, triangle) pairs to bound memory.
        """
        pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        m = len(pts)
        out_q = np.zeros((m, 3))
        out_t = np.zeros(m, dtype=np.int64)
        out_b = np.zeros((m, 3))
        out_d = np.full(m, np.inf)
        if m == 0:
            return ClosestPoints(out_q, out_t, out_b, out_d)
        for group in self.groups:
            n_g = len(group.ids)
            nearest, _ = group.tree.query(pts, k=1)
            pending = np.flatnonzero(nearest - group.radius < out_d)
            kk = max(1, min(group.first_k if k is None else k, n_g))
            while pending.size:
                still = []
                step = max(1, max_pairs // kk)
                for start in range(0, pending.size, step):
                    chunk = pending[start : start + step]
                    dist_c, local = group.tree.query(pts[chunk], k=kk)
                    if kk == 1:
                        dist_c, local = dist_c[:, None], local[:, None]
                    q, t, b, d = self._test(pts[chunk], group.ids[local], dist_c)
                    better = d < out_d[chunk]
                    rows = chunk[better]
                    out_q[rows], out_t[rows], out_b[rows], out_d[rows] = (
                        q[better],
                        t[better],
                        b[better],
                        d[better],
                    )
                    if kk < n_g:
                        still.append(chunk[out_d[chunk] > dist_c[:, -1] - group.radius])
                if kk >= n_g or not still:
                    break
                pending = np.concatenate(still)
                kk = min(2 * kk, n_g)
        return ClosestPoints(out_q, out_t, out_b, out_d)

    def normals_at(self, closest: ClosestPoints) -> np.ndarray:
        """(M, 3) unit normals at closest points: barycentric interpolation of the vertex normals."""
        corner_normals = self.normals[self.triangles[closest.triangles]]  # (M, 3, 3)
        n = np.einsum("mj,mjk->mk", closest.barycentric, corner_normals)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


# -- ICP -------------------------------------------------------------------------------------------


@dataclass
class IcpResult:
    """Outcome of `icp_similarity`.

    Attributes:
        transform: the similarity taking the source points onto the surface.
        mean_distance: mean closest-point distance of the matched points under `transform`.
        iterations: iterations run.
        history: mean matched distance per iteration (before each update).
        converged: True when the improvement fell below the tolerance.
    """

    transform: Similarity
    mean_distance: float
    iterations: int
    history: list[float] = field(default_factory=list)
    converged: bool = False


def icp_similarity(
    source: np.ndarray,
    surface: MeshSurface,
    init: Similarity | None = None,
    *,
    with_scale: bool = True,
    max_iterations: int = 50,
    tolerance: float = 1e-4,
    center: np.ndarray | None = None,
    radius: float | None = None,
    max_distance: float | None = None,
    max_points: int | None = 6000,
    seed: int = 0,
) -> IcpResult:
    """Refine a similarity taking `source` points onto `surface` by ICP on closest surface points.

    Each iteration moves the source points with the current transform, finds their exact closest
    points on the surface, and re-estimates the transform from the original source points to those
    points with `umeyama`. Pairs are kept when the moved point lies within `radius` of `center` (the
    region the surface was cropped to, so that source points beyond the crop are not dragged onto its
    border) and, if given, closer than `max_distance`.

    Args:
        source: (M, 3) points to align (e.g. predicted vertices, mm).
        surface: the target mesh (e.g. a cropped ground-truth scan).
        init: starting transform (e.g. from landmarks); identity when None.
        with_scale: similarity (True) or rigid (False).
        max_iterations: iteration cap.
        tolerance: stop when the mean matched distance improves by less than this (same units).
        center, radius: the keep-sphere (both or neither).
        max_distance: reject pairs farther apart than this.
        max_points: use at most this many source points (a fixed random subset) for speed.
        seed: seed of that subset.

    Returns:
        `IcpResult`.
    """
    src = np.asarray(source, dtype=np.float64)
    if max_points is not None and len(src) > max_points:
        src = src[np.random.default_rng(seed).choice(len(src), size=max_points, replace=False)]
    transform = init if init is not None else Similarity.identity()
    center_arr = None if center is None else np.asarray(center, dtype=np.float64)

    def matched(t: Similarity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kept source indices, their closest surface points, distances) under transform t."""
        moved = t.apply(src)
        keep = np.ones(len(src), dtype=bool)
        if center_arr is not None and radius is not None:
            keep &= np.linalg.norm(moved - center_arr, axis=1) <= radius
        idx = np.flatnonzero(keep)
        cp = surface.closest(moved[idx])
        if max_distance is not None:
            near = cp.distances <= max_distance
            return idx[near], cp.points[near], cp.distances[near]
        return idx, cp.points, cp.distances

    history: list[float] = []
    converged = False
    best = (np.inf, transform)
    it = 0
    for it in range(1, max_iterations + 1):  # noqa: B007 - `it` is reported
        idx, points, dists = matched(transform)
        if idx.size < 3:
            break
        mean = float(dists.mean())
        history.append(mean)
        if mean < best[0]:
            improvement = best[0] - mean
            best = (mean, transform)
            if improvement < tolerance:
                converged = True
                break
        else:  # no improvement: the previous transform stays the best
            converged = True
            break
        transform = umeyama(src[idx], points, with_scale=with_scale)
    mean, transform = best
    if not np.isfinite(mean):
        _, _, dists = matched(transform)
        mean = float(dists.mean()) if dists.size else float("nan")
    return IcpResult(transform, mean, it, history, converged)
