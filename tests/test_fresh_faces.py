"""Fresh synthetic faces (facerep.world.fresh_faces) and the face models' ``true_shape``."""

from __future__ import annotations

import math

import pytest
import torch

from facerep.core.interfaces import FaceModel
from facerep.core.registry import get_registry
from facerep.geometry.camera import project
from facerep.world.fresh_faces import FreshFaces


@pytest.fixture(scope="module")
def face_model() -> FaceModel:
    return get_registry().build("facemodel", {"type": "synthetic", "vertices": 600, "seed": 0})


def _draw(face_model: FaceModel, n: int, seed: int, noise: float = 0.0):
    return FreshFaces(face_model, noise=noise).draw(n, torch.Generator().manual_seed(seed))


def test_landmarks_are_the_exact_shapes_landmark_vertices_projected(face_model: FaceModel) -> None:
    faces = _draw(face_model, 16, 0)
    index = torch.as_tensor(face_model.landmarks, dtype=torch.long)
    points, _ = project(faces.shape[:, index], faces.pose, 96)
    assert faces.landmarks.shape == (16, 68, 2)
    assert torch.allclose(faces.landmarks, points, atol=1e-4)
    # inside the 96 px frame, the face filling about half of it or more
    assert faces.landmarks.min() > 0 and faces.landmarks.max() < 96


def test_shapes_carry_the_identities_detail_beyond_the_linear_span(face_model: FaceModel) -> None:
    faces = _draw(face_model, 32, 1)
    alpha_id, alpha_exp = face_model.fit(faces.neutral)
    off_span = (faces.neutral - face_model.shape(alpha_id, alpha_exp)).norm(dim=-1).mean(1)
    assert off_span.min() > 0.1  # mm: the synthetic model's nonlinear residual
    # with the expression the shapes differ from the neutral ones, by a face's expression (mm)
    moved = (faces.shape - faces.neutral).norm(dim=-1).mean(1)
    assert 0.0 < moved.median() < 10.0


def test_a_plain_linear_model_s_true_shape_is_its_shape(face_model: FaceModel) -> None:
    alpha_id = torch.randn(3, face_model.num_id) * torch.as_tensor(face_model.id_std)
    alpha_exp = torch.randn(3, face_model.num_exp) * torch.as_tensor(face_model.exp_std)
    linear = FaceModel.true_shape(face_model, alpha_id, alpha_exp)
    assert torch.allclose(linear, face_model.shape(alpha_id, alpha_exp))
    assert torch.allclose(
        FaceModel.true_shape(face_model, alpha_id), face_model.shape(alpha_id, 0 * alpha_exp)
    )
    assert not torch.allclose(face_model.true_shape(alpha_id, alpha_exp), linear, atol=0.1)


def test_draws_are_reproducible_and_never_repeat(face_model: FaceModel) -> None:
    a, b, c = _draw(face_model, 8, 5), _draw(face_model, 8, 5), _draw(face_model, 8, 6)
    assert torch.equal(a.landmarks, b.landmarks) and torch.equal(a.neutral, b.neutral)
    assert not torch.allclose(a.neutral, c.neutral)
    generator = torch.Generator().manual_seed(5)
    faces = FreshFaces(face_model, noise=0.0)
    first, second = faces.draw(8, generator), faces.draw(8, generator)
    assert not torch.allclose(first.neutral, second.neutral)


def test_poses_reach_profiles_like_300w_lp(face_model: FaceModel) -> None:
    yaw = _draw(face_model, 4000, 2).pose[:, 1].abs() / (math.pi / 180)
    assert yaw.max() <= 90.0 + 1e-4
    profiled = (yaw > 25.0).float().mean()
    assert 0.3 < profiled < 0.5  # half the faces turned further, most of those past 25 deg
    assert (yaw < 25.0).float().mean() > 0.5


def test_noise_is_a_fraction_of_the_landmarks_box(face_model: FaceModel) -> None:
    from facerep.nn.landmark_input import landmark_box_size

    exact, noisy = _draw(face_model, 2000, 3), _draw(face_model, 2000, 3, noise=0.04)
    assert torch.equal(exact.pose, noisy.pose)  # the same faces, noise drawn last
    offset = (noisy.landmarks - exact.landmarks) / landmark_box_size(exact.landmarks)[:, None, None]
    # per-coordinate std of N(0, (U(0, 0.04))^2) noise: 0.04 / sqrt(3)
    assert offset.pow(2).mean().sqrt().item() == pytest.approx(0.04 / math.sqrt(3), rel=0.1)


@pytest.mark.parametrize(("options", "words"), [({"noise": -0.1}, "noise"), ({"frame": 2}, "frame")])
def test_bad_options_are_refused(face_model: FaceModel, options: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FreshFaces(face_model, **options)
