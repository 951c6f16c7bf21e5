"""What the benchmark plugins (`facerep.plugins.benchmarks`) share beyond their runs (for those, see
`facerep.bench.runs`): where a benchmark's data is (`resolve_data_root`) and its progress bar
(`progress_bar`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from facerep.common.errors import DataError


def resolve_data_root(
    root: str | Path, part: str, what: str, *, preset: str = "demo", seed: int = 0, folder: bool = True
) -> Path:
    """A benchmark's data: `root` itself, or for ``builtin`` the synthetic world's `part` folder (written
    into the cached world of (`preset`, `seed`) when it lacks one, `facerep.world.cache.ensure_world_part`).

    Args:
        root: a path (``~`` expanded) or ``builtin``.
        part: the world's folder (a `facerep.world.synth.WORLD_PARTS` key), e.g. ``aflw2000``.
        what: what `root` should be, for the error: ``{path}: {what} not found``.
        folder: `root` must be a folder (False: any existing path, e.g. a pairs file).

    Raises:
        DataError: `root` does not exist (or is not a folder where `folder`).
    """
    if str(root) != "builtin":
        path = Path(root).expanduser()
        if not (path.is_dir() if folder else path.exists()):
            raise DataError(f"{path}: {what} not found")
        return path
    from facerep.world.cache import ensure_world_part

    return ensure_world_part(preset, seed, part)


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
