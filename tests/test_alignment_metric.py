"""The MICC metric on analytic cases: Umeyama, exact closest surface points, ICP, point-to-plane error."""

from __future__ import annotations

import numpy as np
import pytest

from facerep.geometry.alignment import (
    MeshSurface,
    Similarity,
    closest_on_triangles,
    icp_similarity,
    umeyama,
)
from facerep.geometry.surface_distance import crop_scan, crop_sphere, point_to_plane, surface_error


def bump_grid(n: int = 50, size: float = 120.0, height: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth face-sized height field z = h exp(-r^2 / 2 sigma^2) triangulated on an n x n grid (mm)."""
    x, y = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(-size / 2, size / 2, n))
    z = height * np.exp(-(x**2 + (0.8 * y) ** 2) / (2 * 30.0**2)) + 0.002 * x**2
    v = np.stack([x, y, z], -1).reshape(-1, 3)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def random_similarity(rng: np.random.Generator, scale: float = 1.15) -> Similarity:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return Similarity(scale, q, rng.normal(scale=20.0, size=3))


def test_umeyama_recovers_similarity_exactly() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(40, 3)) * 30
    true = random_similarity(rng, 0.7)
    est = umeyama(src, true.apply(src))
    assert est.scale == pytest.approx(0.7, abs=1e-10)
    np.testing.assert_allclose(est.rotation, true.rotation, atol=1e-10)
    np.testing.assert_allclose(est.translation, true.translation, atol=1e-8)
    assert np.linalg.det(est.rotation) == pytest.approx(1.0)
    rigid = umeyama(src, true.apply(src), with_scale=False)
    assert rigid.scale == 1.0
    np.testing.assert_allclose(true.compose(true.inverse()).matrix(), np.eye(4), atol=1e-10)


def test_umeyama_never_returns_a_reflection() -> None:
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    mirrored = src * np.array([-1.0, 1.0, 1.0])
    est = umeyama(src, mirrored)
    assert np.linalg.det(est.rotation) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3"):
        umeyama(src[:2], src[:2])


def test_closest_points_match_brute_force_on_the_surface() -> None:
    v, t = bump_grid(30)
    surface = MeshSurface(v, t)
    rng = np.random.default_rng(2)
    queries = np.column_stack(
        [rng.uniform(-80, 80, 300), rng.uniform(-80, 80, 300), rng.uniform(-30, 70, 300)]
    )
    cp = surface.closest(queries)
    corners = v[t]
    q_all, _ = closest_on_triangles(
        queries[:, None], corners[None, :, 0], corners[None, :, 1], corners[None, :, 2]
    )
    brute = np.linalg.norm(q_all - queries[:, None], axis=-1).min(axis=1)
    np.testing.assert_allclose(cp.distances, brute, atol=1e-9)
    # points returned lie on their triangles, with barycentric weights summing to one
    np.testing.assert_allclose(cp.barycentric.sum(1), 1.0, atol=1e-12)
    assert (cp.barycentric >= -1e-12).all()
    recon = np.einsum("mj,mjk->mk", cp.barycentric, corners[cp.triangles])
    np.testing.assert_allclose(recon, cp.points, atol=1e-9)


def test_surface_not_vertices_a_point_above_a_face_centre_has_zero_distance() -> None:
    v = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0]])
    surface = MeshSurface(v, np.array([[0, 1, 2]]))
    cp = surface.closest(np.array([[3.0, 3.0, 2.0], [20.0, -5.0, 0.0]]))
    np.testing.assert_allclose(cp.points[0], [3, 3, 0])
    assert cp.distances[0] == pytest.approx(2.0)
    np.testing.assert_allclose(cp.points[1], [10, 0, 0])  # vertex region
    assert point_to_plane(np.array([[3.0, 3.0, 2.0]]), surface)[0] == pytest.approx(2.0)


def test_identical_meshes_have_zero_error() -> None:
    v, t = bump_grid()
    err = surface_error(v, t, MeshSurface(v, t), direction="symmetric")
    assert err.mean == pytest.approx(0.0, abs=1e-9)
    assert err.rmse == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("direction", ["pred_to_scan", "scan_to_pred", "symmetric"])
def test_one_millimetre_normal_offset_measures_one_without_alignment(direction: str) -> None:
    v, t = bump_grid(60)
    surface = MeshSurface(v, t)
    err = surface_error(v + surface.normals, t, surface, direction=direction)
    assert err.mean == pytest.approx(1.0, abs=0.01)
    assert err.rmse == pytest.approx(1.0, abs=0.01)
    signed = point_to_plane(v + 0.5 * surface.normals, surface)
    assert np.median(signed) == pytest.approx(0.5, abs=1e-3)  # signed: outside is positive


def test_rotated_scaled_translated_copy_aligns_back_to_zero() -> None:
    v, t = bump_grid(50)
    surface = MeshSurface(v, t)
    rng = np.random.default_rng(3)
    moved = random_similarity(rng, 1.2).apply(v)
    landmarks = np.arange(0, len(v), 97)
    init = umeyama(moved[landmarks], v[landmarks])
    result = icp_similarity(moved, surface, init)
    aligned = result.transform.apply(moved)
    assert surface_error(aligned, t, surface).mean < 1e-6
    assert result.transform.scale == pytest.approx(1 / 1.2, rel=1e-6)


def test_icp_converges_from_a_perturbed_start_without_landmarks() -> None:
    v, t = bump_grid(50)
    surface = MeshSurface(v, t)
    angle = np.deg2rad(4.0)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    moved = Similarity(1.05, rot, np.array([2.0, -1.5, 1.0])).apply(v)
    before = surface_error(moved, t, surface).mean
    # point-to-point ICP slides slowly along a smooth surface: 60 iterations take it from > 1 mm to
    # ~0.05 mm (200 reach ~0.002 mm); the landmark start is what makes the bench fast
    result = icp_similarity(moved, surface, max_iterations=60, tolerance=1e-6)
    after = surface_error(result.transform.apply(moved), t, surface).mean
    assert before > 1.0
    assert after < 0.1
    assert result.history[0] > result.mean_distance


def test_a_field_alignment_cannot_absorb_is_measured_after_alignment() -> None:
    v, t = bump_grid(60)
    surface = MeshSurface(v, t)
    field = np.cos(2 * np.pi * v[:, 0] / 25.0)  # 1 mm amplitude, 25 mm wavelength: no similarity fits it
    predicted = v + field[:, None] * surface.normals
    result = icp_similarity(predicted, surface)
    err = surface_error(result.transform.apply(predicted), t, surface)
    assert err.mean == pytest.approx(np.abs(field).mean(), rel=0.03)  # 2 / pi
    assert err.rmse == pytest.approx(np.sqrt((field**2).mean()), rel=0.03)  # 1 / sqrt(2)
    # whereas a uniform offset is mostly absorbed (here by the scale): the reason for the field above
    offset = surface_error(
        icp_similarity(v + surface.normals, surface).transform.apply(v + surface.normals), t, surface
    )
    assert offset.mean < 0.5


def test_crop_sphere_keeps_whole_triangles_and_reindexes() -> None:
    v, t = bump_grid(40)
    center = v[np.argmax(v[:, 2])]
    cv, ct, kept = crop_sphere(v, t, center, 30.0)
    assert (np.linalg.norm(cv - center, axis=1) <= 30.0).all()
    np.testing.assert_array_equal(cv, v[kept])
    assert ct.max() < len(cv) and ct.min() >= 0
    assert len(ct) < len(t)
    with pytest.raises(ValueError, match="no triangle"):
        crop_sphere(v, t, center + 1000.0, 5.0)


def test_pred_to_scan_counts_only_vertices_in_the_crop_sphere() -> None:
    v, t = bump_grid(50)
    center = v[np.argmax(v[:, 2])]
    scan = crop_scan(v, t, center, radius=40.0)
    err = surface_error(v, t, scan)
    outside = np.linalg.norm(v - center, axis=1) > 40.0
    assert np.isnan(err.per_vertex[outside]).all()
    assert np.nanmax(err.per_vertex) < 1e-9
    with pytest.raises(ValueError, match="direction"):
        surface_error(v, t, scan, direction="sideways")
