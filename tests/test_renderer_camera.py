"""The shared pose convention (facerep.geometry.camera) and vertex normals."""

from __future__ import annotations

import math

import numpy as np
import torch

from facerep.geometry.camera import (
    euler_to_rotation,
    focal,
    pose_code,
    pose_from_similarity,
    project,
    rotate,
    rotation_to_euler,
)
from facerep.geometry.normals import face_normals, vertex_normals
from facerep.geometry.rasterize_primitives import grid_plane


def _axis(axis: int, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = torch.eye(3, dtype=torch.float64)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def test_rotation_is_rz_ry_rx_of_standard_axis_rotations() -> None:
    pitch, yaw, roll = 0.3, -0.7, 1.1
    expected = _axis(2, roll) @ _axis(1, yaw) @ _axis(0, pitch)
    got = euler_to_rotation(torch.tensor([[pitch, yaw, roll]], dtype=torch.float64))[0]
    torch.testing.assert_close(got, expected)
    assert torch.allclose(got @ got.T, torch.eye(3, dtype=torch.float64)) and torch.det(got) > 0


def test_rotation_to_euler_inverts_euler_to_rotation() -> None:
    angles = (torch.rand(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5) * 2.8
    torch.testing.assert_close(rotation_to_euler(euler_to_rotation(angles)), angles)


def test_projection_formula_and_reference_span() -> None:
    size = 100
    # a zero code: 200 mm span the image width, centred, y up -> v down
    points, depth = project(
        torch.tensor([[[-100.0, 0.0, 5.0], [100.0, 50.0, -3.0]]]), torch.zeros(1, 6), size
    )
    torch.testing.assert_close(points[0], torch.tensor([[0.0, 50.0], [100.0, 25.0]]))
    torch.testing.assert_close(depth[0], torch.tensor([5.0, -3.0]))
    pose = pose_code(tx=0.1, ty=-0.2, log_scale=math.log(2.0))
    assert focal(pose, size).item() == 1.0
    points, _ = project(torch.tensor([[[10.0, 10.0, 0.0]]]), pose, size)
    torch.testing.assert_close(points[0, 0], torch.tensor([50 + 10 + 10.0, 50 - 20 - 10.0]))


def test_positive_yaw_turns_the_face_to_the_image_right_and_depth_is_nearer_positive() -> None:
    nose = torch.tensor([[[0.0, 0.0, 30.0]]])
    points, depth = project(nose, pose_code(yaw=20.0, degrees=True), 200)
    assert points[0, 0, 0] > 100.0
    assert depth[0, 0] > 0
    # positive pitch: the face looks down (its normal gets a negative y)
    normal = rotate(torch.tensor([[[0.0, 0.0, 1.0]]]), pose_code(pitch=20.0, degrees=True))
    assert normal[0, 0, 1] < 0
    # positive roll: the subject's left (image right) goes up in the image
    left = project(torch.tensor([[[50.0, 0.0, 0.0]]]), pose_code(roll=20.0, degrees=True), 200)[0]
    assert left[0, 0, 1] < 100.0


def test_pose_from_similarity_round_trips_through_project() -> None:
    gen = torch.Generator().manual_seed(1)
    angles = (torch.rand(4, 3, generator=gen) - 0.5) * 1.5
    rotation = euler_to_rotation(angles)
    scale = torch.rand(4, generator=gen) + 0.5
    translation = torch.rand(4, 2, generator=gen) * 100
    pose = pose_from_similarity(rotation, scale, translation, 128)
    v = torch.randn(4, 10, 3, generator=gen) * 40
    points, _ = project(v, pose, 128)
    rv = v @ rotation.transpose(-1, -2)
    expected = scale[:, None, None] * rv[..., :2] * torch.tensor([1.0, -1.0]) + translation[:, None]
    torch.testing.assert_close(points, expected, atol=1e-3, rtol=1e-4)


def test_vertex_normals_are_area_weighted_unit_and_differentiable() -> None:
    v, t = grid_plane(3, 2, 30.0, 20.0)
    vertices = torch.from_numpy(v)[None].double().requires_grad_(True)
    n = vertex_normals(vertices, t)
    torch.testing.assert_close(n.detach(), torch.tensor([0.0, 0.0, 1.0]).double().expand_as(n))
    # a vertex shared by a large triangle tilted one way and a small one tilted the other way leans
    # towards the large one
    verts = torch.tensor([[[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [-1, 0, 0], [0, -1, 0]]], dtype=torch.float64)
    verts[0, 1, 2] = 5.0  # big triangle (0, 1, 2) tilts
    verts[0, 3, 2] = 0.5  # small triangle (0, 3, 4) tilts the other way in x
    tris = np.array([[0, 1, 2], [0, 3, 4]])
    fn = face_normals(verts, tris)
    assert fn[0, 0, 0] < 0 and fn[0, 1, 0] > 0
    n0 = vertex_normals(verts, tris)[0, 0]
    assert n0[0] < 0 and abs(n0.norm().item() - 1) < 1e-12
    torch.autograd.gradcheck(lambda x: vertex_normals(x, t), (vertices,), fast_mode=True)
