"""What the benchmark plugins (`facerep.plugins.benchmarks`) share beyond their runs (for those, see
`facerep.bench.runs`): where a benchmark's data is (`resolve_data_root`) and its progress bar
(`progress_bar`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from facerep.common.errors import DataError
from facerep.core.recipe import BUILTIN_ROOT


def resolve_data_root(
    root: str | Path, what: str, *, data_root: str | Path | None = None, folder: bool = True
) -> Path:
    """A benchmark's data: the `data_root` its caller passed (`facerep.core.interfaces.Benchmark.run`), else
    `root` itself.

    Args:
        root: the benchmark's ``root`` argument: a path (``~`` expanded) or ``builtin`` (the synthetic
            world, whose folder the caller makes and passes as `data_root`).
        what: what `root` should be, for the error: ``{path}: {what} not found``.
        data_root: the caller's data, taken as it is.
        folder: `root` must be a folder (False: any existing path, e.g. a pairs file).

    Raises:
        DataError: `root` does not exist (or is not a folder where `folder`), or is ``builtin`` without
            a `data_root`.
    """
    if data_root is not None:
        return Path(data_root)
    if str(root) == BUILTIN_ROOT:
        raise DataError(
            f"root {BUILTIN_ROOT!r} is the synthetic world's {what}, which a benchmark does not make: its "
            "caller passes that folder as data_root (`facerep bench` does)"
        )
    path = Path(root).expanduser()
    if not (path.is_dir() if folder else path.exists()):
        raise DataError(f"{path}: {what} not found")
    return path


def progress_bar(title: str, console: Console, enabled: bool = True) -> Progress:
    """A benchmark's rich progress bar: ``TITLE description``, the bar, done / total and the elapsed time
    (nothing shown when not `enabled`). Use as a context manager."""
    columns = (
        TextColumn(f"[bold]{title}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, disable=not enabled)
