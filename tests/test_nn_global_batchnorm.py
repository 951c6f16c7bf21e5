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


def _batch(narrow: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(6, 3, 4, 5) inputs; `narrow`: channel 1 spread 0.05 around 100, where E[x^2] - E[x]^2
    cancels to nothing in float32 (a constant image background after a convolution does this)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 4, 5, generator=g) * 2 + 1
    if narrow:
        x[:, 1] = x[:, 1] * 0.025 + 100.0
    upstream = torch.randn(6, 3, 4, 5, generator=g)
    return x, upstream


def _layer() -> nn.BatchNorm2d:
    layer = nn.BatchNorm2d(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return layer


def _worker(rank: int, store: str, out: str, narrow: bool) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        x, upstream = _batch(narrow)
        rows = slice(rank * 3, rank * 3 + 3)
        layer = _layer()
        assert use_global_batchnorm(layer) == 1
        shard = x[rows].clone().requires_grad_(True)
        y = layer(shard)
        # the global loss is the sum over both shards; each process backpropagates its own part
        (y * upstream[rows]).sum().backward()
        grads = torch.cat([layer.weight.grad, layer.bias.grad])
        dist.all_reduce(grads)
        torch.save(
            {
                "y": y.detach(),
                "dx": shard.grad,
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


@pytest.mark.parametrize("narrow", [False, True], ids=["spread", "narrow-channel"])
def test_two_processes_match_one_batchnorm_on_the_whole_batch(tmp_path: Path, narrow: bool) -> None:
    out = str(tmp_path / "result")
    mp.start_processes(_worker, args=(str(tmp_path / "store"), out, narrow), nprocs=2, start_method="spawn")
    x, upstream = _batch(narrow)
    layer = _layer()
    whole = x.clone().requires_grad_(True)
    y = layer(whole)
    (y * upstream).sum().backward()
    parts = [torch.load(f"{out}.{rank}") for rank in range(2)]

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:  # relative to b's scale (dx is ~1/spread)
        return bool((a - b).abs().max() <= 1e-3 * b.abs().max().clamp_min(1.0))

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
