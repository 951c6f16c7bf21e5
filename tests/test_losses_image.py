"""Image-space losses: photometric (eq. 5) and sparse landmark (eq. 6), against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from test_losses_common import TinyFaceModel, make_batch, make_context, make_recon

from facerep.core.types import Batch, Reconstruction
from facerep.plugins.losses.landmark import LandmarkLoss, face_size, landmark_pairs
from facerep.plugins.losses.photometric import PhotometricLoss


@pytest.fixture()
def tiny() -> TinyFaceModel:
    return TinyFaceModel()


def photo_case(tiny: TinyFaceModel) -> tuple[Batch, Reconstruction]:
    """One 2 x 2 image: rendered channel 0 = [[.1, .3], [.6, .9]], the rest 0; input 0; face mask
    [[1, 1], [1, 0]]; full coverage."""
    batch = make_batch(labelled=[False], size=2)
    batch.images = torch.zeros(1, 3, 2, 2)
    batch.masks = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    recon = make_recon(batch, tiny)
    image = torch.zeros(1, 3, 2, 2)
    image[0, 0] = torch.tensor([[0.1, 0.3], [0.6, 0.9]])
    recon.rendering.image = image
    recon.rendering.mask = torch.ones(1, 1, 2, 2)
    return batch, recon


def test_photometric_matches_a_hand_computed_value(tiny: TinyFaceModel) -> None:
    batch, recon = photo_case(tiny)
    ctx = make_context(tiny)
    # squared error on the 3 masked pixels: .01 + .09 + .36 = .46; GDL: x pair (0,0)-(0,1) |.2|,
    # y pair (0,0)-(1,0) |.5| (pairs touching the masked-out pixel are dropped): .7; area 3.
    assert PhotometricLoss(gdl_weight=1.0)(batch, recon, ctx).item() == pytest.approx(
        (0.46 + 0.7) / 3, rel=1e-6
    )
    assert PhotometricLoss(gdl_weight=2.0)(batch, recon, ctx).item() == pytest.approx(
        (0.46 + 1.4) / 3, rel=1e-6
    )
    assert PhotometricLoss(gdl_weight=0.0)(batch, recon, ctx).item() == pytest.approx(0.46 / 3, rel=1e-6)
    # the GDL compares gradient magnitudes: an input with its own gradients
    batch.images[0, 0] = torch.tensor([[0.2, 0.0], [0.0, 0.0]])
    # squared: .01 + .09 + .36; GDL x: ||.2| - |-.2|| = 0, y: ||.5| - |-.2|| = .3
    assert PhotometricLoss()(batch, recon, ctx).item() == pytest.approx((0.46 + 0.3) / 3, rel=1e-6)


def test_photometric_without_face_mask_uses_the_coverage_only(tiny: TinyFaceModel) -> None:
    batch, recon = photo_case(tiny)
    ctx = make_context(tiny)
    # all 4 pixels: squared 1.27; GDL x .2 + .3, y .5 + .6 = 1.6; area 4
    assert PhotometricLoss(mask=False)(batch, recon, ctx).item() == pytest.approx((1.27 + 1.6) / 4, rel=1e-6)
    # coverage multiplies the face mask: uncover pixel (0, 1)
    recon.rendering.mask[0, 0, 0, 1] = 0.0
    # mask [[1, 0], [1, 0]]: squared .01 + .36, GDL y pair (0,0)-(1,0) .5, area 2
    assert PhotometricLoss()(batch, recon, ctx).item() == pytest.approx((0.37 + 0.5) / 2, rel=1e-6)


def test_photometric_is_zero_when_the_rendering_equals_the_input(tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    recon.rendering.image = batch.images.clone()
    assert PhotometricLoss()(batch, recon, make_context(tiny)).item() == 0.0


def test_photometric_masked_pixels_and_rows_contribute_nothing(tiny: TinyFaceModel) -> None:
    batch = make_batch(size=6)
    batch.masks[:, :, :, :3] = 0.0  # left half of every image occluded
    batch.masks[1] = 0.0  # row 1 fully occluded
    recon = make_recon(batch, tiny)
    loss = PhotometricLoss()
    ctx = make_context(tiny)
    before = loss(batch, recon, ctx)
    recon.rendering.image[:, :, :, :3] = torch.rand(4, 3, 6, 3)
    recon.rendering.image[1] = 1.0
    batch.images[:, :, :, :2] = 0.5
    after = loss(batch, recon, ctx)
    assert after.item() == pytest.approx(before.item(), rel=1e-6)
    # everything masked: an exact 0 that still backpropagates
    batch.masks.zero_()
    recon.rendering.image.requires_grad_(True)
    empty = loss(batch, recon, ctx)
    assert empty.item() == 0.0
    empty.backward()
    assert torch.count_nonzero(recon.rendering.image.grad) == 0


def test_photometric_gradient_step_reduces_the_loss(tiny: TinyFaceModel) -> None:
    batch = make_batch(size=6)
    batch.masks[:, :, 0, :] = 0.0
    recon = make_recon(batch, tiny)
    image = recon.rendering.image.clone().requires_grad_(True)
    recon.rendering.image = image
    loss = PhotometricLoss()
    value = loss(batch, recon, make_context(tiny))
    value.backward()
    assert image.grad[:, :, 0, :].abs().max() == 0.0  # rows of pixels outside the mask get no gradient
    with torch.no_grad():
        recon.rendering.image = image - 0.01 * image.grad / image.grad.norm()
    assert loss(batch, recon, make_context(tiny)).item() < value.item()


# -- landmarks -----------------------------------------------------------------------------------------


def landmark_case(tiny: TinyFaceModel) -> tuple[Batch, Reconstruction]:
    """One row whose detected landmarks span a 30 x 40 px box (diagonal 50 px)."""
    batch = make_batch(labelled=[False], size=64)
    g = torch.Generator().manual_seed(3)
    target = torch.rand(1, 68, 2, generator=g) * torch.tensor([30.0, 40.0]) + 10.0
    target[0, 0] = torch.tensor([10.0, 10.0])
    target[0, 1] = torch.tensor([40.0, 50.0])
    batch.landmarks = target
    recon = make_recon(batch, tiny)
    recon.rendering.landmarks_2d = target.clone()
    return batch, recon


def test_landmark_pairs_are_contours_plus_weighted_openings() -> None:
    pairs, weights = landmark_pairs()
    assert pairs.shape == (73, 2)
    assert weights.sum().item() == pytest.approx(63 + 5 * 10)
    as_set = {tuple(p) for p in pairs.tolist()}
    assert {(37, 41), (38, 40), (43, 47), (44, 46), (62, 66), (51, 57)} <= as_set
    assert (41, 36) in as_set and (59, 48) in as_set and (16, 17) not in as_set


def test_landmark_matches_a_hand_computed_value(tiny: TinyFaceModel) -> None:
    batch, recon = landmark_case(tiny)
    assert face_size(batch.landmarks).item() == pytest.approx(50.0)
    target = batch.landmarks[0]
    moved = target[8] + torch.tensor([3.0, 4.0])  # a jaw landmark moves 5 px
    recon.rendering.landmarks_2d[0, 8] = moved
    ctx = make_context(tiny)
    l2 = 25.0 / 50.0**2  # the squared norm sums over the 68 landmarks
    assert LandmarkLoss(gdl_weight=0.0)(batch, recon, ctx).item() == pytest.approx(l2, rel=1e-5)

    def dist(p: torch.Tensor, q: torch.Tensor) -> float:
        return math.hypot(float(p[0] - q[0]), float(p[1] - q[1]))

    gap = (dist(moved, target[7]) - dist(target[8], target[7])) ** 2
    gap += (dist(moved, target[9]) - dist(target[8], target[9])) ** 2
    gdl = gap / 50.0**2  # contour pairs (7, 8) and (8, 9) have weight 1
    assert LandmarkLoss()(batch, recon, ctx).item() == pytest.approx(l2 + gdl, rel=1e-4)
    assert LandmarkLoss(gdl_weight=3.0)(batch, recon, ctx).item() == pytest.approx(l2 + 3 * gdl, rel=1e-4)


def test_landmark_is_zero_when_prediction_equals_target(tiny: TinyFaceModel) -> None:
    batch, recon = landmark_case(tiny)
    assert LandmarkLoss()(batch, recon, make_context(tiny)).item() == 0.0


def test_landmark_is_resolution_independent(tiny: TinyFaceModel) -> None:
    batch = make_batch(size=32)
    recon = make_recon(batch, tiny)
    loss = LandmarkLoss()
    ctx = make_context(tiny)
    value = loss(batch, recon, ctx)
    batch.landmarks = batch.landmarks * 4.0
    recon.rendering.landmarks_2d = recon.rendering.landmarks_2d * 4.0
    assert loss(batch, recon, ctx).item() == pytest.approx(value.item(), rel=1e-5)


def test_landmark_gdl_emphasises_the_eyelid_opening(tiny: TinyFaceModel) -> None:
    batch, recon = landmark_case(tiny)
    ctx = make_context(tiny)
    loss = LandmarkLoss()
    target = batch.landmarks[0]

    def gdl_only(index: int) -> float:
        recon.rendering.landmarks_2d = target[None].clone()
        # move the landmark 2 px along the line to its opening partner (or to its next neighbour)
        partner = {37: 41}.get(index, index + 1)
        step = target[partner] - target[index]
        recon.rendering.landmarks_2d[0, index] += 2.0 * step / step.norm()
        return loss(batch, recon, ctx).item() - LandmarkLoss(gdl_weight=0.0)(batch, recon, ctx).item()

    assert gdl_only(37) > 2.0 * gdl_only(8)


def test_landmark_rows_without_usable_landmarks_contribute_nothing(tiny: TinyFaceModel) -> None:
    batch = make_batch(size=32)
    recon = make_recon(batch, tiny)
    loss = LandmarkLoss()
    ctx = make_context(tiny)
    alone = make_batch(labelled=[False, False], size=32)
    alone.landmarks = batch.landmarks[:2].clone()
    alone_recon = make_recon(alone, tiny)
    alone_recon.rendering.landmarks_2d = recon.rendering.landmarks_2d[:2].clone()
    batch.landmarks[2:] = 0.0  # failed detections
    assert loss(batch, recon, ctx).item() == pytest.approx(loss(alone, alone_recon, ctx).item(), rel=1e-6)
    batch.landmarks[:] = 0.0
    points = recon.rendering.landmarks_2d.requires_grad_(True)
    zero = loss(batch, recon, ctx)
    assert zero.item() == 0.0
    zero.backward()
    assert torch.count_nonzero(points.grad) == 0


def test_landmark_gradient_step_reduces_the_loss(tiny: TinyFaceModel) -> None:
    batch = make_batch(size=32)
    recon = make_recon(batch, tiny)
    points = recon.rendering.landmarks_2d.clone().requires_grad_(True)
    recon.rendering.landmarks_2d = points
    loss = LandmarkLoss()
    value = loss(batch, recon, make_context(tiny))
    value.backward()
    with torch.no_grad():
        recon.rendering.landmarks_2d = points - 0.05 * points.grad / points.grad.norm()
    assert loss(batch, recon, make_context(tiny)).item() < value.item()
