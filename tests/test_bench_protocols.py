"""The two MICC protocols on a tiny hand-made model whose codes are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from facerep.bench.protocols import (
    average_over_identity,
    average_over_three_views,
    encode_video,
    identity_spread,
    pick_three_views,
    prepare_images,
    run_protocols,
)
from facerep.core.types import Codes


class LinearToy:
    """Identity = mean pixel per channel (3), expression = 1 value, yaw = top-left pixel; shape = codes on
    4 vertices, so every protocol's output can be computed by hand."""

    image_size = 8
    face_model = None

    def __init__(self) -> None:
        self.neutral_expression = torch.tensor([0.25])
        self.calls = 0

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        self.calls += 1
        b = images.shape[0]
        identity = images.mean(dim=(2, 3))
        expression = images[:, 0, -1, -1:].clone()
        pose = torch.zeros(b, 6)
        pose[:, 1] = images[:, 1, 0, 0] - 0.5
        return Codes(identity, expression, pose, torch.zeros(b, 27))

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        base = torch.cat([identity, expression], dim=1)  # (B, 4)
        return base[:, :, None].expand(-1, -1, 3) * torch.tensor([1.0, 2.0, 3.0])


def frames(values: list[float], yaws: list[float]) -> Tensor:
    out = torch.zeros(len(values), 3, 8, 8)
    for i, (v, y) in enumerate(zip(values, yaws, strict=True)):
        out[i] = v
        out[i, 1, 0, 0] = y + 0.5
    return out


def test_pick_three_views_by_yaw() -> None:
    assert pick_three_views(np.array([0.1, -0.7, 0.02, 0.6, -0.2])) == (3, 2, 1)
    assert pick_three_views(np.array([0.3])) == (0, 0, 0)
    with pytest.raises(ValueError):
        pick_three_views(np.array([]))


def test_encode_video_batches_and_resizes() -> None:
    model = LinearToy()
    video = frames([0.1, 0.2, 0.3, 0.4, 0.5], [0.0] * 5)
    big = torch.nn.functional.interpolate(video, size=(16, 16))
    codes = encode_video(model, big, batch_size=2)
    assert model.calls == 3
    assert codes.num_frames == 5 and codes.identity.shape == (5, 3)
    assert prepare_images(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8), 8).max() == 1.0


def test_average_over_identity_uses_the_mean_identity_and_the_neutral_code() -> None:
    model = LinearToy()
    codes = encode_video(model, frames([0.2, 0.4, 0.9], [0.0, 0.1, -0.1]))
    shape = average_over_identity(model, codes)
    mean_id = codes.identity.mean(0)
    expected = torch.cat([mean_id, torch.tensor([0.25])])[:, None] * torch.tensor([1.0, 2.0, 3.0])
    np.testing.assert_allclose(shape, expected.numpy(), atol=1e-6)


def test_average_over_three_views_averages_the_picked_reconstructions() -> None:
    model = LinearToy()
    video = frames([0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.5, -0.05, -0.6, 0.2])
    codes = encode_video(model, video)
    shape = average_over_three_views(model, codes)
    picks = [1, 0, 3]  # left (max yaw), frontal (min |yaw|), right (min yaw)
    recon = model.decode_shape(codes.identity[picks], codes.expression[picks]).mean(0)
    np.testing.assert_allclose(shape, recon.numpy(), atol=1e-6)
    both = run_protocols(model, codes, ["identity", "three_views"])
    assert set(both) == {"identity", "three_views"}
    with pytest.raises(ValueError, match="unknown protocol"):
        run_protocols(model, codes, ["four_views"])


def test_identity_spread_is_zero_for_a_constant_identity() -> None:
    model = LinearToy()
    steady = encode_video(model, frames([0.3] * 4, [0.0, 0.1, 0.2, 0.3]))
    varying = encode_video(model, frames([0.1, 0.5, 0.2, 0.6], [0.0] * 4))
    assert identity_spread(model, steady) < 0.01  # only the yaw pixel differs
    assert identity_spread(model, varying) > 0.1
