"""Learning-rate schedule (train.lr_warmup / lr_decay / lr_final) and the adversarial term's ramp."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from facerep.common.errors import RecipeError
from facerep.core.interfaces import LossContext
from facerep.plugins.losses.wgan_div import WGANDivLoss
from facerep.train.config import TRAIN_DEFAULTS
from facerep.train.schedule import lr_factor
from tests.test_engine import tiny_recipe, train


def test_warmup_then_cosine_reaches_the_final_factor_at_the_last_step() -> None:
    config = {**TRAIN_DEFAULTS, "lr_warmup": 4, "lr_decay": "cosine", "lr_final": 0.1}
    factors = [lr_factor(step, 14, config) for step in range(14)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert factors[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 9)))
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))  # decays monotonically
    assert [lr_factor(s, 10, TRAIN_DEFAULTS) for s in range(10)] == [1.0] * 10  # default: constant


def test_schedule_sets_the_optimiser_rate_and_bad_values_are_recipe_errors(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, parent="no_adv", epochs=(2, 1), train="lr_warmup: 2\nlr_decay: cosine")
    run = train(recipe, tmp_path / "run")
    rates = [json.loads(x)["lr"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"lr"' in x]
    assert rates[:4] == pytest.approx([0.5e-4, 1e-4, 1e-4, 0.0], abs=1e-12)  # warm-up, then cosine 1 -> 0
    bad = tiny_recipe(tmp_path, parent="no_adv", train="lr_decay: linear", name="bad.yaml")
    with pytest.raises(RecipeError, match="lr_decay must be"):
        train(bad, tmp_path / "bad")


def test_adversarial_ramp_is_zero_before_start_and_linear_after() -> None:
    loss = WGANDivLoss(start_step=10, ramp_steps=4)
    assert [loss.ramp(s) for s in (0, 9, 10, 11, 13, 100)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 1), torch.nn.Flatten(0))
    shapes = torch.randn(3, 2, 3, requires_grad=True)
    recon = type("R", (), {"vertices": shapes})()
    batch = type("B", (), {"sample_ids": ["a", "b", "c"]})()
    off = loss(batch, recon, LossContext(critic=critic, step=5))
    assert float(off.detach()) == 0.0
    half = loss(batch, recon, LossContext(critic=critic, step=11))
    assert float(half.detach()) == pytest.approx(-0.5 * float(critic(shapes).mean().detach()), rel=1e-6)
    with pytest.raises(Exception, match="start_step and ramp_steps"):
        WGANDivLoss(start_step=-1)
