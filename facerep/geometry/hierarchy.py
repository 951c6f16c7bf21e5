"""The COMA mesh hierarchy: decimation, down- and up-sampling matrices, Chebyshev Laplacians.

Level 0 is the full template. Each next level is a quadric-error edge-collapse decimation of the previous
one by ``factor`` (Garland-Heckbert QSlim as implemented by the ``fast-simplification`` package), in which
every collapse keeps one endpoint *at its original position*, so that the coarse mesh's vertices are a
subset of the fine mesh's vertices:

- ``down[i]`` (N_{i+1}, N_i) is a 0/1 selection of the surviving vertices (in increasing fine index);
- ``up[i]`` (N_i, N_{i+1}) maps every fine vertex to the closest point of the coarse surface and writes
  it with the barycentric weights of that coarse triangle (a surviving vertex maps to itself, so
  ``down[i] @ up[i]`` is the identity and ``up[i] @ down[i] @ x`` is close to ``x`` for smooth x);
- ``laplacians[i]`` (N_i, N_i) is the scaled normalised Laplacian ``-D^-1/2 A D^-1/2`` of level i.

Everything is deterministic (same template -> byte-identical matrices) and `get_hierarchy` caches it on
disk, keyed by the face model's fingerprint, under ``facerep.common.paths.cache_dir() / "hierarchy"``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from facerep.geometry.laplacian import scaled_normalised_laplacian

#: Bump when the construction changes, so stale caches are not reused.
HIERARCHY_VERSION = 1


@dataclass
class MeshHierarchy:
    """Meshes and sampling operators of a COMA hierarchy (level 0 = full template).

    Attributes:
        vertices: levels + 1 arrays (N_i, 3) float32, mm.
        triangles: levels + 1 arrays (F_i, 3) int64.
        down: levels CSR float32 (N_{i+1}, N_i), 0/1 (one 1 per row).
        up: levels CSR float32 (N_i, N_{i+1}), barycentric rows (non-negative, sum to 1).
        laplacians: levels + 1 CSR float32 (N_i, N_i), scaled normalised Laplacians.
        selected: levels int64 arrays (N_{i+1},): fine indices (at level i) of the surviving vertices.
    """

    vertices: list[np.ndarray]
    triangles: list[np.ndarray]
    down: list[sp.csr_matrix]
    up: list[sp.csr_matrix]
    laplacians: list[sp.csr_matrix]
    selected: list[np.ndarray]

    @property
    def num_levels(self) -> int:
        """Number of down-sampling steps (the number of meshes is one more)."""
        return len(self.down)

    @property
    def sizes(self) -> list[int]:
        """Vertex count of each level, finest first."""
        return [int(v.shape[0]) for v in self.vertices]

    def torch_operators(self, dtype: Any = None, device: Any = None) -> dict[str, list[Any]]:
        """The down / up / laplacian matrices as torch sparse COO tensors: {"down": [...], ...}."""
        import torch

        from facerep.geometry.laplacian import to_torch_sparse

        dtype = dtype or torch.float32
        return {
            "down": [to_torch_sparse(m, dtype, device) for m in self.down],
            "up": [to_torch_sparse(m, dtype, device) for m in self.up],
            "laplacians": [to_torch_sparse(m, dtype, device) for m in self.laplacians],
        }


# ----------------------------------------------------------------------------------------------------------
# decimation


def _survivors_and_triangles(
    num_vertices: int, triangles: np.ndarray, collapses: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply an edge-collapse list (i0 <- i1) to the topology, keeping original vertex positions.

    Returns (selected fine indices (M,) ascending, coarse triangles (F', 3) in coarse numbering).
    """
    parent = np.arange(num_vertices, dtype=np.int64)
    for i0, i1 in np.asarray(collapses, dtype=np.int64).reshape(-1, 2):
        # follow i0 to its current representative (it may have been collapsed earlier)
        r = i0
        while parent[r] != r:
            r = parent[r]
        if r != i1:
            parent[i1] = r
    # resolve every vertex to its root (path compression, vectorised)
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    tri = root[triangles]
    keep = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    tri = tri[keep]
    # drop duplicated faces (same vertex set), keeping the first occurrence and its orientation
    _, first = np.unique(np.sort(tri, axis=1), axis=0, return_index=True)
    tri = tri[np.sort(first)]
    selected = np.unique(tri)
    remap = np.full(num_vertices, -1, dtype=np.int64)
    remap[selected] = np.arange(selected.shape[0], dtype=np.int64)
    return selected, remap[tri]


def decimate(vertices: np.ndarray, triangles: np.ndarray, factor: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation to about 1/factor of the triangles, keeping surviving vertices in place.

    Args:
        vertices: (N, 3) positions.
        triangles: (F, 3) int indices.
        factor: reduction factor (> 1).

    Returns:
        (selected (M,) int64 indices into ``vertices`` (ascending), coarse triangles (F', 3) int64 indexing
        ``vertices[selected]``).
    """
    import fast_simplification

    if factor <= 1:
        raise ValueError(f"decimation factor must be > 1, got {factor}")
    tri = np.ascontiguousarray(triangles, dtype=np.int64)
    target = max(int(round(tri.shape[0] / factor)), 4)
    if target >= tri.shape[0]:
        raise ValueError(f"mesh with {tri.shape[0]} triangles is too small to decimate by {factor}")
    _, _, collapses = fast_simplification.simplify(
        np.ascontiguousarray(vertices, dtype=np.float64),
        tri,
        target_count=target,
        return_collapses=True,
    )
    return _survivors_and_triangles(int(vertices.shape[0]), tri, collapses)


# ----------------------------------------------------------------------------------------------------------
# closest points on a triangle mesh


def closest_point_on_triangles(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of (M, 3) points to (M, 3) triangles (a, b, c) and their barycentric weights.

    Ericson's region test (Real-Time Collision Detection, 5.1.5), vectorised; degenerate triangles fall
    back to the closest vertex. Returns (closest (M, 3), weights (M, 3) summing to 1).
    """
    ab, ac, ap = b - a, c - a, p - a
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3 = np.einsum("ij,ij->i", ab, bp)
    d4 = np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5 = np.einsum("ij,ij->i", ab, cp)
    d6 = np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    m = p.shape[0]
    w = np.zeros((m, 3), dtype=np.float64)
    done = np.zeros(m, dtype=bool)

    def assign(mask: np.ndarray, wa: np.ndarray, wb: np.ndarray, wc: np.ndarray) -> None:
        sel = mask & ~done
        w[sel, 0], w[sel, 1], w[sel, 2] = wa[sel], wb[sel], wc[sel]
        done[sel] = True

    one, zero = np.ones(m), np.zeros(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        assign((d1 <= 0) & (d2 <= 0), one, zero, zero)  # vertex a
        assign((d3 >= 0) & (d4 <= d3), zero, one, zero)  # vertex b
        t = d1 / (d1 - d3)
        assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t, t, zero)  # edge ab
        assign((d6 >= 0) & (d5 <= d6), zero, zero, one)  # vertex c
        t = d2 / (d2 - d6)
        assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t, zero, t)  # edge ac
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        assign((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), zero, 1 - t, t)  # edge bc
        denom = va + vb + vc
        v = vb / denom
        ww = vc / denom
        assign(np.ones(m, dtype=bool), 1 - v - ww, v, ww)  # interior
    bad = ~np.isfinite(w).all(axis=1)
    if bad.any():  # degenerate triangle: nearest corner
        dist = np.stack([((p - q) ** 2).sum(1) for q in (a, b, c)], axis=1)
        w[bad] = np.eye(3)[np.argmin(dist[bad], axis=1)]
    closest = w[:, :1] * a + w[:, 1:2] * b + w[:, 2:] * c
    return closest, w


def upsampling_matrix(
    fine_vertices: np.ndarray,
    coarse_vertices: np.ndarray,
    coarse_triangles: np.ndarray,
    selected: np.ndarray,
    candidates: int = 24,
) -> sp.csr_matrix:
    """Barycentric up-sampling (N_fine, N_coarse) CSR float32: each fine vertex as the closest coarse point.

    ``selected[k]`` is the fine index of coarse vertex k; those rows are one-hot. Other fine vertices are
    projected on the best of the ``candidates`` coarse triangles whose centroids are nearest.
    """
    fine = np.asarray(fine_vertices, dtype=np.float64)
    coarse = np.asarray(coarse_vertices, dtype=np.float64)
    tri = np.asarray(coarse_triangles, dtype=np.int64)
    n_fine, n_coarse = fine.shape[0], coarse.shape[0]
    is_sel = np.zeros(n_fine, dtype=bool)
    is_sel[selected] = True
    rest = np.flatnonzero(~is_sel)

    rows = [np.asarray(selected, dtype=np.int64)]
    cols = [np.arange(n_coarse, dtype=np.int64)]
    vals = [np.ones(n_coarse, dtype=np.float64)]
    if rest.size:
        centroids = coarse[tri].mean(axis=1)
        k = min(candidates, tri.shape[0])
        _, cand = cKDTree(centroids).query(fine[rest], k=k)
        cand = np.asarray(cand).reshape(rest.size, k)
        p = fine[rest]
        best_d = np.full(rest.size, np.inf)
        best_w = np.zeros((rest.size, 3))
        best_t = np.zeros(rest.size, dtype=np.int64)
        for j in range(k):
            t = tri[cand[:, j]]
            q, w = closest_point_on_triangles(p, coarse[t[:, 0]], coarse[t[:, 1]], coarse[t[:, 2]])
            d = ((p - q) ** 2).sum(1)
            better = d < best_d - 1e-12
            best_d[better], best_w[better], best_t[better] = d[better], w[better], cand[better, j]
        rows.append(np.repeat(rest, 3))
        cols.append(tri[best_t].reshape(-1))
        vals.append(best_w.reshape(-1))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    keep = v > 1e-9
    up = sp.csr_matrix((v[keep], (r[keep], c[keep])), shape=(n_fine, n_coarse))
    up.sum_duplicates()
    up = sp.csr_matrix(sp.diags(1.0 / np.asarray(up.sum(axis=1)).ravel()) @ up)
    up.sort_indices()
    return up.astype(np.float32)


def selection_matrix(selected: np.ndarray, num_fine: int) -> sp.csr_matrix:
    """0/1 down-sampling matrix (M, num_fine) float32 with a single 1 per row at ``selected[k]``."""
    m = selected.shape[0]
    d = sp.csr_matrix(
        (np.ones(m, dtype=np.float32), (np.arange(m), np.asarray(selected, dtype=np.int64))),
        shape=(m, num_fine),
    )
    d.sort_indices()
    return d


# ----------------------------------------------------------------------------------------------------------
# building and caching


def build_hierarchy(
    vertices: np.ndarray, triangles: np.ndarray, factor: int = 4, levels: int = 3
) -> MeshHierarchy:
    """Build a COMA hierarchy of ``levels`` down-sampling steps by ``factor`` from a template mesh.

    Args:
        vertices: (N, 3) template vertices, mm.
        triangles: (F, 3) triangles.
        factor: vertex reduction factor per level (COMA uses 4).
        levels: number of down-sampling steps.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    verts = [np.ascontiguousarray(vertices, dtype=np.float32)]
    tris = [np.ascontiguousarray(triangles, dtype=np.int64)]
    down: list[sp.csr_matrix] = []
    up: list[sp.csr_matrix] = []
    selected_all: list[np.ndarray] = []
    for _ in range(levels):
        v, t = verts[-1], tris[-1]
        selected, coarse_tri = decimate(v, t, factor)
        coarse = np.ascontiguousarray(v[selected])
        down.append(selection_matrix(selected, v.shape[0]))
        up.append(upsampling_matrix(v, coarse, coarse_tri, selected))
        verts.append(coarse)
        tris.append(coarse_tri)
        selected_all.append(selected)
    laps = [
        scaled_normalised_laplacian(t, v.shape[0]).astype(np.float32)
        for v, t in zip(verts, tris, strict=True)
    ]
    return MeshHierarchy(verts, tris, down, up, laps, selected_all)


def _pack(h: MeshHierarchy) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"version": np.array(HIERARCHY_VERSION), "levels": np.array(h.num_levels)}
    for i, (v, t) in enumerate(zip(h.vertices, h.triangles, strict=True)):
        out[f"vertices_{i}"], out[f"triangles_{i}"] = v, t
    for name in ("down", "up", "laplacians"):
        for i, m in enumerate(getattr(h, name)):
            out[f"{name}_{i}_data"] = m.data
            out[f"{name}_{i}_indices"] = m.indices.astype(np.int64)
            out[f"{name}_{i}_indptr"] = m.indptr.astype(np.int64)
            out[f"{name}_{i}_shape"] = np.array(m.shape, dtype=np.int64)
    for i, s in enumerate(h.selected):
        out[f"selected_{i}"] = s
    return out


def _unpack(z: Any) -> MeshHierarchy:
    levels = int(z["levels"])

    def mat(name: str, i: int) -> sp.csr_matrix:
        return sp.csr_matrix(
            (z[f"{name}_{i}_data"], z[f"{name}_{i}_indices"], z[f"{name}_{i}_indptr"]),
            shape=tuple(int(s) for s in z[f"{name}_{i}_shape"]),
        )

    return MeshHierarchy(
        vertices=[z[f"vertices_{i}"] for i in range(levels + 1)],
        triangles=[z[f"triangles_{i}"] for i in range(levels + 1)],
        down=[mat("down", i) for i in range(levels)],
        up=[mat("up", i) for i in range(levels)],
        laplacians=[mat("laplacians", i) for i in range(levels + 1)],
        selected=[z[f"selected_{i}"] for i in range(levels)],
    )


def hierarchy_cache_path(fingerprint: str, factor: int, levels: int, cache_dir: Path | None = None) -> Path:
    """Where the hierarchy of a template with this fingerprint is cached."""
    from facerep.common.paths import cache_dir as default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "hierarchy" / f"{fingerprint}_f{factor}_l{levels}_v{HIERARCHY_VERSION}.npz"


def save_hierarchy(h: MeshHierarchy, path: Path) -> None:
    """Write a hierarchy to ``path`` (.npz) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **_pack(h))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_hierarchy(path: Path) -> MeshHierarchy:
    """Read a hierarchy written by `save_hierarchy`; raises DataError if it is unreadable."""
    from facerep.common.errors import DataError

    try:
        with np.load(path) as z:
            if int(z["version"]) != HIERARCHY_VERSION:
                raise DataError(f"{path}: hierarchy cache version {int(z['version'])} != {HIERARCHY_VERSION}")
            return _unpack(z)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: unreadable mesh-hierarchy cache ({exc}); delete it to rebuild") from exc


def get_hierarchy(
    face_model: Any, factor: int = 4, levels: int = 3, cache_dir: Path | None = None, use_cache: bool = True
) -> MeshHierarchy:
    """The COMA hierarchy of a face model's template, from the on-disk cache or built (then cached).

    Args:
        face_model: a `facerep.core.interfaces.FaceModel` (its ``template``, ``triangles`` and
            ``fingerprint()`` are used).
        factor: vertex reduction factor per level.
        levels: number of down-sampling steps.
        cache_dir: cache root (default `facerep.common.paths.cache_dir()`).
        use_cache: read and write the cache (False: always build, write nothing).
    """
    path = hierarchy_cache_path(face_model.fingerprint(), factor, levels, cache_dir)
    if use_cache and path.exists():
        from facerep.common.errors import DataError

        try:
            return load_hierarchy(path)
        except DataError:
            pass  # corrupt or stale: rebuild below
    h = build_hierarchy(face_model.template, face_model.triangles, factor, levels)
    if use_cache:
        save_hierarchy(h, path)
    return h


__all__ = [
    "HIERARCHY_VERSION",
    "MeshHierarchy",
    "build_hierarchy",
    "closest_point_on_triangles",
    "decimate",
    "get_hierarchy",
    "hierarchy_cache_path",
    "load_hierarchy",
    "save_hierarchy",
    "selection_matrix",
    "upsampling_matrix",
]
