"""The cached synthetic world: generated once per (preset, seed), atomically, then reused.

``ensure_world(preset, seed)`` returns ``cache_dir()/world/<preset>-<seed>/`` holding ``celeba/``,
``300w_lp/``, ``micc/``, ``aflw2000/`` and ``verification/`` (see `facerep.world.synth`); worlds cached
before the last two existed get them from `ensure_world_part` (written in place, the rest untouched).
Generation writes into a temporary sibling folder
and renames it into place when complete, so an interrupted run never leaves a half world; a file lock
makes concurrent processes (e.g. DDP ranks) wait for one generator instead of all generating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from facerep.common.errors import DataError
from facerep.common.paths import cache_dir
from facerep.world.synth import WORLD_FORMAT, WORLD_PARTS, WorldPreset, generate_world, get_preset


def source_root(world: str | Path, dataset_type: str) -> Path:
    """The folder of `world` that the registered dataset `dataset_type` reads: the `world_part` its class
    declares (`facerep.core.interfaces.FaceDataset`); KeyError for a type that declares none."""
    from facerep.core.registry import get_registry

    parts = {
        comp.name: part
        for comp in get_registry().components("dataset")
        if (part := getattr(comp.factory, "world_part", None)) in WORLD_PARTS
    }
    if dataset_type not in parts:
        raise KeyError(f"the synthetic world holds {sorted(parts)}, not {dataset_type!r}")
    return Path(world) / parts[dataset_type]


def _complete(path: Path) -> bool:
    info = path / "world.json"
    if not info.is_file():
        return False
    try:
        return json.loads(info.read_text())["generator"]["format"] == WORLD_FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still protects
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _progress_bar(total: int, title: str):  # noqa: ANN202 - (context manager, advance callback)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=False)  # fmt: skip
    task = bar.add_task(title, total=total)
    return bar, lambda n: bar.advance(task, n)


def write_world(
    out: str | Path,
    preset: str | WorldPreset = "demo",
    seed: int = 0,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Generate the world into `out` atomically (temp folder + rename). Returns `out`.

    An existing complete world at `out` is kept unless `force`; any other existing, non-empty `out` is
    an error unless `force` (then it is replaced).
    """
    out = Path(out).expanduser().resolve()
    spec = get_preset(preset)
    if out.exists() and any(out.iterdir()) and not force:
        if _complete(out):
            return out
        raise DataError(f"{out}: exists and is not an empty folder (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if progress:
            bar, advance = _progress_bar(spec.total_images, f"synthetic world {spec.name} (seed {seed})")
            with bar:
                generate_world(tmp, spec, seed, progress=advance)
        else:
            generate_world(tmp, spec, seed)
        if out.exists():
            trash = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


#: Preset sizes a recipe may change (``data.world.<key>``): the training sets only, so that a world's
#: evaluation set (MICC subjects, scans, videos) is the same bytes as its preset's.
TRAINING_SIZES = ("identities", "photos_per_identity", "labelled_sources", "views_per_source")


def world_spec(preset: str, sizes: dict[str, int] | None = None) -> WorldPreset:
    """The preset `preset` with training-set `sizes` changed (KeyError / ValueError on bad ones)."""
    spec = get_preset(preset)
    for key, value in (sizes or {}).items():
        if key not in TRAINING_SIZES:
            raise KeyError(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"data.world.{key} must be a positive integer, got {value!r}")
    return dataclasses.replace(spec, **(sizes or {}))


def world_dir(
    preset: str, seed: int, root: str | Path | None = None, sizes: dict[str, int] | None = None
) -> Path:
    """Where the cached world lives: ``root or cache_dir()/world`` / ``preset-seed`` (plus the changed
    sizes, e.g. ``demo-0-labelled_sources4000``)."""
    base = Path(root) if root is not None else cache_dir() / "world"
    suffix = "".join(f"-{k}{int(v)}" for k, v in sorted((sizes or {}).items()))
    return base / f"{preset}-{int(seed)}{suffix}"


def ensure_world(
    preset: str,
    seed: int,
    root: str | Path | None = None,
    *,
    progress: bool = True,
    sizes: dict[str, int] | None = None,
) -> Path:
    """The cached synthetic world of (preset, seed, sizes), generated (with a progress bar) when missing.

    `sizes` changes the preset's training-set sizes (`TRAINING_SIZES`); the evaluation set is the
    preset's own (the same generator streams), so benchmarks score every such world alike.
    """
    spec = world_spec(preset, sizes)
    path = world_dir(preset, seed, root, sizes)
    if _complete(path):
        return path
    with _lock(path.with_name(f".{path.name}.lock")):
        if _complete(path):  # another process finished it while we waited
            return path
        return write_world(path, spec, seed, force=True, progress=progress)


def ensure_world_part(preset: str, seed: int, part: str, root: str | Path | None = None) -> Path:
    """The folder `part` (a `facerep.world.synth.WORLD_PARTS` key) of the cached world of (preset, seed).

    A world cached before that folder existed gets it written in place (into a temporary sibling, then
    renamed, under the world's lock); the world's other folders are left as they are, so runs training
    on them are unaffected. The folder's bytes are those a fresh world would have (its own random stream).
    """
    if part not in WORLD_PARTS:
        raise DataError(f"the synthetic world has no {part!r} folder; it has {', '.join(WORLD_PARTS)}")
    world = ensure_world(preset, seed, root)
    target = world / part
    if target.is_dir():
        return target
    with _lock(world.with_name(f".{world.name}.lock")):
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{part}.tmp-", dir=world))
        try:
            generate_world(tmp, get_preset(preset), seed, parts=(part,))
            (tmp / part).rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
