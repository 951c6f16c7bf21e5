"""Adversarial shape loss (paper eq. 11), WGAN-div (Wu et al. 2018, "Wasserstein divergence for GANs").

The critic D scores shapes (B, N, 3) mm; real shapes are drawn from the linear 3DMM, fake ones are the
network's reconstructions. Critic step (minimised over D):

    L_D = E[D(fake)] - E[D(real)] + k E_u[ ||grad_u D(u)||^p ],  u = t real + (1 - t) fake, t ~ U(0, 1)

(u uniformly on straight lines between paired real and fake shapes, k = 2, p = 6 by default).
Generator step (minimised over the encoder and decoders): L_adv = -E[D(fake)], optionally switched on
after ``start_step`` and ramped in over ``ramp_steps`` (a curriculum: a critic facing shapes that are
all still the mean face pushes them off the face manifold; benchmarks/RESULTS.md, "Learning").

Sign convention: the critic scores real shapes high and fake ones low, and the generator raises its
fakes' scores. The paper's eq. (11) writes the min-max with the opposite sign on the two expectations
next to L_adv = -D(s^), which cannot both hold; this is the consistent reading, also that of common
WGAN-div implementations (critic: -D(real) + D(fake) + penalty; generator: -D(fake)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from facerep.common.errors import FacerepError
from facerep.core.interfaces import Critic, Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, Reconstruction
from facerep.nn.loss_utils import check_finite, zero_like_graph

NAME = "wgan_div"


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Points uniformly on the segments between paired rows: (M, ...) x 2 -> (M, ...).

    u_m = t_m real_m + (1 - t_m) fake_m with one t_m ~ U(0, 1) per row.
    """
    t = torch.rand(real.shape[0], generator=generator, device="cpu").to(device=real.device, dtype=real.dtype)
    t = t.reshape((-1,) + (1,) * (real.dim() - 1))
    return t * real + (1.0 - t) * fake


class WGANDivLoss(Loss):
    """WGAN-div adversarial loss: ``forward`` is the generator side, `critic_loss` the critic side.

    ``forward(batch, recon, context)`` uses ``context["critic"]`` on ``recon.vertices`` (B, N, 3) and
    returns the unweighted -mean_b D(s^_b). The critic's parameters receive gradients from it too: the
    engine steps only the model's optimiser on this loss and clears the critic's gradients before its
    own step.
    """

    applies_to = "all"
    has_critic = True

    def __init__(
        self, weight: float = 0.01, k: float = 2.0, p: float = 6.0, start_step: int = 0, ramp_steps: int = 0
    ) -> None:
        super().__init__()
        if float(p) <= 0 or float(k) < 0:
            raise FacerepError(f"loss {NAME!r}: needs k >= 0 and p > 0, got k={k}, p={p}")
        if int(start_step) < 0 or int(ramp_steps) < 0:
            raise FacerepError(
                f"loss {NAME!r}: start_step and ramp_steps must be >= 0, got {start_step}, {ramp_steps}"
            )
        self.weight = float(weight)
        self.k = float(k)
        self.p = float(p)
        self.start_step = int(start_step)
        self.ramp_steps = int(ramp_steps)

    def ramp(self, step: int) -> float:
        """The generator term's factor at global `step`: 0 before ``start_step``, then rising linearly to
        1 over ``ramp_steps`` (1 at once when 0). The critic trains from the first step either way."""
        if step < self.start_step:
            return 0.0
        if self.ramp_steps == 0:
            return 1.0
        return min(1.0, (step - self.start_step + 1) / self.ramp_steps)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """Generator loss -ramp(step) E[D(fake)] on the reconstructed shapes -> scalar (unweighted)."""
        critic = context["critic"]
        vertices = recon.vertices
        factor = self.ramp(int(context.get("step", 0)))
        if factor == 0.0:
            return zero_like_graph(vertices)
        scores = critic(vertices)
        value = -factor * scores.mean()
        return check_finite(
            NAME, value, {"recon.vertices": vertices, "critic score": scores}, batch.sample_ids
        )

    def gradient_penalty(self, critic: Critic, points: Tensor) -> Tensor:
        """k E[||grad_u D(u)||^p] at `points` (M, N, 3) -> scalar, differentiable in D's parameters.

        The norm is the L2 norm of the whole (N, 3) gradient of each row; computed as
        (sum of squares)^(p/2), which has a gradient at 0 for p >= 2.
        """
        with torch.enable_grad():  # the input gradient is needed even under no_grad (e.g. validation)
            u = points.detach().requires_grad_(True)
            scores = critic(u)
            (grad,) = torch.autograd.grad(scores.sum(), u, create_graph=True)
            return self.k * grad.pow(2).flatten(1).sum(dim=1).pow(self.p / 2.0).mean()

    def critic_loss(self, real: Tensor, fake: Tensor, critic: Critic) -> Tensor:
        """E[D(fake)] - E[D(real)] + k E[||grad D(u)||^p]: (M_r, N, 3) real, (M_f, N, 3) fake -> scalar.

        Both inputs are detached (the critic step does not train the generator). Straight lines pair
        row m of `real` with row m of `fake` (the first min(M_r, M_f) rows). Fake and real shapes are
        scored in one critic call and the interpolates in another (`gradient_penalty`): only the
        interpolates need the input gradient and its double backward, which on a large mesh costs
        several times a plain backward pass, so keeping fake and real rows out of that graph makes the
        step 1.7-2.9x faster than one call over all three (benchmarks/critic_step.py; the critic has no
        batch statistics, so the split does not change the value).
        """
        real = real.detach()
        fake = fake.detach().to(dtype=real.dtype)
        if real.shape[1:] != fake.shape[1:]:
            raise FacerepError(
                f"loss {NAME!r}: real shapes {tuple(real.shape)} and fake shapes {tuple(fake.shape)} "
                "have different vertex layouts"
            )
        m = min(real.shape[0], fake.shape[0])
        n_fake, n_real = fake.shape[0], real.shape[0]
        with torch.enable_grad():  # the input gradient is needed even under no_grad (e.g. validation)
            scores = critic(torch.cat([fake, real], dim=0))
            penalty = self.gradient_penalty(critic, interpolate(real[:m], fake[:m]))
            value = scores[:n_fake].mean() - scores[n_fake : n_fake + n_real].mean() + penalty
        return check_finite(NAME, value, {"real shapes": real, "fake shapes": fake, "critic score": scores})


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss",
            NAME,
            WGANDivLoss,
            "WGAN-div adversarial shape loss (eq. 11): generator -E[D(fake)], critic with k E|grad|^p",
        )
    ]
