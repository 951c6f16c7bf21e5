"""The run's metric records: one JSON line each in ``metrics.jsonl``, their numbers also to TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends records to ``<out>/metrics.jsonl`` (and TensorBoard when opened); a no-op when not `enabled`
    (the processes of a data-parallel run other than the first)."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path = out / "metrics.jsonl"
        self.enabled = enabled
        self.tensorboard: Any = None

    def open_tensorboard(self, folder: Path, purge_step: int | None = None) -> None:
        """Log to TensorBoard in `folder` too (unless tensorboard is not installed); on resume,
        `purge_step` hides the events an interrupted run logged after its checkpoint."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed: metrics.jsonl only
            return
        self.tensorboard = SummaryWriter(str(folder), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` (it holds ``step``); its numbers other than step and epoch go to TensorBoard."""
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.tensorboard.add_scalar(key, value, record["step"])
