"""SH lighting constants and rendered shading against analytic irradiance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facerep.geometry.camera import euler_to_rotation, pose_code
from facerep.geometry.normals import vertex_normals
from facerep.geometry.rasterize_primitives import grid_plane, mesh_model, uv_sphere
from facerep.geometry.sh import SH_A, irradiance, light_from_direction, sh_basis
from facerep.plugins.renderers.sh_rasterizer import SHRasterizer


def _sphere_quadrature(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre x uniform quadrature nodes (M, 3) and weights (M,) on the unit sphere."""
    x, w = np.polynomial.legendre.leggauss(n)
    phi = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    ct, ph = np.meshgrid(x, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    pts = np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3)
    weights = (w[:, None] * np.full(phi.shape, 2 * np.pi / (2 * n))[None]).reshape(-1)
    return torch.from_numpy(pts), torch.from_numpy(weights)


def test_sh_basis_is_scaled_orthonormal_harmonics() -> None:
    pts, weights = _sphere_quadrature()
    basis = sh_basis(pts)  # (M, 9)
    band = torch.tensor([SH_A[0]] + [SH_A[1]] * 3 + [SH_A[2]] * 5, dtype=torch.float64)
    y = basis / band
    gram = (y * weights[:, None]).T @ y
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=1e-9, rtol=0)


def test_sh_constants_match_deep3dfacerecon_values() -> None:
    n = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5), 0.0]])
    b = sh_basis(n)
    assert b[0, 0] == pytest.approx(0.8862, abs=1e-4)
    assert b[0, 2] == pytest.approx(1.7725, abs=1e-4)
    assert b[1, 3] == pytest.approx(-1.7725, abs=1e-4)
    assert b[0, 6] == pytest.approx(2 * 0.7006, abs=1e-4)  # 0.7006 * (3 z^2 - 1)
    assert b[2, 4] == pytest.approx(2.4270 * 0.5, abs=1e-4)
    assert b[1, 8] == pytest.approx(1.2135, abs=1e-4)


def test_zero_light_is_uniform_ambient_and_channel_major_layout() -> None:
    normals = torch.nn.functional.normalize(torch.randn(2, 50, 3), dim=-1)
    e = irradiance(normals, torch.zeros(2, 27))
    torch.testing.assert_close(e, torch.full_like(e, 0.8 * SH_A[0] / math.sqrt(4 * math.pi)))
    light = torch.zeros(2, 27)
    light[:, 9 + 2] = 0.5  # green channel, z coefficient
    e = irradiance(normals, light, ambient=0.0)
    assert torch.all(e[..., 0] == 0) and torch.all(e[..., 2] == 0)
    torch.testing.assert_close(e[..., 1], 0.5 * 1.7724539 * normals[..., 2])


def test_rendered_sphere_matches_analytic_irradiance() -> None:
    radius, size = 80.0, 64
    v, t = uv_sphere(48, 96, radius)
    renderer = SHRasterizer(mesh_model(v, t), size, clamp=False)
    light = light_from_direction((0.4, 0.7, 0.6), 0.4, colour=(1.0, 0.8, 0.6)) + 0.05 * torch.randn(
        1, 27, generator=torch.Generator().manual_seed(0)
    )
    out = renderer(torch.from_numpy(v)[None], torch.full((1, len(v), 3), 0.6), torch.zeros(1, 6), light)
    f = size / 200.0
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    x = ((centres - size / 2) / f)[None, :].expand(size, size)
    y = (-(centres - size / 2) / f)[:, None].expand(size, size)
    r2 = (x**2 + y**2) / radius**2
    inner = r2 < 0.85
    n = torch.stack([x / radius, y / radius, torch.sqrt((1 - r2).clamp_min(0))], -1)
    expected = 0.6 * irradiance(n.reshape(1, -1, 3), light).reshape(size, size, 3).permute(2, 0, 1)
    assert torch.equal(out.mask[0, 0] > 0, r2 < 1.0) or (out.mask[0, 0] != (r2 < 1.0).float()).sum() < 12
    err = (out.image[0] - expected).abs()[:, inner]
    assert err.max() < 0.02, float(err.max())
    assert err.mean() < 0.003, float(err.mean())


def test_rendered_tilted_plane_is_exactly_the_irradiance_of_its_rotated_normal() -> None:
    v, t = grid_plane(6, 6, 600.0, 600.0)
    renderer = SHRasterizer(mesh_model(v, t), 32, clamp=False)
    pose = pose_code(pitch=20, yaw=-35, roll=10, degrees=True)
    light = torch.randn(1, 27, generator=torch.Generator().manual_seed(1)) * 0.1
    out = renderer(torch.from_numpy(v)[None], torch.full((1, len(v), 3), 0.5), pose, light)
    assert bool((out.mask == 1).all())
    normal = euler_to_rotation(pose[:, :3])[0] @ torch.tensor([0.0, 0.0, 1.0])
    expected = 0.5 * irradiance(normal.reshape(1, 1, 3), light)[0, 0]
    torch.testing.assert_close(out.image[0], expected[:, None, None].expand(3, 32, 32), atol=1e-5, rtol=0)


def test_vertex_normals_of_a_sphere_point_outwards() -> None:
    v, t = uv_sphere(12, 24, 10.0)
    n = vertex_normals(torch.from_numpy(v)[None], t)[0]
    cos = (n * torch.nn.functional.normalize(torch.from_numpy(v), dim=-1)).sum(-1)
    assert cos.min() > 0.98


def test_vertex_shading_mode_is_close_to_pixel_shading_on_a_fine_sphere() -> None:
    v, t = uv_sphere(32, 64, 80.0)
    model = mesh_model(v, t)
    light = light_from_direction((0.0, 0.5, 1.0), 0.3)
    args = (torch.from_numpy(v)[None], torch.full((1, len(v), 3), 0.6), torch.zeros(1, 6), light)
    a = SHRasterizer(model, 48, shading="pixel")(*args).image
    b = SHRasterizer(model, 48, shading="vertex")(*args).image
    assert (a - b).abs().max() < 0.01
