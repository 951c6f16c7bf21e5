"""The model's learning-rate schedule within a stage (``train.lr_warmup``, ``lr_decay``, ``lr_final``)."""

from __future__ import annotations

import math
from typing import Any


def lr_factor(step: int, total: int, config: dict[str, Any]) -> float:
    """The model learning rate's multiplier at `step` (0-based, within a stage of `total` steps).

    Linear warm-up from 1/warmup to 1 over ``lr_warmup`` steps, then constant (``lr_decay: none``) or a
    half cosine down to ``lr_final`` at the last step (``cosine``). A pure function of the step, so a
    resumed run follows the same schedule without storing one.
    """
    warmup = int(config["lr_warmup"])
    if step < warmup:
        return (step + 1) / warmup
    if config["lr_decay"] == "none" or total <= warmup + 1:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup - 1))
    final = float(config["lr_final"])
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
