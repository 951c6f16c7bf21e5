"""WGAN-div critic step: interpolates scored in their own critic call against one call over everything.

    python benchmarks/critic_step.py [--vertices 2000 37202] [--batch 24 12] [--threads 2]

`WGANDivLoss.critic_loss` scores fake and real shapes in one critic call and the interpolates in a
second, so only the interpolates enter the double-backward graph of the gradient penalty. The reference
here is the single call over the concatenation of all three (the previous formulation). Both compute
the same value (checked with the same interpolation draw); the table gives forward + backward time of
the critic loss for the GCN critic (16, 32, 64, 128 channels, K = 6) on the synthetic face model.
"""

from __future__ import annotations

import torch
from _ab import size_arguments, synthetic_face_model, timed

from facerep.core.registry import get_registry
from facerep.plugins.losses.wgan_div import WGANDivLoss, interpolate


def main() -> None:
    args = size_arguments(__doc__, batch=[24, 12], threads=2)
    registry = get_registry()
    print("| vertices | batch | one call ms | split ms | speed-up | value difference |")
    print("|---:|---:|---:|---:|---:|---:|")
    for vertices, batch in zip(args.vertices, args.batch, strict=True):
        face_model = synthetic_face_model(vertices)
        critic = registry.build("critic", {"type": "gcn"}, {"face_model": face_model})
        loss = WGANDivLoss()
        mean = torch.as_tensor(face_model.mean, dtype=torch.float32)
        fake = mean[None].repeat(batch, 1, 1) + torch.randn(batch, vertices, 3)
        real = face_model.sample(batch).float()

        def one_call(critic=critic, loss=loss, fake=fake, real=real, b=batch) -> torch.Tensor:  # noqa: ANN001
            u = interpolate(real, fake).requires_grad_(True)
            scores = critic(torch.cat([fake, real, u], 0))
            (grad,) = torch.autograd.grad(scores[2 * b :].sum(), u, create_graph=True)
            penalty = loss.k * grad.pow(2).flatten(1).sum(1).pow(loss.p / 2).mean()
            return scores[:b].mean() - scores[b : 2 * b].mean() + penalty

        def split(critic=critic, loss=loss, fake=fake, real=real) -> torch.Tensor:  # noqa: ANN001
            return loss.critic_loss(real, fake, critic)

        torch.manual_seed(0)
        reference = float(one_call().detach())
        torch.manual_seed(0)
        difference = abs(float(split().detach()) - reference)
        times: dict[str, float] = {}
        for _ in range(2):  # alternate, keep the best of each
            for name, fn in (("one", one_call), ("split", split)):
                times[name] = min(times.get(name, float("inf")), timed(lambda fn=fn: fn().backward()))
        print(
            f"| {vertices} | {batch} | {times['one'] * 1e3:.0f} | {times['split'] * 1e3:.0f} | "
            f"{times['one'] / times['split']:.2f}x | {difference:.1e} |"
        )


if __name__ == "__main__":
    main()
