"""What every part of a training run shares: the recipe, the options, the process, the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facerep.core.recipe import Recipe
from facerep.core.registry import Registry
from facerep.train.metrics_log import MetricsLog
from facerep.train.options import TrainOptions
from facerep.train.terminal import Terminal


@dataclass
class TrainState:
    """Where training is: stage index, epoch within the stage, global step, batches done this epoch."""

    stage: int = 0
    epoch: int = 0
    step: int = 0
    stage_step: int = 0
    epoch_step: int = 0
    skipped_nonfinite: int = 0


@dataclass
class RunContext:
    """One training run as its parts see it.

    Attributes:
        recipe: the resolved recipe (every stage).
        options: the command line's options.
        registry: where components are built by name.
        device: the torch device of this process.
        rank, world_size: this process's place in a data-parallel run (0, 1 alone).
        terminal: notes, warnings, progress and the summary (silent outside process 0).
        log: metrics.jsonl and TensorBoard (written by process 0 only).
        state: the counters (stage, epoch, step, ...).
        validator: the held-out validator, built once (`facerep.train.validation.Validator`), or None.
        last_validation: the newest ``val/*`` metrics, or None.
        started: ``time.perf_counter()`` when training started.
    """

    recipe: Recipe
    options: TrainOptions
    registry: Registry
    device: torch.device
    rank: int
    world_size: int
    terminal: Terminal
    log: MetricsLog
    state: TrainState = field(default_factory=TrainState)
    validator: Any = None
    last_validation: dict[str, float] | None = None
    started: float = 0.0

    @property
    def out(self) -> Path:
        """The run directory."""
        return self.options.out

    @property
    def is_main(self) -> bool:
        """True in the process that writes the run folder (rank 0)."""
        return self.rank == 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"
