"""Chebyshev convolution: Clenshaw's recurrence on narrowing layers against the plain recursion.

    python benchmarks/cheb_clenshaw.py [--vertices 2000 37202] [--batch 24 8] [--threads 1]

Times forward + backward of the paper's GCN shape decoder (channels 128, 64, 32, 16 -> 3, K = 6) on the
synthetic face model's hierarchy with `ChebConv.clenshaw` off and on, alternating (best of two rounds of
3 repeats each), in one process. Its layers all narrow, so every one of them switches to the
recurrence on the output side. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import torch
from _ab import size_arguments, synthetic_face_model, timed

from facerep.core.registry import get_registry
from facerep.nn.cheb_conv import ChebConv


def main() -> None:
    args = size_arguments(__doc__, batch=[24, 8], threads=1)
    registry = get_registry()
    print("| vertices | batch | recursion ms | Clenshaw ms | speed-up | max output difference |")
    print("|---:|---:|---:|---:|---:|---:|")
    for vertices, batch in zip(args.vertices, args.batch, strict=True):
        face_model = synthetic_face_model(vertices)
        decoder = registry.build("shape_decoder", {"type": "gcn"}, {"face_model": face_model})
        with torch.no_grad():  # a non-zero last layer, so the outputs compared are not all the mean
            for p in decoder.parameters():
                p.normal_(0.0, 0.05)
        identity = torch.randn(batch, 128, requires_grad=True)
        expression = torch.randn(batch, 64, requires_grad=True)

        def step(decoder=decoder, identity=identity, expression=expression) -> None:  # noqa: ANN001
            decoder(identity, expression).square().sum().backward()

        best = {}
        outputs = {}
        for _ in range(2):
            for mode in (False, True):
                ChebConv.clenshaw = mode
                best[mode] = min(best.get(mode, float("inf")), timed(step))
                with torch.no_grad():
                    outputs[mode] = decoder(identity, expression)
        ChebConv.clenshaw = True
        diff = float((outputs[True] - outputs[False]).abs().max())
        print(
            f"| {vertices} | {batch} | {best[False] * 1e3:.0f} | {best[True] * 1e3:.0f} | "
            f"{best[False] / best[True]:.2f}x | {diff:.1e} mm |"
        )


if __name__ == "__main__":
    main()
