"""Chebyshev graph convolution: facerep.nn.ChebConv against torch-geometric's ChebConv.

Same weights, same inputs: checks that the outputs (and input gradients) agree to 1e-5, then times
forward + backward of the GCN shape decoder's graph-convolution layers, each on its level of the
mesh hierarchy (coarse to fine: GC(128) on level 3 ... GC(16) and GC(3) on level 0), side by side in
one process, and prints the speed ratio per layer and for the whole stack.

    .venv/bin/pip install torch-geometric        # benchmark-only dependency (the `bench` extra)
    .venv/bin/python benchmarks/graph_conv.py                      # 2k and 37k templates, batch 32
    .venv/bin/python benchmarks/graph_conv.py --vertices 2000 --batch 8 --repeats 5

torch-geometric is used as COMA ports use it: one ``edge_index`` shared by the batch, features
(B, N, C), ``normalization="sym"`` and ``lambda_max=2`` (so both compute with L~ = -D^-1/2 A D^-1/2).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch

from facerep.nn import ChebConv, SparseOperator, scaled_laplacian


def hierarchy_adjacencies(vertices: int, factor: int, levels: int) -> list[sp.csr_matrix]:
    """Vertex adjacency of every level of the synthetic face model's COMA hierarchy, finest first."""
    from facerep.geometry.hierarchy import get_hierarchy
    from facerep.plugins.facemodels.synthetic import synthetic

    face_model = synthetic(vertices=vertices)
    hierarchy = get_hierarchy(face_model, factor=factor, levels=levels)
    # the scaled Laplacian -D^-1/2 A D^-1/2 has A's sparsity pattern
    return [sp.csr_matrix((abs(sp.csr_matrix(lap)) > 0).astype(np.float32)) for lap in hierarchy.laplacians]


def edge_index_of(adjacency: sp.csr_matrix) -> torch.Tensor:
    coo = sp.coo_matrix(adjacency)
    return torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))


def make_pyg(ours: ChebConv):  # noqa: ANN201 - torch_geometric type
    from torch_geometric.nn import ChebConv as PygChebConv

    conv = PygChebConv(ours.in_channels, ours.out_channels, K=ours.K, normalization="sym")
    with torch.no_grad():
        for k, lin in enumerate(conv.lins):
            lin.weight.copy_(ours.weight[k].T)
        conv.bias.copy_(ours.bias)
    return conv


def time_fb(fn, x: torch.Tensor, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of forward + backward (sum of outputs) after one warm-up run."""
    times = []
    for i in range(repeats + 1):
        xi = x.detach().requires_grad_(True)
        start = time.perf_counter()
        fn(xi).sum().backward()
        if i > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(vertices: int, batch: int, repeats: int, K: int, factor: int) -> dict[str, float]:
    adjacencies = hierarchy_adjacencies(vertices, factor, 3)
    sizes = [a.shape[0] for a in adjacencies]
    print(f"\n== template {vertices} vertices: hierarchy levels {sizes}, batch {batch}, K={K} ==")
    # the shape decoder's graph convolutions: (level, C_in, C_out)
    layers = [(3, 128, 128), (2, 128, 64), (1, 64, 32), (0, 32, 16), (0, 16, 3)]
    total = {"facerep": 0.0, "pyg": 0.0}
    gen = torch.Generator().manual_seed(0)
    for level, cin, cout in layers:
        adjacency = adjacencies[level]
        laplacian = SparseOperator(scaled_laplacian(adjacency), symmetric=True)
        ours = ChebConv(cin, cout, K, laplacian)
        with torch.no_grad():
            ours.bias.normal_(generator=gen)
        pyg = make_pyg(ours)
        edge_index = edge_index_of(adjacency)
        n = adjacency.shape[0]
        x = torch.randn(batch, n, cin, generator=gen)

        def pyg_fn(t: torch.Tensor, conv=pyg, ei=edge_index) -> torch.Tensor:  # noqa: ANN001
            return conv(t, ei, lambda_max=2.0)

        # correctness: outputs and input gradients
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        ya, yb = ours(xa), pyg_fn(xb)
        g = torch.randn(ya.shape, generator=gen)
        (ya * g).sum().backward()
        (yb * g).sum().backward()
        out_err = (ya - yb).abs().max().item()
        grad_err = (xa.grad - xb.grad).abs().max().item()
        ok = out_err < 1e-5 * max(1.0, yb.abs().max().item()) and grad_err < 1e-5 * max(
            1.0, xb.grad.abs().max().item()
        )
        t_ours = time_fb(ours, x, repeats)
        t_pyg = time_fb(pyg_fn, x, repeats)
        total["facerep"] += t_ours
        total["pyg"] += t_pyg
        print(
            f"level {level} ({n:6d} v) GC({K},{cin}->{cout}): max |out diff| {out_err:.2e}, "
            f"max |grad diff| {grad_err:.2e} [{'ok' if ok else 'MISMATCH'}]; fwd+bwd facerep "
            f"{t_ours * 1e3:8.1f} ms, torch-geometric {t_pyg * 1e3:8.1f} ms, ratio {t_pyg / t_ours:5.2f}x"
        )
        if not ok:
            raise SystemExit("facerep ChebConv disagrees with torch-geometric beyond 1e-5")
    ratio = total["pyg"] / total["facerep"]
    print(
        f"decoder GC stack, fwd+bwd: facerep {total['facerep'] * 1e3:.1f} ms, torch-geometric "
        f"{total['pyg'] * 1e3:.1f} ms -> facerep is {ratio:.2f}x faster"
    )
    return {"facerep": total["facerep"], "pyg": total["pyg"], "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vertices", type=int, nargs="+", default=[2000, 37202])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--K", type=int, default=6)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--cpu-backend", choices=["scipy", "torch"], default="scipy", help="facerep's CPU sparse product"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    SparseOperator.cpu_backend = args.cpu_backend
    import torch_geometric

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
        f"torch {torch.__version__}, torch-geometric {torch_geometric.__version__}; "
        f"facerep CPU sparse backend: {args.cpu_backend}"
    )
    for v in args.vertices:
        run(v, args.batch, args.repeats, args.K, args.factor)


if __name__ == "__main__":
    main()
