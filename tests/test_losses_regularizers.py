"""Regularisers (off by default): near-monochrome light, code magnitude."""

from __future__ import annotations

import pytest
import torch
from test_losses_common import TinyFaceModel, make_batch, make_context, make_recon

from facerep.plugins.losses.code_regularizer import CodeRegularizer
from facerep.plugins.losses.light_regularizer import LightRegularizer


def test_light_regularizer_matches_a_hand_computed_value() -> None:
    tiny = TinyFaceModel()
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    light = torch.zeros(2, 27)
    light[0, :9] = 1.0  # red light only: each coefficient's channels are (1, 0, 0), variance 2/9
    light[1] = torch.arange(9, dtype=torch.float32).repeat(3)  # monochrome: variance 0
    recon.codes.light = light
    value = LightRegularizer()(batch, recon, make_context(tiny))
    assert value.item() == pytest.approx((2 / 9) / 2, rel=1e-6)
    recon.codes.light = light[1:].repeat(2, 1)
    assert LightRegularizer()(batch, recon, make_context(tiny)).item() == 0.0


def test_code_regularizer_matches_a_hand_computed_value() -> None:
    tiny = TinyFaceModel()
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    recon.codes.identity = torch.tensor([[1.0, 2.0, 0, 0], [0, 0, 0, 0]])
    recon.codes.expression = torch.tensor([[0, 0, 3.0], [0, 0, 0]])
    value = CodeRegularizer(identity=1.0, expression=2.0)(batch, recon, make_context(tiny))
    assert value.item() == pytest.approx((5.0 + 2.0 * 9.0) / 2, rel=1e-6)
    recon.codes.identity = torch.zeros(2, 4)
    recon.codes.expression = torch.zeros(2, 3)
    assert CodeRegularizer()(batch, recon, make_context(tiny)).item() == 0.0


@pytest.mark.parametrize(("loss", "field"), [(LightRegularizer(), "light"), (CodeRegularizer(), "identity")])
def test_regularizer_gradient_step_reduces_the_loss(loss: torch.nn.Module, field: str) -> None:
    tiny = TinyFaceModel()
    batch = make_batch()
    recon = make_recon(batch, tiny)
    x = getattr(recon.codes, field).clone().requires_grad_(True)
    setattr(recon.codes, field, x)
    value = loss(batch, recon, make_context(tiny))
    value.backward()
    with torch.no_grad():
        setattr(recon.codes, field, x - 0.05 * x.grad / x.grad.norm())
    assert loss(batch, recon, make_context(tiny)).item() < value.item()
