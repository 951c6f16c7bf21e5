"""One training step (paper sections 4-5).

1. encode the hybrid batch, decode shape and albedo, render (``FaceRepModel.forward``);
2. ``n_critic`` critic steps (WGAN-div): fake shapes are the decoded shapes (detached), real shapes are
   drawn from the face model's linear 3DMM prior;
3. the weighted sum of every recipe loss (each selects the rows it applies to) is minimised with the
   model optimiser; the adversarial loss's generator side sees the updated critic.

A loss that is NaN or Inf (its value, or its own check raising `FloatingPointError`) goes to
`facerep.train.nonfinite.on_nonfinite`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from facerep.core.interfaces import LossContext
from facerep.core.types import Batch, Reconstruction
from facerep.train.context import RunContext
from facerep.train.distributed import average_gradients, synchronise_buffers, whole_batch
from facerep.train.nonfinite import on_nonfinite
from facerep.train.stage import Components


def train_step(
    run: RunContext,
    comps: Components,
    batch: Batch,
    config: dict[str, Any],
    generator: torch.Generator,
    precision: str,
) -> dict[str, Any]:
    """Train the critic, then the model, on `batch`; the step's log record (``loss/<role>`` values,
    unweighted, ``loss/total`` weighted), or the non-finite policy's record for a skipped step."""
    model = comps.model
    model.train()
    recon = _forward(model, batch, run.device, precision)
    record: dict[str, Any] = {}
    adversarial = [
        loss
        for loss in comps.losses.values()
        if getattr(loss, "has_critic", False) and float(getattr(loss, "weight", 1.0)) != 0.0
    ]  # a critic whose only adversarial term is weighted 0 would train for nothing
    if comps.critic is not None and adversarial:
        critic_loss = _train_critic(run, comps, adversarial[0], recon, config, generator)
        if critic_loss is None:
            return on_nonfinite(run, "critic", batch, comps, config)
        record["loss/critic"] = critic_loss
    context = LossContext(
        face_model=comps.face_model,
        shape_decoder=model.shape_decoder,
        critic=comps.critic,
        step=run.state.step,
    )
    total = torch.zeros((), device=run.device)
    for role, loss in comps.losses.items():
        weight = float(getattr(loss, "weight", 1.0))
        if weight == 0.0:
            continue
        try:
            value = loss(batch, recon, context)
        except FloatingPointError:  # the loss's own NaN/Inf check (facerep.common.errors.NonFiniteLossError)
            return on_nonfinite(run, role, batch, comps, config)
        if not torch.isfinite(value):
            return on_nonfinite(run, role, batch, comps, config)
        record[f"loss/{role}"] = float(value.detach())
        total = total + weight * value
    record["loss/total"] = float(total.detach())
    _update_model(run, comps, total, config)
    return record


def _forward(model: nn.Module, batch: Batch, device: torch.device, precision: str) -> Reconstruction:
    """The model's reconstruction of `batch`; under ``bf16-mixed`` the model runs in bfloat16 autocast
    and the reconstruction comes back in float32 (losses, and the decoders they call, run in float32)."""
    bf16 = precision == "bf16-mixed"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        recon = model(batch.images, batch.landmarks)
    return recon.float() if bf16 else recon


def _train_critic(
    run: RunContext,
    comps: Components,
    adversarial: nn.Module,
    recon: Reconstruction,
    config: dict[str, Any],
    generator: torch.Generator,
) -> float | None:
    """``n_critic`` critic steps; the last critic loss, or None when one was not finite.

    The critic trains on the whole batch in every process (fakes gathered from every shard, in
    single-process order; real shapes drawn identically everywhere), so its gradients are equal across
    processes without an all-reduce, and equal to a single process's.
    """
    fake = whole_batch(recon.vertices.detach().float(), comps.data.sampler, run.world_size)
    for _ in range(int(config["n_critic"])):
        real = comps.face_model.sample(fake.shape[0], generator=generator).to(fake)
        try:
            critic_loss = adversarial.critic_loss(real, fake, comps.critic)
        except FloatingPointError:  # the loss's own NaN/Inf check
            return None
        if not torch.isfinite(critic_loss):
            return None
        comps.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        comps.critic_optimizer.step()
    return float(critic_loss.detach())


def _update_model(run: RunContext, comps: Components, total: Tensor, config: dict[str, Any]) -> None:
    """Backward, average gradients over processes, clip (``train.grad_clip``), step the model's optimiser;
    then average the floating buffers over processes."""
    comps.model_optimizer.zero_grad(set_to_none=True)
    total.backward()
    average_gradients(comps.model_optimizer, run.world_size)
    if config["grad_clip"]:
        params = [p for g in comps.model_optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, float(config["grad_clip"]))
    comps.model_optimizer.step()
    if run.world_size > 1:
        synchronise_buffers([comps.model, *comps.losses.values()], run.world_size)
