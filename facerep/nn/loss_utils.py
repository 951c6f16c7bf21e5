"""Helpers shared by the loss plugins: row selection, a zero that keeps the graph, finiteness checks.

Every loss returns an *unweighted* scalar (the engine multiplies by the recipe ``weight``). When no
row of a batch applies (for example a batch without labelled rows for the shape loss) a loss returns
`zero_like_graph`, a 0 that is still connected to the network's outputs, so ``backward`` works on any
sum of losses. A loss whose value is NaN or Inf raises `NonFiniteLossError`, which names the loss,
the inputs that hold non-finite values and the samples they came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from facerep.common.errors import FacerepError, NonFiniteLossError

APPLIES_TO: tuple[str, ...] = ("all", "labelled", "unlabelled")


def row_mask(labelled: Tensor, applies_to: str) -> Tensor:
    """(B,) bool: the rows a loss with this ``applies_to`` uses (see `APPLIES_TO`), from a batch's (B,)
    ``labelled`` flags."""
    labelled = labelled.to(torch.bool)
    if applies_to == "all":
        return torch.ones_like(labelled)
    if applies_to == "labelled":
        return labelled
    if applies_to == "unlabelled":
        return ~labelled
    raise ValueError(f"applies_to must be one of {APPLIES_TO}, got {applies_to!r}")


def zero_like_graph(*tensors: Tensor) -> Tensor:
    """A scalar 0 connected to the autograd graph of `tensors` (gradient 0), never NaN.

    Sums an empty slice of each tensor, so even a tensor holding NaN gives an exact 0.
    """
    parts = [t.reshape(-1)[:0].sum() for t in tensors if isinstance(t, Tensor)]
    if not parts:
        raise ValueError("zero_like_graph needs at least one tensor")
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _bad_rows(value: Tensor) -> Tensor:
    """(B,) bool: rows of a (B, ...) tensor that hold a NaN or Inf."""
    if value.dim() == 0:
        return (~torch.isfinite(value)).reshape(1)
    return (~torch.isfinite(value.detach())).reshape(value.shape[0], -1).any(dim=1)


def check_finite(
    loss: str,
    value: Tensor,
    inputs: Mapping[str, Tensor | None] | None = None,
    sample_ids: Sequence[str] = (),
) -> Tensor:
    """Return `value` (a scalar) when it is finite; otherwise raise `NonFiniteLossError`.

    The check costs one device synchronisation (a single scalar). Only when the value is not finite
    are the named `inputs` ((B, ...) tensors, batch-first) inspected to say which hold NaN/Inf and in
    which rows; `sample_ids` (one per row) turn rows into sample names.
    """
    if bool(torch.isfinite(value.detach()).all()):
        return value
    bad_inputs: list[str] = []
    bad_rows: set[int] = set()
    for name, tensor in (inputs or {}).items():
        if tensor is None:
            continue
        rows = _bad_rows(tensor)
        if bool(rows.any()):
            bad_inputs.append(name)
            if tensor.dim() > 0:
                bad_rows.update(int(i) for i in torch.nonzero(rows).reshape(-1).tolist())
    samples = [sample_ids[i] for i in sorted(bad_rows) if i < len(sample_ids)]
    kind = "NaN" if bool(torch.isnan(value.detach()).any()) else "Inf"
    if bad_inputs:
        where = f"non-finite values in {', '.join(bad_inputs)}"
        if bad_rows:
            where += f" (rows {sorted(bad_rows)}"
            where += f"; samples {samples})" if samples else ")"
    else:
        where = "its inputs are finite, the computation overflowed"
    raise NonFiniteLossError(loss, f"value is {kind}: {where}", bad_inputs, samples)


def process_mean(count: Tensor) -> Tensor:
    """A per-process count (scalar, no gradient) averaged over the processes of a data-parallel run.

    A loss normalised by a data-dependent count (masked pixels, say) divides its local sum by this: the
    engine averages the processes' gradients, which then equal those of (sum over all processes) /
    (count over all processes), the value one process computes on the whole batch. Outside a process
    group it is `count` itself.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count
    total = count.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def full_precision(tensor: Tensor) -> Tensor:
    """`tensor` as float32 when it is half or bfloat16 (mixed precision), else unchanged (differentiable).

    Losses compare millimetre-scale shapes and small colour differences; reduced precision would round
    both away.
    """
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.float()
    return tensor


def mean_vertex_l1(diff: Tensor) -> Tensor:
    """Mean over rows and vertices of the per-vertex L1 norm: (B, N, 3) mm -> scalar mm."""
    return diff.abs().sum(dim=-1).mean()


def check_same_template(loss: str, pred: Tensor, target: Tensor) -> None:
    """A clear error when decoded (B, N, 3) and 3DMM shapes differ in shape (another template)."""
    if pred.shape != target.shape:
        raise FacerepError(
            f"loss {loss!r}: decoded shapes {tuple(pred.shape)} and 3DMM shapes "
            f"{tuple(target.shape)} differ (decoder and face model must share the template)"
        )


def shape_l1(loss: str, pred: Tensor, target: Tensor) -> Tensor:
    """`mean_vertex_l1` of decoded (B, N, 3) and 3DMM shapes (mm); differing templates are a clear error."""
    check_same_template(loss, pred, target)
    return mean_vertex_l1(pred - target)


def require_rendering(loss: str, recon: object) -> object:
    """`recon.rendering`, or a clear error when the engine did not render this batch."""
    rendering = getattr(recon, "rendering", None)
    if rendering is None:
        raise FacerepError(f"loss {loss!r} needs a rendering, but the reconstruction has none")
    return rendering


def model_shape(face_model: Any, alpha_id: Tensor, alpha_exp: Tensor, like: Tensor) -> Tensor:
    """Eq. (1) without gradient: (M, K_id), (M, K_exp) -> (M, N, 3) mm on `like`'s device and dtype.

    `face_model` is the run's `facerep.core.interfaces.FaceModel` (its ``shape`` is used).
    """
    with torch.no_grad():
        return face_model.shape(alpha_id, alpha_exp).to(device=like.device, dtype=like.dtype)
