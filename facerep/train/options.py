"""Run-level options from the command line (the recipe holds everything else)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facerep.common.errors import FacerepError


@dataclass
class TrainOptions:
    """Run-level options from the command line (the recipe holds everything else)."""

    out: Path
    device: str = "cpu"
    resume: bool = False
    max_steps: int | None = None  # cap per stage (smoke tests, CI)
    quiet: bool = False
    precision: str | None = None  # "32" | "bf16-mixed"; None = the recipe's train.precision
    compile: bool = False
    allow_recipe_change: bool = False  # resume with a recipe unlike the checkpoint's (see Trainer.fit)

    def __post_init__(self) -> None:
        steps = self.max_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise FacerepError(f"max_steps must be a whole number of steps >= 1, got {steps!r}")
