"""Gradients of the SH renderer: gradcheck in float64, finite differences of an image loss, soft edges."""

from __future__ import annotations

import math

import numpy as np
import torch

from facerep.geometry.camera import pose_code
from facerep.geometry.rasterize_primitives import ellipsoid_cap, mesh_model, uv_sphere
from facerep.geometry.sh import light_from_direction
from facerep.plugins.renderers.sh_rasterizer import SHRasterizer


def _tiny(size: int = 10, **kw):  # noqa: ANN202
    """A ~40-vertex bumpy cap rendered at ``size`` px, slightly turned, in float64."""
    v, t = ellipsoid_cap(40, width=150.0, height=170.0, depth=50.0, nose=20.0)
    renderer = SHRasterizer(mesh_model(v, t), size, clamp=False, **kw).double()
    vertices = torch.from_numpy(v).double()[None]
    gen = torch.Generator().manual_seed(0)
    albedo = (0.3 + 0.4 * torch.rand(vertices.shape, generator=gen)).double()
    pose = pose_code(
        pitch=8.0, yaw=-12.0, roll=5.0, tx=0.013, ty=-0.021, log_scale=0.071, degrees=True
    ).double()
    light = (light_from_direction((0.3, 0.4, 1.0), 0.3) + 0.03 * torch.randn(1, 27, generator=gen)).double()
    return renderer, vertices, albedo, pose, light


def _check_interior(renderer: SHRasterizer, vertices, albedo, pose, light, margin: float = 1e-3) -> None:  # noqa: ANN001
    """The configuration has no pixel centre within ``margin`` (barycentric) of a triangle edge."""
    from facerep.geometry.rasterize import fragments

    out = renderer(vertices, albedo, pose, light)
    frags = fragments(out.vertices_2d, renderer.triangles, out.triangle_ids)
    assert frags.bary.min() > margin
    assert out.mask.sum() > 30


def test_gradcheck_albedo_light_pose() -> None:
    """Fast-mode gradcheck (random directional derivatives of the full Jacobian) in float64."""
    renderer, vertices, albedo, pose, light = _tiny()
    _check_interior(renderer, vertices, albedo, pose, light)
    albedo.requires_grad_(True)
    light.requires_grad_(True)
    pose.requires_grad_(True)

    def render(a, p, lt):  # noqa: ANN001, ANN202
        return renderer(vertices, a, p, lt).image

    assert torch.autograd.gradcheck(
        render, (albedo, pose, light), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True
    )


def test_gradcheck_vertices_inside_faces() -> None:
    renderer, vertices, albedo, pose, light = _tiny()
    _check_interior(renderer, vertices, albedo, pose, light)
    vertices.requires_grad_(True)

    def render(v):  # noqa: ANN001, ANN202
        out = renderer(v, albedo, pose, light)
        return out.image, out.depth

    assert torch.autograd.gradcheck(render, (vertices,), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradcheck_uv_albedo_map() -> None:
    renderer, vertices, albedo, pose, light = _tiny(size=8)
    uv_map = torch.rand(1, 3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    uv_map.requires_grad_(True)

    def render(m):  # noqa: ANN001, ANN202
        return renderer(vertices, None, pose, light, uv_map=m).image

    assert torch.autograd.gradcheck(render, (uv_map,), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_image_loss_gradient_matches_finite_differences() -> None:
    v, t = ellipsoid_cap(300)
    renderer = SHRasterizer(mesh_model(v, t), 24, clamp=False).double()
    gen = torch.Generator().manual_seed(2)
    vertices = torch.from_numpy(v).double()[None]
    albedo = 0.3 + 0.4 * torch.rand(vertices.shape, generator=gen, dtype=torch.float64)
    target = torch.rand(1, 3, 24, 24, generator=gen, dtype=torch.float64)
    params = {
        "pose": pose_code(
            pitch=10.0, yaw=20.0, roll=-4.0, tx=0.01, ty=0.02, log_scale=0.05, degrees=True
        ).double(),
        "light": light_from_direction((0.2, 0.5, 1.0), 0.3).double(),
        "vertices": vertices.clone(),
    }

    def loss(p: dict) -> torch.Tensor:
        out = renderer(p["vertices"], albedo, p["pose"], p["light"])
        return ((out.image - target) ** 2).sum()

    for tensor in params.values():
        tensor.requires_grad_(True)
    grads = torch.autograd.grad(loss(params), list(params.values()))
    h = 1e-6
    checks = [("pose", (0, k)) for k in range(6)] + [("light", (0, k)) for k in (0, 2, 5, 13, 26)]
    nose = int(np.argmax(v[:, 2]))
    checks += [("vertices", (0, nose, 0)), ("vertices", (0, nose, 2)), ("vertices", (0, 37, 1))]
    names = list(params)
    with torch.no_grad():
        for name, index in checks:
            base = params[name]
            plus, minus = dict(params), dict(params)
            bp, bm = base.detach().clone(), base.detach().clone()
            bp[index] += h
            bm[index] -= h
            plus[name], minus[name] = bp, bm
            numeric = (loss(plus) - loss(minus)) / (2 * h)
            analytic = grads[names.index(name)][index]
            assert math.isclose(float(analytic), float(numeric), rel_tol=1e-4, abs_tol=1e-5), (name, index)
    assert grads[names.index("pose")].abs().min() > 0


def test_hard_edges_have_no_silhouette_gradient_antialiased_edges_do() -> None:
    v, t = uv_sphere(24, 48, 60.0)
    x = torch.from_numpy(v)[None]
    albedo = torch.full_like(x, 0.5)
    light = torch.zeros(1, 27)
    hard = SHRasterizer(mesh_model(v, t), 48)
    soft = SHRasterizer(mesh_model(v, t), 48, antialias=True)
    pose = torch.zeros(1, 6, requires_grad=True)
    assert not hard(x, albedo, pose, light).mask.requires_grad
    out = soft(x, albedo, pose, light)
    (grad,) = torch.autograd.grad(out.mask.sum(), pose)
    area = math.pi * (60.0 * 48 / 200.0) ** 2  # d(area)/d(log_scale) = 2 area
    assert abs(grad[0, 5].item() - 2 * area) < 0.08 * 2 * area
    assert abs(out.mask.sum().item() - area) < 0.03 * area
    # a shift right moves coverage without changing the area
    assert abs(grad[0, 3].item()) < 0.05 * area
    # the soft mask is in [0, 1] and equals 1 well inside the silhouette
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert out.mask[0, 0, 24, 24] == 1


def test_straight_through_clamp_keeps_gradients_of_saturated_pixels() -> None:
    v, t = uv_sphere(8, 16, 80.0)
    renderer = SHRasterizer(mesh_model(v, t), 16)
    x = torch.from_numpy(v)[None]
    albedo = torch.full_like(x, 0.9).requires_grad_(True)
    light = torch.zeros(1, 27)
    light[0, [0, 9, 18]] = 2.0  # very bright
    out = renderer(x, albedo, torch.zeros(1, 6), light)
    assert out.image.max() <= 1.0
    (grad,) = torch.autograd.grad(out.image.sum(), albedo)
    assert grad.abs().sum() > 0


def test_antialiasing_gives_gradients_at_occlusion_boundaries() -> None:
    from facerep.geometry.rasterize_primitives import grid_plane

    back, tb = grid_plane(4, 4, 400.0, 400.0, z=0.0)
    front, tf = grid_plane(2, 2, 61.0, 61.0, z=20.0)
    tris = np.concatenate([tb, tf + len(back)])
    model = mesh_model(np.concatenate([back, front]), tris)
    renderer = SHRasterizer(model, 32, antialias=True)
    scale = torch.ones((), requires_grad=True)
    f = torch.from_numpy(front)
    f = torch.cat([f[:, :2] * scale, f[:, 2:]], -1)
    vertices = torch.cat([torch.from_numpy(back), f])[None]
    albedo = torch.cat([torch.full((len(back), 3), 0.2), torch.full((len(front), 3), 0.9)])[None]
    pose = pose_code(roll=17.0, degrees=True)
    out = renderer(vertices, albedo, pose, torch.zeros(1, 27))
    assert bool((out.mask == 1).all())  # both surfaces cover everything: no background edge
    (grad,) = torch.autograd.grad(out.image.sum(), scale, retain_graph=True)
    side_px = 61.0 * 32 / 200.0
    expected = 3 * 2 * side_px**2 * (0.9 - 0.2) * 0.8 * 0.886227  # d(area)/d(scale) x contrast x channels
    assert abs(grad.item() - expected) < 0.1 * expected, (grad.item(), expected)
    hard = SHRasterizer(model, 32)(vertices, albedo, pose, torch.zeros(1, 27))
    (grad_hard,) = torch.autograd.grad(hard.image.sum(), scale)
    assert abs(grad_hard.item()) < 1e-3 * expected  # interior shading is flat: only the boundary moves
