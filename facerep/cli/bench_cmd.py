"""``facerep bench RUN [RUN ...]``: MICC Florence Tables 1 and 2 for trained runs and baselines, and the
other benchmarks (``--benchmark aflw2000 | verification``, see `facerep.cli.bench_plugins`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from facerep.cli.options import device_option
from facerep.common.errors import DataError, FacerepError, literal
from facerep.core.recipe import BUILTIN_ROOT

PROTOCOL_CHOICES = {
    "identity": ["identity"],
    "three_views": ["three_views"],
    "both": ["identity", "three_views"],
}


#: Benchmark name -> what its --data PATH is.
BENCHMARK_DATA: dict[str, str] = {
    "micc": "MICC folder",
    "aflw2000": "AFLW2000-3D folder",
    "verification": "LFW-layout folder (pairs.txt + lfw/), pairs file or folder of identity folders",
}


def parse_data(spec: str | None, default: str = "micc") -> tuple[str, str | None]:
    """``NAME:PATH`` (or a bare PATH, for the `default` benchmark) -> (NAME, PATH); None -> (default, None)
    for the synthetic world."""
    if spec is None:
        return default, None
    name, sep, path = spec.partition(":")
    if not sep or len(name) <= 1:  # a bare path (or a Windows drive letter)
        return default, spec
    if name not in BENCHMARK_DATA:
        raise FacerepError(
            f"--data {spec!r}: unknown benchmark {name!r}; the available ones are "
            f"{', '.join(BENCHMARK_DATA)} (NAME:PATH)"
        )
    if not path:
        raise FacerepError(f"--data {spec!r}: give the {BENCHMARK_DATA[name]} after '{name}:'")
    return name, path


def bench(
    runs: list[Path] = typer.Argument(..., help="Run directories (each with checkpoints/)."),
    data: str = typer.Option(
        None, "--data", help="micc:PATH of a MICC Florence root; default: the run recipe's synthetic world."
    ),
    out: Path = typer.Option(Path("bench"), "--out", help="Folder for tables, per-subject CSV, error maps."),
    protocol: str = typer.Option("both", "--protocol", help="identity | three_views | both."),
    statistic: str = typer.Option("mean", "--statistic", help="mean (the paper's) or rmse."),
    direction: str = typer.Option(
        "pred_to_scan", "--direction", help="pred_to_scan | scan_to_pred | symmetric point-to-plane."
    ),
    max_frames: int = typer.Option(None, "--max-frames", help="At most this many frames per video."),
    error_maps: int = typer.Option(3, "--error-maps", help="Subjects that get error-map PNGs."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Mean face and linear 3DMM fit."),
    batch_size: int = typer.Option(32, "--batch-size", help="Frames per forward pass."),
    device: str = device_option(),
    strict: bool = typer.Option(
        False, "--strict", help="micc: a missing or unreadable video is an error (default: skipped, counted)."
    ),
    benchmark: str = typer.Option(
        None, "--benchmark", help="micc (default) | aflw2000 | verification; or the NAME of --data NAME:PATH."
    ),
    pairs: str = typer.Option(
        None, "--pairs", help="verification: a pairs file, or 'all' (every pair of the identity folders)."
    ),
    flip: bool = typer.Option(False, "--flip", help="verification: average codes with the mirrored photo's."),
    max_images: int = typer.Option(None, "--max-images", help="aflw2000: score only the first N images."),
) -> None:
    """Evaluate runs on MICC (both protocols of the paper's section 5.1) and write Tables 1 and 2; with
    --benchmark aflw2000 (68-landmark NME by yaw) or verification (same / different person) another table."""
    from facerep.apps.bench_models import load_bench_models
    from facerep.cli.options import start_device
    from facerep.core.registry import get_registry

    check_options(
        protocol=protocol,
        statistic=statistic,
        direction=direction,
        batch_size=batch_size,
        max_frames=max_frames,
        error_maps=error_maps,
    )
    name, path = parse_data(data, benchmark or "micc")
    if benchmark is not None and benchmark != name:
        if benchmark not in BENCHMARK_DATA:
            raise FacerepError(f"--benchmark {benchmark!r}: choose {', '.join(BENCHMARK_DATA)}")
        raise FacerepError(f"--benchmark {benchmark} and --data {data!r} name different benchmarks")
    device = str(start_device(device, Console(stderr=True)))  # auto: CUDA when available, else the CPU
    if name != "micc":
        from facerep.cli.bench_plugins import run_plugin_benchmark

        options = {"pairs": pairs, "flip": flip, "limit": max_images, "baselines": baselines}
        run_plugin_benchmark(name, runs, path, out, options, batch_size=batch_size, device=device)
        return
    if path is not None and not Path(path).expanduser().is_dir():
        raise DataError(f"--data: MICC folder not found: {path}")
    console = Console()
    models = load_bench_models(runs, device=device)
    world = recipe_world(models, console) if path is None else None
    node = {
        "type": "facerep:micc",
        "root": BUILTIN_ROOT if path is None else str(Path(path).expanduser()),
        "protocols": PROTOCOL_CHOICES[protocol],
        "statistic": statistic,
        "direction": direction,
        "max_frames": max_frames,
        "error_maps": error_maps,
        "baselines": baselines,
        "batch_size": batch_size,
        "strict": strict,
    }
    benchmark = get_registry().build("benchmark", node)
    root = world_data_root(benchmark, *world) if world is not None else None
    result = benchmark.run(models, out, console=console, data_root=root)
    print_written(result, out, console)


def recipe_world(models: list[Any], console: Console) -> tuple[str, int]:
    """The synthetic world (preset, seed) of the first run's recipe (``data.world``; ``demo`` and 0 where
    unset), which ``bench`` scores without ``--data``; says so on `console`."""
    recipe = models[0].recipe
    preset = str(recipe.get("data.world.preset", "demo"))
    seed = int(recipe.get("data.world.seed", 0))
    console.print(
        f"no --data: using the synthetic world (preset {literal(repr(preset))}, seed {seed}) of "
        f"{literal(models[0].name)}",
        highlight=False,
        soft_wrap=True,
    )
    return preset, seed


def world_data_root(benchmark: Any, preset: str, seed: int) -> Path:
    """The synthetic world's folder that `benchmark` scores (its ``world_part``), written into the cached
    world of (`preset`, `seed`) when missing (`facerep.world.cache.ensure_world_part`)."""
    from facerep.world.cache import ensure_world_part

    part = getattr(benchmark, "world_part", None)
    if part is None:
        raise FacerepError(
            f"the {type(benchmark).__name__} benchmark has no synthetic-world data: give --data"
        )
    return ensure_world_part(preset, seed, part)


def print_written(result: dict[str, Any], out: Path, console: Console) -> None:
    """The closing line: how many files a benchmark's `result` wrote under `out`, in how many seconds."""
    count, seconds = len(result["files"]), result["seconds"]
    console.print(
        f"wrote {count} files under {literal(out)} in {seconds:.1f} s", highlight=False, soft_wrap=True
    )


def check_options(
    *, protocol: str, statistic: str, direction: str, batch_size: int, max_frames: int | None, error_maps: int
) -> None:
    """Refuse out-of-range ``bench`` options before any model or data is loaded (one `FacerepError`)."""
    from facerep.geometry.surface_distance import DIRECTIONS, STATISTICS

    if protocol not in PROTOCOL_CHOICES:
        raise FacerepError(f"--protocol {protocol!r}: choose {', '.join(PROTOCOL_CHOICES)}")
    if statistic not in STATISTICS:
        raise FacerepError(f"--statistic {statistic!r}: choose {', '.join(STATISTICS)}")
    if direction not in DIRECTIONS:
        raise FacerepError(f"--direction {direction!r}: choose {', '.join(DIRECTIONS)}")
    if batch_size < 1:
        raise FacerepError(f"--batch-size must be at least 1 (frames per forward pass), got {batch_size}")
    if max_frames is not None and max_frames < 1:
        raise FacerepError(f"--max-frames must be at least 1 (or left out for every frame), got {max_frames}")
    if error_maps < 0:
        raise FacerepError(f"--error-maps must be 0 or more (subjects with error maps), got {error_maps}")
