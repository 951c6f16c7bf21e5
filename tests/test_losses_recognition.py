"""Recognition loss (eq. 4): softmax identity classification + centre loss (Wen et al. 2016)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_losses_common import CODE_SIZES, NUM_IDENTITIES, TinyFaceModel, make_batch, make_context, make_recon

from facerep.common.errors import FacerepError
from facerep.core.types import Batch, Reconstruction
from facerep.plugins.losses.recognition import RecognitionLoss


def make_loss(**kw: object) -> RecognitionLoss:
    loss = RecognitionLoss(num_identities=NUM_IDENTITIES, code_sizes=CODE_SIZES, **kw)
    with torch.no_grad():  # class c scores c * x_0
        loss.classifier.weight.zero_()
        loss.classifier.weight[:, 0] = torch.arange(NUM_IDENTITIES, dtype=torch.float32)
        loss.classifier.bias.zero_()
    return loss


def case(codes: list[list[float]], labels: list[int]) -> tuple[Batch, Reconstruction]:
    tiny = TinyFaceModel()
    batch = make_batch(labelled=[False] * len(labels))
    batch.identity = torch.tensor(labels)
    recon = make_recon(batch, tiny)
    recon.codes.identity = torch.tensor(codes)
    return batch, recon


def logsumexp(values: list[float]) -> float:
    return math.log(sum(math.exp(v) for v in values))


def test_recognition_matches_a_hand_computed_value() -> None:
    batch, recon = case([[1.0, 0, 0, 0], [0, 2.0, 0, 0]], [2, 0])
    loss = make_loss(center_weight=0.1).eval()
    # row 0 logits 0..4, class 2; row 1 logits all 0, class 0; centres at 0
    soft = ((logsumexp([0, 1, 2, 3, 4]) - 2.0) + math.log(5)) / 2
    center = 0.5 * (1.0 + 4.0) / 2
    value = loss(batch, recon, make_context(TinyFaceModel()))
    assert value.item() == pytest.approx(soft + 0.1 * center, rel=1e-6)


def test_centres_follow_wen_et_al_update_in_training_only() -> None:
    batch, recon = case([[1.0, 0, 0, 0], [3.0, 0, 0, 0], [0, 2.0, 0, 0]], [1, 1, 4])
    loss = make_loss(center_alpha=0.5)
    ctx = make_context(TinyFaceModel())
    loss.eval()
    loss(batch, recon, ctx)
    assert torch.count_nonzero(loss.centers) == 0
    loss.train()
    first = loss(batch, recon, ctx)
    # class 1: c - alpha * sum(c - x) / (1 + 2) = 0 - 0.5 * (-4) / 3; class 4: 0 - 0.5 * (-2) / 2
    expected = torch.zeros(NUM_IDENTITIES, 4)
    expected[1, 0] = 2.0 / 3.0
    expected[4, 1] = 0.5
    assert torch.allclose(loss.centers, expected, atol=1e-6)
    # the value used the centres of before the update; the next one sees the moved centres
    assert loss(batch, recon, ctx).item() < first.item()
    assert "centers" in loss.state_dict() and "classifier.weight" in loss.state_dict()


def test_learnt_centres_are_parameters_with_gradients() -> None:
    batch, recon = case([[1.0, 0, 0, 0], [0, 2.0, 0, 0]], [2, 0])
    loss = make_loss(learn_centers=True).train()
    assert any(p is loss.centers for p in loss.parameters())
    loss(batch, recon, make_context(TinyFaceModel())).backward()
    # d/dc of center_weight * 1/2 mean ||x - c||^2 = -center_weight * (x - c) / m
    assert torch.allclose(loss.centers.grad[2], torch.tensor([-0.005, 0, 0, 0]))
    assert torch.allclose(loss.centers.grad[0], torch.tensor([0, -0.01, 0, 0]))


def test_rows_with_unknown_identity_contribute_nothing() -> None:
    batch, recon = case([[1.0, 0, 0, 0], [0, 2.0, 0, 0]], [-1, 0])
    ctx = make_context(TinyFaceModel())
    loss = make_loss().eval()
    alone_batch, alone_recon = case([[0, 2.0, 0, 0]], [0])
    assert loss(batch, recon, ctx).item() == pytest.approx(loss(alone_batch, alone_recon, ctx).item())
    batch.identity[:] = -1
    recon.codes.identity.requires_grad_(True)
    zero = loss(batch, recon, ctx)
    assert zero.item() == 0.0 and zero.requires_grad


def test_out_of_range_identity_is_a_clear_error() -> None:
    batch, recon = case([[1.0, 0, 0, 0]], [NUM_IDENTITIES])
    with pytest.raises(FacerepError, match="loss 'recognition'.*out of range for 5 identity classes"):
        make_loss()(batch, recon, make_context(TinyFaceModel()))


def test_recognition_gradient_step_reduces_the_loss() -> None:
    batch, recon = case([[0.5, -1.0, 0.3, 0.2], [0.1, 0.4, -0.2, 1.0], [1.0, 1.0, 1.0, 1.0]], [3, 1, 3])
    loss = make_loss().eval()
    ctx = make_context(TinyFaceModel())
    codes = recon.codes.identity.clone().requires_grad_(True)
    recon.codes.identity = codes
    value = loss(batch, recon, ctx)
    value.backward()
    assert loss.classifier.weight.grad is not None
    with torch.no_grad():
        recon.codes.identity = codes - 0.05 * codes.grad / codes.grad.norm()
    assert loss(batch, recon, ctx).item() < value.item()


def test_distributed_centre_update_matches_the_single_process_one(tmp_path: Path) -> None:
    import torch.distributed as dist

    batch, recon = case([[1.0, 0, 0, 0], [3.0, 0, 0, 0], [0, 2.0, 0, 0]], [1, 1, 4])
    ctx = make_context(TinyFaceModel())
    local = make_loss(center_alpha=0.5).train()
    local(batch, recon, ctx)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        shared = make_loss(center_alpha=0.5).train()
        shared(batch, recon, ctx)
        batch.identity[:] = -1  # a process without known identities still joins the all-reduce
        shared(batch, recon, ctx)
    finally:
        dist.destroy_process_group()
    assert torch.allclose(shared.centers, local.centers, atol=1e-6)
