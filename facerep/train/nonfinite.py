"""What a step does when a loss is NaN or Inf (``train.on_nonfinite``).

``skip``: the step is dropped (no update; its log record names the loss and the batch's samples) and
counted in ``skipped_nonfinite``. ``stop`` (the default): a debug checkpoint of the state before the
step is written and `NonFiniteLossError` names the loss, the step, the samples and that checkpoint.
"""

from __future__ import annotations

from typing import Any

from facerep.common.errors import NonFiniteLossError
from facerep.core.types import Batch
from facerep.train import checkpoint as ckpt
from facerep.train.context import RunContext
from facerep.train.snapshot import checkpoint_data
from facerep.train.stage import Components

#: Sample ids named in the error (the rest are counted).
SHOWN_SAMPLES = 16


def on_nonfinite(
    run: RunContext, loss: str, batch: Batch, comps: Components, config: dict[str, Any]
) -> dict[str, Any]:
    """Apply the stage's policy to a non-finite `loss` (its role, or "critic"): returns the skipped
    step's log record, or raises `NonFiniteLossError` after writing the debug checkpoint."""
    if config["on_nonfinite"] == "skip":
        run.state.skipped_nonfinite += 1
        comps.model_optimizer.zero_grad(set_to_none=True)
        if comps.critic_optimizer is not None:
            comps.critic_optimizer.zero_grad(set_to_none=True)
        return {"nonfinite_loss": loss, "skipped_sample_ids": list(batch.sample_ids)}
    step = run.state.step
    debug = run.checkpoint_dir / f"debug-step-{step:08d}.safetensors"
    if run.is_main:
        ckpt.save_checkpoint(debug, checkpoint_data(run, run.state.stage, "debug", comps, None))
    shown = batch.sample_ids[:SHOWN_SAMPLES]
    ids = ", ".join(shown) + (" ..." if len(batch.sample_ids) > SHOWN_SAMPLES else "")
    raise NonFiniteLossError(
        loss,
        f"(batch samples: {ids}); debug checkpoint: {debug}; set train.on_nonfinite: skip to skip such steps",
        samples=batch.sample_ids,
        step=step,
    )
