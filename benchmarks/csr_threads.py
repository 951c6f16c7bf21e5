"""The CPU sparse product on all torch threads (`facerep.nn.csr_threads`) against scipy's one thread.

    python benchmarks/csr_threads.py [--vertices 2000 37202] [--batch 24 48] [--threads 2]

For each template size: the finest mesh Laplacian of the paper's GCN shape decoder times a dense
(N, F) matrix, F = batch x 16 and batch x 3 (the widths of its last two layers), threaded (at any
size) against scipy's single-threaded product; then forward + backward of the whole shape decoder and
of the shape critic's loss with the threaded product as configured (products of `MIN_WORK`
multiply-adds and more) and off, alternating, best of two rounds. Products are checked bitwise
equal. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

# isort: off
import facerep.cli  # noqa: F401 - before torch, for its allocator setting (huge pages), as the facerep command

# isort: on
import numpy as np
import torch
from _ab import size_arguments, synthetic_face_model, timed

from facerep.core.registry import get_registry
from facerep.nn import csr_threads
from facerep.nn.cheb_conv import ChebConv
from facerep.plugins.losses.wgan_div import WGANDivLoss

ON = csr_threads.MIN_WORK
OFF = 10**30


def ab(step, repeats: int = 2) -> tuple[float, float]:  # noqa: ANN001
    """Seconds per `step` with the threaded product off and on (best of two alternating rounds)."""
    best = {OFF: float("inf"), ON: float("inf")}
    for _ in range(2):
        for threshold in (OFF, ON):
            csr_threads.MIN_WORK = threshold
            best[threshold] = min(best[threshold], timed(step, repeats))
    csr_threads.MIN_WORK = ON
    return best[OFF], best[ON]


def measure(vertices: int, batch: int) -> None:
    """Print the table rows of one template size."""
    registry = get_registry()
    face_model = synthetic_face_model(vertices)
    decoder = registry.build("shape_decoder", {"type": "gcn"}, {"face_model": face_model})  # paper sizes
    finest = max((m for m in decoder.modules() if isinstance(m, ChebConv)), key=lambda m: m.num_nodes)
    laplacian = finest.laplacian.scipy()
    for width in (16, 3):
        x = torch.rand(vertices, batch * width)
        csr_threads.MIN_WORK = 0  # the kernel itself, at every size
        threaded = csr_threads.csr_matmul(laplacian, x)
        if not np.array_equal(threaded.numpy(), laplacian @ x.numpy()):
            raise SystemExit("the threaded product differs from scipy's")
        one = timed(lambda x=x: csr_threads.csr_matmul(laplacian, x, threads=1), 10)
        many = timed(lambda x=x: csr_threads.csr_matmul(laplacian, x), 10)
        csr_threads.MIN_WORK = ON
        row(vertices, f"L~ @ ({vertices}, {batch} x {width})", one, many)
    identity = torch.randn(batch, 128, requires_grad=True)
    expression = torch.randn(batch, 64, requires_grad=True)
    off, on = ab(lambda: decoder(identity, expression).square().sum().backward())
    row(vertices, f"shape decoder, batch {batch}, fwd+bwd", off, on)
    critic = registry.build("critic", {"type": "gcn"}, {"face_model": face_model})
    loss = WGANDivLoss()
    fake, real = face_model.sample(batch).float(), face_model.sample(batch).float()
    off, on = ab(lambda: loss.critic_loss(real, fake, critic).backward())
    row(vertices, f"critic loss, batch {batch}, fwd+bwd", off, on)


def row(vertices: int, what: str, single: float, threaded: float) -> None:
    print(f"| {vertices} | {what} | {single * 1e3:.1f} | {threaded * 1e3:.1f} | {single / threaded:.2f}x |")


def main() -> None:
    args = size_arguments(__doc__, batch=[24, 48], threads=2)
    print("| vertices | what | scipy, 1 thread ms | threaded ms | speed-up |")
    print("|---:|---|---:|---:|---:|")
    for vertices, batch in zip(args.vertices, args.batch, strict=True):
        measure(vertices, batch)


if __name__ == "__main__":
    main()
