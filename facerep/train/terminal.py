"""What a training run shows on the terminal (stderr, through rich): notes, warnings, the progress bar
(stage, step, ETA, images/s, held-out error, running losses) and the closing summary.

Only the first process of a data-parallel run speaks; ``--quiet`` silences all but the warnings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from facerep.common.errors import literal


def _console(quiet: bool) -> Any:
    from rich.console import Console

    return Console(quiet=quiet, stderr=True)


class Terminal:
    """The run's terminal output.

    Args:
        quiet: no notes, progress or summary (``--quiet``).
        is_main: False in the other processes of a data-parallel run (silent, warnings included).
    """

    def __init__(self, quiet: bool, is_main: bool) -> None:
        self.console = _console(quiet or not is_main)
        self._warnings = _console(not is_main)  # shown even with --quiet

    def warn(self, message: str) -> None:
        """``warning: <message>`` (yellow), even with ``--quiet``."""
        from rich.markup import escape

        self._warnings.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """A plain line (resuming from ..., starting from scratch, ...)."""
        from rich.markup import escape

        self.console.print(escape(message), highlight=False, soft_wrap=True)

    def notice(self, message: str) -> None:
        """A yellow line about something that did not stop the run (skipped samples, a missing plot)."""
        self.console.print(f"[yellow]{literal(message)}[/]")

    def progress(self, title: str, total: int) -> Progress:
        """The progress bar of one stage (a context manager yielding its `Bar`)."""
        return Progress(self.console, title, total)

    def summary(
        self,
        out: Path,
        last_checkpoint: Path | None,
        validation: dict[str, float] | None,
        heldout_images: int,
    ) -> None:
        """The closing lines: the run folder, its last checkpoint, metrics and samples, the last held-out
        figures (`validation`, on `heldout_images` images) and the command to benchmark it."""
        self.console.print(f"[bold green]done[/]: run directory {literal(out)}")
        if last_checkpoint is not None:
            self.console.print(f"  last checkpoint: {literal(last_checkpoint)}")
        shown = literal(out)
        self.console.print(f"  metrics: {shown}/metrics.jsonl   samples: {shown}/samples")
        if validation is not None:
            v = validation
            self.console.print(
                f"  held-out shape error {v['val/shape_mm']:.3f} mm; "
                f"mean face {v['val/mean_face_mm']:.3f} mm "
                f"({v['val/ratio']:.3f}x; {heldout_images} images of identities never trained on); "
                f"landmark NME {v['val/landmark_nme']:.2f}%   curves: {literal(out / 'curves.png')}"
            )
        self.console.print(f"  next: [bold]facerep bench {literal(out)}[/]")


class Bar:
    """One stage's bar: advanced per step, showing images/s and the running losses (nothing when quiet)."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task
        self.validation = ""  # the last held-out figures, shown before the losses

    def advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress.advance(self.task, n)

    def update_losses(self, record: dict[str, Any]) -> None:
        if self.progress is None:
            return
        parts = [
            f"{k.split('/', 1)[1]} {v:.3g}"
            for k, v in record.items()
            if k.startswith("loss/") and math.isfinite(v)
        ]
        rate = record.get("images_per_s")
        text = (f"{rate:.1f} img/s  " if rate is not None else "") + "  ".join(parts[:6])
        self.progress.update(self.task, losses=self.validation + text)

    def update_validation(self, metrics: dict[str, float]) -> None:
        """Show the last held-out shape error (and the mean face's) in front of the losses."""
        self.validation = f"val {metrics['val/shape_mm']:.3f}/{metrics['val/mean_face_mm']:.3f} mm  "
        if self.progress is not None:
            self.progress.update(self.task, losses=self.validation)


class Progress:
    """A rich progress bar (stage, step, ETA, images/s, running losses); silent when quiet."""

    def __init__(self, console: Any, title: str, total: int) -> None:
        self.console, self.title, self.total = console, title, total
        self._progress = None

    def __enter__(self) -> Bar:
        if self.console.quiet:
            return Bar(None, None)
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
        )
        self._progress.__enter__()
        task = self._progress.add_task(self.title, total=self.total, losses="")
        return Bar(self._progress, task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
