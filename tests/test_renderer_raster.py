"""Rasterisation: coverage, depth order, culling, chunking, determinism, symmetry, visibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facerep.geometry.camera import pose_code, project
from facerep.geometry.rasterize import rasterize, triangle_neighbours
from facerep.geometry.rasterize_primitives import ellipsoid_cap, grid_plane, mesh_model, uv_sphere
from facerep.geometry.rasterize_reference import rasterize_reference
from facerep.geometry.sh import light_from_direction
from facerep.plugins.renderers.sh_rasterizer import SHRasterizer

SIZE = 32
F = SIZE / 200.0  # pixels per mm at log_scale 0


def _mm(pixels: list[tuple[float, float]], z: float = 0.0) -> np.ndarray:
    """Canonical vertices (mm) that project (zero pose) to the given pixel positions."""
    return np.array([[(u - SIZE / 2) / F, -(v - SIZE / 2) / F, z] for u, v in pixels], dtype=np.float64)


def _inside(pixels: list[tuple[float, float]]) -> np.ndarray:
    (ax, ay), (bx, by), (cx, cy) = pixels
    c = np.arange(SIZE) + 0.5
    px, py = np.meshgrid(c, c)
    d0 = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    d1 = (cx - bx) * (py - by) - (cy - by) * (px - bx)
    d2 = (ax - cx) * (py - cy) - (ay - cy) * (px - cx)
    return ((d0 <= 0) & (d1 <= 0) & (d2 <= 0)) | ((d0 >= 0) & (d1 >= 0) & (d2 >= 0))


def _render_one(vertices: np.ndarray, triangles: np.ndarray, **kw):  # noqa: ANN202
    renderer = SHRasterizer(mesh_model(vertices.astype(np.float32), triangles), SIZE, **kw).double()
    v = torch.from_numpy(vertices)[None]
    return renderer(
        v, torch.full_like(v, 0.5), torch.zeros(1, 6, dtype=torch.float64), torch.zeros(1, 27).double()
    )


def test_coverage_of_a_known_triangle_and_backface_culling() -> None:
    pix = [(3.3, 4.1), (10.2, 29.6), (27.7, 8.2)]  # clockwise in pixels = counter-clockwise from +z
    v = _mm(pix)
    expected = _inside(pix)
    out = _render_one(v, np.array([[0, 1, 2]]))
    assert np.array_equal(out.mask[0, 0].numpy() > 0, expected)
    assert np.array_equal(out.triangle_ids[0].numpy(), np.where(expected, 0, -1))
    assert expected.sum() > 200
    culled = _render_one(v, np.array([[0, 2, 1]]))
    assert culled.mask.sum() == 0
    both = _render_one(v, np.array([[0, 2, 1]]), cull_backfaces=False)
    assert np.array_equal(both.mask[0, 0].numpy() > 0, expected)


def test_near_triangle_occludes_far_one_in_either_order() -> None:
    near = _mm([(2.0, 2.0), (8.0, 30.0), (30.0, 6.0)], z=10.0)
    far = _mm([(4.0, 3.0), (6.0, 28.0), (29.0, 20.0)], z=-5.0)
    v = np.concatenate([near, far])
    for tris, near_id in ((np.array([[0, 1, 2], [3, 4, 5]]), 0), (np.array([[3, 4, 5], [0, 1, 2]]), 1)):
        out = _render_one(v, tris)
        near_mask = _inside([(2.0, 2.0), (8.0, 30.0), (30.0, 6.0)])
        far_mask = _inside([(4.0, 3.0), (6.0, 28.0), (29.0, 20.0)])
        ids = out.triangle_ids[0].numpy()
        assert (ids[near_mask] == near_id).all()
        assert (ids[far_mask & ~near_mask] == 1 - near_id).all()
        depth = out.depth[0, 0].numpy()
        np.testing.assert_allclose(depth[near_mask], 10.0, atol=1e-9)
        np.testing.assert_allclose(depth[far_mask & ~near_mask], -5.0, atol=1e-9)
        assert (depth[~(near_mask | far_mask)] == 0).all()


def test_vectorised_rasteriser_equals_naive_loop_and_is_chunk_invariant() -> None:
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(2, 40, 2, generator=gen, dtype=torch.float64) * 36 - 2
    depth = torch.rand(2, 40, generator=gen, dtype=torch.float64) * 50
    tris = torch.randint(0, 40, (60, 3), generator=gen)
    ref = rasterize_reference(points, depth, tris, SIZE)
    for chunk in (1 << 20, 97, 1):
        fast = rasterize(points, depth, tris, SIZE, max_candidates=chunk)
        assert torch.equal(fast, ref), chunk
    assert (ref >= 0).sum() > 100
    no_cull = rasterize(points, depth, tris, SIZE, cull_backfaces=False)
    assert torch.equal(no_cull, rasterize_reference(points, depth, tris, SIZE, cull_backfaces=False))


def _sphere_setup(size: int = 48):  # noqa: ANN202
    v, t = uv_sphere(20, 40, 70.0)
    renderer = SHRasterizer(mesh_model(v, t), size)
    vertices = torch.from_numpy(v)[None].repeat(2, 1, 1)
    albedo = 0.3 + 0.4 * torch.sigmoid(vertices / 30.0)
    pose = torch.tensor([[0.1, 0.3, -0.2, 0.02, -0.05, 0.1], [0.0, -0.4, 0.0, 0.0, 0.0, -0.1]])
    light = light_from_direction((0.3, 0.5, 1.0), 0.3, batch=2)
    return renderer, vertices, albedo, pose, light


def test_repeated_calls_are_identical_and_batch_rows_are_independent() -> None:
    renderer, vertices, albedo, pose, light = _sphere_setup()
    a = renderer(vertices, albedo, pose, light)
    b = renderer(vertices, albedo, pose, light)
    for name in ("image", "mask", "depth", "triangle_ids", "vertices_2d", "visibility"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    single = renderer(vertices[1:], albedo[1:], pose[1:], light[1:])
    torch.testing.assert_close(single.image[0], a.image[1])
    assert torch.equal(single.triangle_ids[0], a.triangle_ids[1])
    small_chunks = SHRasterizer(renderer_model(renderer), 48, max_candidates=500)
    c = small_chunks(vertices, albedo, pose, light)
    assert torch.equal(c.triangle_ids, a.triangle_ids)
    torch.testing.assert_close(c.image, a.image)


def renderer_model(renderer: SHRasterizer):  # noqa: ANN201
    """A face-model-like object with the renderer's triangles (helper for re-building)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        triangles=renderer.triangles.numpy(), landmarks=renderer.landmarks.numpy(), uv=None
    )


def test_projection_outputs_and_visibility() -> None:
    renderer, vertices, albedo, pose, light = _sphere_setup()
    out = renderer(vertices, albedo, pose, light)
    points, depth = project(vertices, pose, 48)
    torch.testing.assert_close(out.vertices_2d, points)
    torch.testing.assert_close(out.landmarks_2d, points[:, renderer.landmarks])
    assert out.landmarks_2d.shape == (2, 68, 2)
    assert out.image.shape == (2, 3, 48, 48) and out.mask.shape == (2, 1, 48, 48)
    assert out.depth.shape == (2, 1, 48, 48) and out.triangle_ids.shape == (2, 48, 48)
    # On a convex sphere a vertex is visible exactly when it faces the camera (rotated z > 0), up to the rim.
    from facerep.geometry.camera import rotate

    z = rotate(vertices, pose)[..., 2] / 70.0
    assert out.visibility[z > 0.15].all()
    assert not out.visibility[z < -0.05].any()


def test_vertices_behind_an_occluder_are_not_visible() -> None:
    v, t = grid_plane(10, 10, 100.0, 100.0, z=0.0)
    occ, ot = grid_plane(2, 2, 40.0, 40.0, z=20.0)
    verts = np.concatenate([v, occ])
    tris = np.concatenate([t, ot + len(v)])
    renderer = SHRasterizer(mesh_model(verts, tris), 64)
    x = torch.from_numpy(verts)[None]
    out = renderer(x, torch.full_like(x, 0.5), torch.zeros(1, 6), torch.zeros(1, 27))
    behind = (x[0, : len(v), 0].abs() < 17) & (x[0, : len(v), 1].abs() < 17)
    assert not out.visibility[0, : len(v)][behind].any()
    assert out.visibility[0, : len(v)][~behind & (x[0, : len(v), :2].abs().amax(-1) < 45)].all()
    assert out.visibility[0, len(v) :].all()


def test_symmetric_mesh_and_light_render_a_mirror_symmetric_image() -> None:
    v, t = ellipsoid_cap(900)  # symmetric geometry and triangulation
    renderer = SHRasterizer(mesh_model(v, t), 40)
    x = torch.from_numpy(v)[None]
    albedo = 0.4 + 0.3 * torch.sigmoid(x[..., [1, 2, 1]] / 20.0) + 0.1 * (x[..., :1] / 60.0) ** 2
    light = light_from_direction((0.0, 0.6, 1.0), 0.4)
    light.view(3, 9)[:, 6] = 0.05  # (3 z^2 - 1): symmetric; x-odd terms (3, 4, 7) stay zero
    light.view(3, 9)[:, 8] = -0.05
    pose = pose_code(pitch=15, degrees=True)
    out = renderer(x, albedo, pose, light)
    torch.testing.assert_close(out.image, out.image.flip(-1), atol=1e-5, rtol=0)
    assert out.mask.sum() > 400
    turned = renderer(x, albedo, pose_code(pitch=15, yaw=20, degrees=True), light)
    assert (turned.image - turned.image.flip(-1)).abs().max() > 0.05  # not symmetric by construction


def test_synthetic_face_renders_symmetric() -> None:
    synthetic = pytest.importorskip("facerep.plugins.facemodels.synthetic")
    model = synthetic.synthetic(vertices=2000)
    renderer = SHRasterizer(model, 48)
    x = torch.as_tensor(np.asarray(model.mean, dtype=np.float32))[None]
    albedo = torch.full_like(x, 0.6)
    out = renderer(x, albedo, torch.zeros(1, 6), light_from_direction((0.0, 0.5, 1.0), 0.3))
    assert out.mask.mean() > 0.2
    torch.testing.assert_close(out.image, out.image.flip(-1), atol=2e-3, rtol=0)


def test_triangle_neighbours_of_a_grid() -> None:
    _, t = grid_plane(2, 1, 2.0, 1.0)
    nb = triangle_neighbours(t)
    assert nb.shape == (4, 3)
    # each interior edge is shared: 3 interior edges -> 6 entries, the rest boundary
    assert (nb >= 0).sum() == 6
    for f in range(4):
        for k in range(3):
            g = nb[f, k]
            if g >= 0:
                edge = {t[f][(k + 1) % 3], t[f][(k + 2) % 3]}
                assert edge <= set(t[g].tolist())


def test_bad_inputs_name_the_problem() -> None:
    renderer, vertices, albedo, pose, light = _sphere_setup()
    with pytest.raises(ValueError, match="light must be"):
        renderer(vertices, albedo, pose, light[:, :9])
    with pytest.raises(ValueError, match="pose must be"):
        renderer(vertices, albedo, pose[:, :5], light)
    with pytest.raises(ValueError, match="albedo must be"):
        renderer(vertices, albedo[:, :10], pose, light)
