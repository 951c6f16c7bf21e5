"""WGAN-div adversarial loss (eq. 11): generator side, critic side and its gradient penalty."""

from __future__ import annotations

import pytest
import torch
from test_losses_common import SmallCritic, TinyFaceModel, make_batch, make_context, make_recon
from torch import Tensor, nn

from facerep.core.interfaces import Critic
from facerep.plugins.losses.wgan_div import WGANDivLoss, interpolate


class LinearCritic(Critic):
    """D(v) = <w, v>: its gradient is w everywhere, so the penalty is k ||w||^p exactly."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, vertices: Tensor) -> Tensor:
        return (vertices * self.w).flatten(1).sum(dim=1)


def critic64() -> SmallCritic:
    return SmallCritic(seed=1).double()


def fd_gradient(critic: Critic, points: Tensor, h: float = 1e-6) -> Tensor:
    """Central finite differences of D at every row of `points` (M, N, 3) -> (M, N * 3)."""
    flat = points.detach().flatten(1)
    grads = torch.zeros_like(flat)
    with torch.no_grad():
        for c in range(flat.shape[1]):
            step = torch.zeros_like(flat)
            step[:, c] = h
            up = critic((flat + step).reshape(points.shape))
            down = critic((flat - step).reshape(points.shape))
            grads[:, c] = (up - down) / (2 * h)
    return grads


def test_generator_loss_is_minus_the_mean_critic_score() -> None:
    tiny = TinyFaceModel()
    batch = make_batch()
    recon = make_recon(batch, tiny)
    w = torch.randn(20, 3)
    critic = LinearCritic(w)
    value = WGANDivLoss()(batch, recon, make_context(tiny, critic))
    expected = -(recon.vertices * w).sum(dim=(1, 2)).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_matches_a_finite_difference_estimate() -> None:
    critic = critic64()
    g = torch.Generator().manual_seed(0)
    points = torch.randn(3, 20, 3, generator=g, dtype=torch.float64) * 20
    loss = WGANDivLoss(k=2.0, p=6.0)
    grads = fd_gradient(critic, points)
    expected = 2.0 * grads.norm(dim=1).pow(6.0).mean()
    assert loss.gradient_penalty(critic, points).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_penalty_is_differentiable_in_the_critic_parameters() -> None:
    critic = critic64()
    points = torch.randn(3, 20, 3, dtype=torch.float64) * 20
    loss = WGANDivLoss()
    penalty = loss.gradient_penalty(critic, points)
    weight = critic.net[0].weight
    (grad,) = torch.autograd.grad(penalty, weight)
    h = 1e-6
    with torch.no_grad():
        weight[2, 5] += h
        up = loss.gradient_penalty(critic, points).item()
        weight[2, 5] -= 2 * h
        down = loss.gradient_penalty(critic, points).item()
        weight[2, 5] += h
    assert grad[2, 5].item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_linear_critic_penalty_is_k_norm_to_the_p() -> None:
    w = torch.full((20, 3), 0.1, dtype=torch.float64)
    loss = WGANDivLoss(k=3.0, p=4.0)
    points = torch.randn(5, 20, 3, dtype=torch.float64)
    assert loss.gradient_penalty(LinearCritic(w), points).item() == pytest.approx(3.0 * (60 * 0.01) ** 2)


def test_critic_loss_is_fake_minus_real_plus_the_penalty_on_interpolates() -> None:
    tiny = TinyFaceModel()
    critic = critic64()
    real = tiny.sample(4, torch.Generator().manual_seed(0)).double()
    fake = real + torch.randn(4, 20, 3, dtype=torch.float64)
    loss = WGANDivLoss()
    torch.manual_seed(7)
    value = loss.critic_loss(real, fake, critic)
    torch.manual_seed(7)
    u = interpolate(real, fake)
    expected = critic(fake).mean() - critic(real).mean() + loss.gradient_penalty(critic, u)
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)
    # interpolates lie on the segments between paired rows
    t = ((u - fake) / (real - fake)).flatten(1)
    assert torch.allclose(t, t[:, :1].expand_as(t)) and bool(((t >= 0) & (t <= 1)).all())


def test_critic_loss_trains_the_critic_not_the_generator() -> None:
    tiny = TinyFaceModel()
    critic = SmallCritic(seed=2)
    real = tiny.sample(6, torch.Generator().manual_seed(1))
    fake = (real[:5] * 1.2).requires_grad_(True)  # fewer fakes than reals is allowed
    loss = WGANDivLoss()
    torch.manual_seed(0)
    value = loss.critic_loss(real, fake, critic)
    value.backward()
    assert fake.grad is None
    assert all(p.grad is not None for p in critic.parameters())
    with torch.no_grad():
        for p in critic.parameters():
            p -= 1e-2 * p.grad
    torch.manual_seed(0)
    assert loss.critic_loss(real, fake, critic).item() < value.item()


def test_generator_gradient_step_raises_the_critic_score() -> None:
    tiny = TinyFaceModel()
    batch = make_batch()
    recon = make_recon(batch, tiny)
    ctx = make_context(tiny, SmallCritic(seed=3))
    vertices = recon.vertices.clone().requires_grad_(True)
    recon.vertices = vertices
    loss = WGANDivLoss()
    value = loss(batch, recon, ctx)
    value.backward()
    with torch.no_grad():
        recon.vertices = vertices - 0.1 * vertices.grad / vertices.grad.norm()
    assert loss(batch, recon, ctx).item() < value.item()
    assert WGANDivLoss.has_critic
