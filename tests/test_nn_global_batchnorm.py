"""GlobalBatchNorm: two gloo processes on shards of a batch compute what one BatchNorm2d computes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from facerep.nn.global_batchnorm import GlobalBatchNorm2d, use_global_batchnorm

#: case -> tolerance, relative to the compared tensor's scale (at least 1; dx grows as 1 / spread)
CASES = {"spread": 2e-5, "narrow": 1e-3, "bf16": 2e-2}


def _batch(case: str = "spread") -> tuple[torch.Tensor, torch.Tensor]:
    """(6, 3, 4, 5) inputs; "narrow": channel 1 spread 0.05 around 100, where E[x^2] - E[x]^2
    cancels to nothing in float32 (a constant image background after a convolution does this);
    "bf16": the inputs rounded to bfloat16 (as activations under autocast)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 4, 5, generator=g) * 2 + 1
    if case == "narrow":
        x[:, 1] = x[:, 1] * 0.025 + 100.0
    if case == "bf16":
        x = x.bfloat16()
    upstream = torch.randn(6, 3, 4, 5, generator=g)
    return x, upstream


def _layer() -> nn.BatchNorm2d:
    layer = nn.BatchNorm2d(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return layer


def _worker(rank: int, store: str, out: str, case: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        x, upstream = _batch(case)
        rows = slice(rank * 3, rank * 3 + 3)
        layer = _layer()
        assert use_global_batchnorm(layer) == 1
        shard = x[rows].clone().requires_grad_(True)
        y = layer(shard)
        assert y.dtype == x.dtype
        # the global loss is the sum over both shards; each process backpropagates its own part
        (y.float() * upstream[rows]).sum().backward()
        grads = torch.cat([layer.weight.grad, layer.bias.grad])
        dist.all_reduce(grads)
        torch.save(
            {
                "y": y.detach().float(),
                "dx": shard.grad.float(),
                "dparams": grads,
                "running": torch.cat([layer.running_mean, layer.running_var]),
            },
            f"{out}.{rank}",
        )
        dist.barrier()  # both results are written
    finally:
        dist.destroy_process_group()
    # Leave without running the interpreter's teardown: gloo's worker threads, torn down at exit,
    # abort the process now and then ("terminate called without an active exception", about 1
    # run in 5 here); the results are already on disk.
    os._exit(0)


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one_batchnorm_on_the_whole_batch(tmp_path: Path, case: str) -> None:
    out = str(tmp_path / "result")
    mp.start_processes(_worker, args=(str(tmp_path / "store"), out, case), nprocs=2, start_method="spawn")
    x, upstream = _batch(case)
    layer = _layer()
    whole = x.float().clone().requires_grad_(True)  # the reference in float32
    y = layer(whole)
    (y * upstream).sum().backward()
    parts = [torch.load(f"{out}.{rank}") for rank in range(2)]

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool((a - b).abs().max() <= CASES[case] * b.abs().max().clamp_min(1.0))

    assert close(torch.cat([p["y"] for p in parts]), y.detach())
    assert close(torch.cat([p["dx"] for p in parts]), whole.grad)
    expected = torch.cat([layer.weight.grad, layer.bias.grad])
    for p in parts:
        assert close(p["dparams"], expected)
        assert close(p["running"], torch.cat([layer.running_mean, layer.running_var]))


def test_outside_a_process_group_it_is_plain_batchnorm() -> None:
    x, _ = _batch()
    plain, switched = _layer(), _layer()
    use_global_batchnorm(switched)
    assert isinstance(switched, GlobalBatchNorm2d) and isinstance(switched, nn.BatchNorm2d)
    assert torch.equal(plain(x), switched(x))
    assert set(plain.state_dict()) == set(switched.state_dict())
    plain.eval(), switched.eval()
    assert torch.equal(plain(x), switched(x))
