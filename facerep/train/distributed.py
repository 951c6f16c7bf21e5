"""Data parallelism helpers (``torchrun --nproc-per-node N -m facerep run``).

The recipe's batch is the global batch; each process takes an equal shard of every batch
(`facerep.data.sampler`), batch norm uses the whole batch's statistics (`facerep.nn.global_batchnorm`),
losses normalised by data-dependent counts average those counts over processes, the model's gradients
are averaged in one all-reduce, and the critic trains on the gathered whole batch in every process. N
processes therefore compute what one process computes on the same recipe, up to floating-point
reduction order.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn


def process_rank() -> tuple[int, int]:
    """Initialise torch.distributed under torchrun (gloo on CPU, NCCL on GPU); (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    dist = torch.distributed
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def whole_batch(local: Tensor, sampler: Any, world_size: int) -> Tensor:
    """(b, ...) rows of this process's shard -> (B, ...) rows of the whole batch, in the order one process
    would hold them (all-gather; the sampler says where each process's rows sit)."""
    if world_size <= 1:
        return local
    parts = [torch.empty_like(local) for _ in range(world_size)]
    torch.distributed.all_gather(parts, local.contiguous())
    whole = local.new_empty((sum(p.shape[0] for p in parts), *local.shape[1:]))
    for rank, part in enumerate(parts):
        whole[torch.as_tensor(sampler.shard_positions(rank), device=local.device)] = part
    return whole


def average_gradients(optimizer: torch.optim.Optimizer | None, world_size: int) -> None:
    """Data parallelism: average the gradients of `optimizer`'s parameters over all ranks.

    One flat all-reduce per optimizer (a bucket), so every rank takes the same step; explicit rather
    than DistributedDataParallel because losses call decoders outside the model's forward (pairwise
    shape loss) and the critic is stepped between forward and backward.
    """
    if world_size <= 1 or optimizer is None:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = _flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat)
    flat /= world_size
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(synced)


def synchronise_buffers(modules: list[nn.Module], world_size: int) -> None:
    """Average floating-point buffers (BatchNorm statistics, recognition centres) over all ranks."""
    for module in modules:
        for buffer in module.buffers():
            if buffer.is_floating_point():
                torch.distributed.all_reduce(buffer)
                buffer /= world_size
