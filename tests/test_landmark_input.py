"""The landmark input branch (facerep.nn.landmark_input) and the ResNet encoder's landmark_input option."""

from __future__ import annotations

import math

import pytest
import torch

from facerep.common.errors import DataError
from facerep.core.registry import get_registry
from facerep.nn.landmark_input import LandmarkHeads, landmark_box_size, landmark_features
from facerep.testing import make_subject, parametrize_with_checks

SIZES = {"identity": 8, "expression": 4, "pose": 6}


def _landmarks(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 16.0 + 32.0 * torch.rand(batch, 68, 2, generator=g)


def test_features_ignore_the_crop_translation_and_scale_but_not_the_shape() -> None:
    marks = _landmarks(3)
    moved = 2.5 * marks + torch.tensor([7.0, -3.0])
    assert torch.allclose(landmark_features(moved), landmark_features(marks), atol=1e-5)
    features = landmark_features(marks).view(3, 68, 2)
    assert torch.allclose(features.mean(1), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(features.pow(2).sum(-1).mean(-1), torch.ones(3), atol=1e-5)
    squeezed = marks * torch.tensor([1.0, 0.8])  # a different face shape, not a similarity
    assert not torch.allclose(landmark_features(squeezed), landmark_features(marks), atol=1e-3)


def test_box_size_is_the_geometric_mean_of_the_box_sides() -> None:
    marks = torch.zeros(1, 68, 2)
    marks[0, 1] = torch.tensor([20.0, 5.0])
    assert landmark_box_size(marks).item() == pytest.approx(10.0)


@pytest.mark.parametrize("hidden", [0, 16])
def test_heads_start_at_zero_and_learn(hidden: int) -> None:
    torch.manual_seed(0)
    heads = LandmarkHeads(SIZES, hidden=hidden, noise=0.0)
    marks = _landmarks(5)
    out = heads(marks)
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (5, d) for k, d in SIZES.items()}
    assert all(torch.equal(v, torch.zeros_like(v)) for v in out.values())
    target = torch.randn(5, SIZES["identity"])
    optimiser = torch.optim.SGD(heads.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        loss = (heads(marks)["identity"] - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    heads.eval()
    a, b = heads(marks)["identity"], heads(_landmarks(5, seed=1))["identity"]
    assert not torch.allclose(a, b)


def test_jitter_applies_in_training_only_and_scales_with_the_box() -> None:
    torch.manual_seed(0)
    heads = LandmarkHeads(SIZES, hidden=0, noise=0.05)
    with torch.no_grad():
        for head in heads.heads.values():
            head.weight.normal_()
    marks = _landmarks(4)
    heads.train()
    assert not torch.allclose(heads(marks)["identity"], heads(marks)["identity"])
    heads.eval()
    assert torch.equal(heads(marks)["identity"], heads(marks)["identity"])
    with pytest.raises(ValueError, match="jitter"):
        LandmarkHeads(SIZES, noise=-0.1)
    with pytest.raises(ValueError, match="hidden"):
        LandmarkHeads(SIZES, hidden=-1)


def _encoder(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    node = {"type": "resnet", "depth": 18, "channels_last": False, **options}
    return get_registry().build("encoder", node).eval()


def test_resnet_without_the_option_has_no_landmark_branch() -> None:
    plain = _encoder()
    assert plain.reads_landmarks is False
    assert not any("landmark" in k for k in plain.state_dict())
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(plain(images).identity, plain(images, _landmarks(2)).identity)


def test_resnet_landmark_input_starts_as_the_image_encoder_and_needs_landmarks() -> None:
    reading, plain = _encoder(landmark_input=True, landmark_hidden=16), _encoder()
    assert reading.reads_landmarks is True
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        codes, reference = reading(images, _landmarks(2)), plain(images)
    # the same seed builds the same backbone and heads first; the zero-started branch adds nothing
    for name in ("identity", "expression", "pose", "light"):
        assert torch.equal(getattr(codes, name), getattr(reference, name)), name
    with pytest.raises(DataError, match="landmarks"):
        reading(images)
    with pytest.raises(DataError, match=r"\(2, 68, 2\)"):
        reading(images, _landmarks(2)[:, :5])


def test_resnet_landmark_branch_moves_identity_expression_and_pose_not_light() -> None:
    reading = _encoder(landmark_input=True, landmark_hidden=0)
    with torch.no_grad():
        for head in reading.landmark_heads.heads.values():
            head.weight.normal_()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = reading(images, _landmarks(2)), reading(images, _landmarks(2, seed=3))
    for name in ("identity", "expression", "pose"):
        assert not torch.allclose(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.light, b.light)
    assert math.isfinite(float(a.identity.abs().sum()))


@parametrize_with_checks(
    [
        make_subject(
            "encoder", {"type": "resnet", "depth": 18, "landmark_input": True, "landmark_hidden": 8}
        ),
        make_subject(
            "encoder", {"type": "resnet", "depth": 18, "landmark_input": True, "start_from": "landmarks"}
        ),
    ],
    checks=("build", "outputs", "gradients", "landmarks"),
)
def test_resnet_landmark_input_keeps_the_encoder_contract(subject, check) -> None:  # noqa: ANN001
    check(subject)
