"""COMA mesh hierarchy: decimation, sampling matrices, Laplacians, determinism and the disk cache."""

from __future__ import annotations

import time

import numpy as np
import pytest

from facerep.geometry import hierarchy as hier
from facerep.geometry.hierarchy import (
    build_hierarchy,
    closest_point_on_triangles,
    get_hierarchy,
    hierarchy_cache_path,
)
from facerep.geometry.procedural_face import face_lattice, mean_shape


class _Template:
    """The smallest FaceModel-like object get_hierarchy needs (template, triangles, fingerprint)."""

    def __init__(self, n: int) -> None:
        lat = face_lattice(n)
        self.template = mean_shape(lat.xy[:, 0], lat.xy[:, 1]).astype(np.float32)
        self.triangles = lat.triangles
        self.calls = 0

    def fingerprint(self) -> str:
        import hashlib

        self.calls += 1
        return hashlib.sha256(self.template.tobytes() + self.triangles.tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def face2k() -> _Template:
    return _Template(2000)


@pytest.fixture(scope="module")
def h2k(face2k: _Template) -> hier.MeshHierarchy:
    return build_hierarchy(face2k.template, face2k.triangles, factor=4, levels=3)


def test_levels_shrink_by_the_factor(h2k: hier.MeshHierarchy) -> None:
    sizes = h2k.sizes
    assert sizes[0] == 2000 and len(sizes) == 4
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        assert 0.18 < b / a < 0.32
    for v, t in zip(h2k.vertices, h2k.triangles, strict=True):
        assert t.min() >= 0 and t.max() < len(v)
        assert len(np.unique(t)) == len(v)  # every coarse vertex is used by a triangle


def test_down_is_a_selection_and_up_is_barycentric(h2k: hier.MeshHierarchy) -> None:
    for i in range(h2k.num_levels):
        d, u = h2k.down[i], h2k.up[i]
        n_fine, n_coarse = h2k.sizes[i], h2k.sizes[i + 1]
        assert d.shape == (n_coarse, n_fine) and u.shape == (n_fine, n_coarse)
        assert set(np.unique(d.data)) == {1.0} and np.all(np.diff(d.indptr) == 1)
        assert np.array_equal(d.indices, h2k.selected[i])
        # coarse vertices are fine vertices kept in place
        assert np.array_equal(h2k.vertices[i + 1], h2k.vertices[i][h2k.selected[i]])
        assert u.data.min() >= 0 and np.allclose(np.asarray(u.sum(axis=1)).ravel(), 1.0, atol=1e-6)
        assert np.diff(u.indptr).max() <= 3
        assert np.allclose((d @ u).toarray(), np.eye(n_coarse), atol=1e-6)


def test_up_down_round_trip_on_smooth_fields(h2k: hier.MeshHierarchy) -> None:
    v = h2k.vertices[0].astype(np.float64)
    field = np.stack([np.sin(v[:, 0] / 25.0), np.cos(v[:, 1] / 30.0), v[:, 2] / 50.0], 1)
    d, u = h2k.down[0], h2k.up[0]
    err = u @ (d @ field) - field
    rel = np.sqrt((err**2).mean()) / np.sqrt(((field - field.mean(0)) ** 2).mean())
    assert rel < 0.03
    # the positions themselves: U D v is the closest point on the coarse surface
    dist = np.linalg.norm(u @ (d @ v) - v, axis=1)
    assert np.median(dist) < 0.2 and dist.mean() < 0.6


def test_laplacians_are_scaled_normalised(h2k: hier.MeshHierarchy) -> None:
    for lap, n in zip(h2k.laplacians, h2k.sizes, strict=True):
        assert lap.shape == (n, n)
        assert abs(lap - lap.T).max() < 1e-6
        assert np.all(lap.diagonal() == 0) and lap.data.max() <= 0
    small = h2k.laplacians[-1].toarray().astype(np.float64)
    w = np.linalg.eigvalsh(small)
    assert w.min() >= -1 - 1e-5 and w.max() <= 1 + 1e-5


def test_closest_point_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    a, b, c, p = (rng.normal(size=(300, 3)) for _ in range(4))
    q, w = closest_point_on_triangles(p, a, b, c)
    assert np.allclose(w.sum(1), 1) and w.min() >= -1e-12
    g = np.linspace(0, 1, 121)
    uu, vv = np.meshgrid(g, g)
    keep = uu + vv <= 1
    uu, vv = uu[keep], vv[keep]
    for i in range(0, 300, 7):
        pts = a[i] + uu[:, None] * (b[i] - a[i]) + vv[:, None] * (c[i] - a[i])
        brute = np.sqrt(((pts - p[i]) ** 2).sum(1)).min()
        assert np.linalg.norm(q[i] - p[i]) <= brute + 1e-9


def test_rebuild_is_byte_identical(face2k: _Template, h2k: hier.MeshHierarchy) -> None:
    again = build_hierarchy(face2k.template, face2k.triangles, factor=4, levels=3)
    a, b = hier._pack(h2k), hier._pack(again)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k


def test_get_hierarchy_caches_on_disk(tmp_path, face2k: _Template, monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_hierarchy(face2k, factor=4, levels=2, cache_dir=tmp_path)
    path = hierarchy_cache_path(face2k.fingerprint(), 4, 2, tmp_path)
    assert path.exists() and path.parent == tmp_path / "hierarchy"

    def no_build(*args, **kwargs):
        raise AssertionError("cache miss: the hierarchy was rebuilt")

    monkeypatch.setattr(hier, "build_hierarchy", no_build)
    second = get_hierarchy(face2k, factor=4, levels=2, cache_dir=tmp_path)
    assert second.sizes == first.sizes
    for x, y in zip(first.up + first.laplacians, second.up + second.laplacians, strict=True):
        assert (x != y).nnz == 0
    # a corrupt cache file is rebuilt, not fatal
    path.write_bytes(b"not an npz")
    monkeypatch.undo()
    third = get_hierarchy(face2k, factor=4, levels=2, cache_dir=tmp_path)
    assert third.sizes == first.sizes


def test_torch_operators_match(h2k: hier.MeshHierarchy) -> None:
    import torch

    ops = h2k.torch_operators()
    x = np.random.default_rng(1).normal(size=(h2k.sizes[1], 3)).astype(np.float32)
    got = torch.sparse.mm(ops["up"][0], torch.from_numpy(x)).numpy()
    assert np.allclose(got, h2k.up[0] @ x, atol=1e-5)


@pytest.mark.slow
def test_paper_scale_hierarchy_builds_in_under_a_minute() -> None:
    face = _Template(37202)
    start = time.perf_counter()
    h = build_hierarchy(face.template, face.triangles, factor=4, levels=4)
    elapsed = time.perf_counter() - start
    assert h.sizes[0] == 37202 and len(h.sizes) == 5
    assert elapsed < 60.0, f"37k hierarchy took {elapsed:.1f} s"
