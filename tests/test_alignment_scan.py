"""The MICC metric on a REAL face scan (menpo3d's james: OBJ + LJSON landmarks, mm)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from facerep.geometry.alignment import MeshSurface, Similarity, icp_similarity, umeyama, vertex_normals
from facerep.geometry.surface_distance import crop_scan, surface_error

NOSE_TIP = 37  # menpo's LJSON groups are not iBUG order: point 37 is the most frontal nose point


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (F, 3) of an OBJ file (first index of each `f` corner)."""
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            corners = [int(c.split("/")[0]) - 1 for c in line.split()[1:]]
            faces.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
    return np.asarray(verts), np.asarray(faces, dtype=np.int64)


@pytest.fixture(scope="module")
def james() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    root = shared_data("scans", "james")
    v, t = read_obj(root / "james.obj")
    doc = json.loads((root / "james.ljson").read_text())
    landmarks = np.asarray(doc["groups"]["LJSON"]["landmarks"]["points"], dtype=np.float64)
    return v, t, landmarks


def test_real_scan_crop_is_around_the_nose_tip(james: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    v, t, lms = james
    assert v.shape == (6393, 3) and t.shape == (12228, 3) and lms.shape == (68, 3)
    scan = crop_scan(v, t, lms[NOSE_TIP], landmarks=lms)
    assert 0 < len(scan.vertices) < len(v)
    assert np.linalg.norm(scan.vertices - lms[NOSE_TIP], axis=1).max() <= 95.0
    # the nose tip is the most frontal landmark (z towards the camera)
    assert np.argmax(lms[:, 2]) == NOSE_TIP


def test_real_scan_rotated_scaled_copy_aligns_back(james: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    v, t, lms = james
    scan = crop_scan(v, t, lms[NOSE_TIP], landmarks=lms)
    angle = np.deg2rad(25.0)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    tilt = np.deg2rad(-10.0)
    rot = rot @ np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    move = Similarity(0.85, rot, np.array([12.0, -30.0, 400.0]))
    copy, copy_lms = move.apply(v), move.apply(lms)
    init = umeyama(copy_lms, scan.landmarks)
    result = icp_similarity(copy, scan.surface, init, center=scan.center, radius=scan.radius)
    err = surface_error(result.transform.apply(copy), t, scan, direction="symmetric")
    assert err.mean < 0.05
    assert result.transform.scale == pytest.approx(1 / 0.85, rel=1e-3)


def test_real_scan_known_displacement_field_without_alignment(
    james: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    v, t, lms = james
    scan = crop_scan(v, t, lms[NOSE_TIP], landmarks=lms)
    normals = vertex_normals(v, t)
    field = 0.6 + 0.4 * np.sin(v[:, 0] / 15.0)  # mm, along the scan's own normals, between 0.2 and 1.0
    displaced = v + field[:, None] * normals
    err = surface_error(displaced, t, scan)
    inside = ~np.isnan(err.per_vertex)
    expected = field[inside].mean()
    assert err.mean == pytest.approx(expected, rel=0.03)
    # vertex by vertex the measured distance tracks the field where the scan is smooth
    assert np.median(np.abs(err.per_vertex[inside] - field[inside])) < 0.02


def test_real_scan_surface_queries_are_exact(james: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    v, t, lms = james
    scan = crop_scan(v, t, lms[NOSE_TIP], landmarks=lms)
    rng = np.random.default_rng(0)
    queries = scan.vertices[rng.choice(len(scan.vertices), 60)] + rng.normal(scale=3.0, size=(60, 3))
    surface: MeshSurface = scan.surface
    cp = surface.closest(queries)
    from facerep.geometry.alignment import closest_on_triangles

    c = surface.corners
    q, _ = closest_on_triangles(queries[:, None], c[None, :, 0], c[None, :, 1], c[None, :, 2])
    brute = np.linalg.norm(q - queries[:, None], axis=-1).min(axis=1)
    np.testing.assert_allclose(cp.distances, brute, atol=1e-9)
