"""``facerep bench --benchmark aflw2000 | verification``: build the benchmark plugin by name and run it.

Without ``--data`` the benchmark scores the synthetic world of the first run's recipe (its preset and
seed), as the MICC tables do; the world's ``aflw2000/`` or ``verification/`` folder is written into the
cached world on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from facerep.cli.bench_cmd import print_written, recipe_world, world_data_root
from facerep.common.errors import DataError, FacerepError
from facerep.core.recipe import BUILTIN_ROOT

#: Benchmark -> the CLI options it takes (the others are refused when set).
PLUGIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "aflw2000": ("limit", "baselines"),
    "verification": ("pairs", "flip", "baselines"),
}
OPTION_FLAGS = {"limit": "--max-images", "pairs": "--pairs", "flip": "--flip"}


def check_plugin_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options `name` takes, from `options`; a `FacerepError` for one it does not take or a bad value."""
    if name not in PLUGIN_OPTIONS:
        raise FacerepError(f"--benchmark {name!r}: choose micc, {', '.join(PLUGIN_OPTIONS)}")
    for key, flag in OPTION_FLAGS.items():
        if options.get(key) not in (None, False) and key not in PLUGIN_OPTIONS[name]:
            raise FacerepError(f"{flag} does not apply to the {name} benchmark")
    limit = options.get("limit")
    if limit is not None and int(limit) < 1:
        raise FacerepError(f"--max-images must be at least 1 (or left out for every image), got {limit}")
    return {k: options[k] for k in PLUGIN_OPTIONS[name] if options.get(k) is not None}


def check_data(name: str, path: Path, options: dict[str, Any]) -> None:
    """Refuse missing or malformed data before any run is loaded (a `DataError` naming the file)."""
    if not path.exists():
        raise DataError(f"--data: {name} data not found: {path}")
    if name == "verification":
        from facerep.bench.pairs import load_pairs

        load_pairs(path, options.get("pairs"))
    elif not path.is_dir() or not any(path.glob("*.mat")):
        raise DataError(f"--data: {path} is not an AFLW2000-3D folder (imageNNNNN.jpg + imageNNNNN.mat)")


def run_plugin_benchmark(
    name: str,
    runs: list[Path],
    path: str | None,
    out: Path,
    options: dict[str, Any],
    *,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict[str, Any]:
    """Load `runs`, build the ``benchmark`` plugin `name` and run it on `path` (None: the synthetic world)."""
    from facerep.apps.bench_models import load_bench_models
    from facerep.core.registry import get_registry

    kwargs = check_plugin_options(name, options)
    if path is not None:
        check_data(name, Path(path).expanduser(), kwargs)
    console = Console()
    models = load_bench_models(runs, device=device)
    world = recipe_world(models, console) if path is None else None
    kwargs["root"] = BUILTIN_ROOT if path is None else str(Path(path).expanduser())
    benchmark = get_registry().build("benchmark", {"type": name, "batch_size": batch_size, **kwargs})
    root = world_data_root(benchmark, *world) if world is not None else None
    result = benchmark.run(models, out, console=console, data_root=root)
    print_written(result, out, console)
    return result
