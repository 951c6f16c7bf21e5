"""Batch normalisation over the global batch of a data-parallel run, on any device (gloo on CPU too).

In a data-parallel run every process holds a shard of each batch. Plain batch normalisation would
normalise each shard with its own statistics, so a run on N processes would not compute what one
process computes on the whole batch. `GlobalBatchNorm` combines every process's per-channel count,
mean and variance exactly (two differentiable all-reduces per layer and step, of C + 1 and C numbers),
so the normalisation, its gradient and the running statistics are those of the global batch.
(torch's ``SyncBatchNorm`` does the same but only on GPUs.)

`use_global_batchnorm(module)` switches every batch-norm layer of a module to it in place: parameters,
buffers and state-dict keys stay the same (checkpoints load into the plain layers), so an optimiser
built before the switch still holds the right tensors. Outside a process group, or in eval mode, the
layers behave exactly like torch's.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are over all processes' rows: (B, C, ...) -> same shape."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and self.track_running_stats and _distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable all-reduce

        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        # Statistics and normalisation in float32 (a bf16 activation under autocast included), as
        # torch's batch norm does; the output goes back to the input's dtype.
        xf = x.float()
        # Chan's parallel variance: each process's own mean and variance (torch's stable reductions),
        # combined exactly. Summing x and x * x instead loses the variance to cancellation wherever a
        # channel's spread is small against its mean (constant image backgrounds do that).
        var_local, mean_local = torch.var_mean(xf, dims, correction=0)
        n_local = xf.new_full((1,), float(x.numel() // channels))
        total = all_reduce(torch.cat([n_local, n_local * mean_local]))
        count = total[0]
        mean = total[1:] / count
        m2 = all_reduce(n_local * (var_local + (mean_local - mean) ** 2))
        var = m2 / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
            unbiased = var * (count / (count - 1).clamp_min(1.0))
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_(unbiased.detach(), momentum)
        shape = (1, channels) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class GlobalBatchNorm1d(GlobalBatchNorm, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(GlobalBatchNorm, nn.BatchNorm2d):
    pass


class GlobalBatchNorm3d(GlobalBatchNorm, nn.BatchNorm3d):
    pass


_GLOBAL = {
    nn.BatchNorm1d: GlobalBatchNorm1d,
    nn.BatchNorm2d: GlobalBatchNorm2d,
    nn.BatchNorm3d: GlobalBatchNorm3d,
}


def use_global_batchnorm(module: nn.Module) -> int:
    """Switch every plain BatchNorm1d/2d/3d in `module` to its global-batch version in place.

    Returns the number of layers switched. Layers of other batch-norm subclasses are left alone.
    """
    switched = 0
    for child in module.modules():
        target = _GLOBAL.get(type(child))
        if target is not None:
            child.__class__ = target
            switched += 1
    return switched
