"""The run directory's safety rules: one run at a time, no mixing with an old run, the recipe kept honest.

- `RunLock`: an exclusive lock on ``<out>/.facerep.lock`` for the whole run; a second run into the same
  folder stops naming the holder. The lock is a kernel ``flock``, released when its process ends however
  it ends, so the file a killed run leaves behind is simply taken over.
- `previous_outputs`: what an earlier run left (checkpoints, metrics, samples, TensorBoard events, curves);
  a fresh run refuses such a folder rather than mixing its steps with the old ones.
- `recipe_changes`: the leaves that differ between the recipe a run folder was trained with and the one
  about to be used, as readable lines (a resume refuses a changed recipe unless told otherwise).
- `trim_metrics`: on resume, drop the metric records of steps after the checkpoint, and lines a kill cut
  short, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from facerep.common.errors import FacerepError
from facerep.core.recipe import Recipe, flatten

LOCK_NAME = ".facerep.lock"
#: What a run writes besides its recipe files; a fresh run refuses a folder holding any of them.
RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "samples", "tensorboard", "curves.png")

Warn = Callable[[str], None]


# -- the lock ------------------------------------------------------------------------------------------


class RunLock:
    """Hold ``<out>/.facerep.lock`` (an exclusive, non-blocking ``flock``) while a run writes into `out`.

    Entering raises `FacerepError` naming the holder (pid, host, start time) when another process holds
    it. A lock file left by a process that died is not held by anyone and is taken over (with a note
    through `warn`). Where the filesystem cannot lock, the run goes on with a warning.
    """

    def __init__(self, out: Path, warn: Warn) -> None:
        self.path = out / LOCK_NAME
        self.warn = warn
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: nothing to hold
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise FacerepError(
                    f"cannot write to the run directory: {self.path}: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe_holder(_read_fd(fd))
                os.close(fd)
                raise FacerepError(
                    f"{self.path.parent} is in use by another facerep run ({holder}; lock file {self.path}): "
                    "wait for it to finish, or choose another --out"
                ) from None
            except OSError as exc:
                os.close(fd)
                self.warn(
                    f"cannot lock {self.path} ({exc.strerror}); make sure no other run uses this folder"
                )
                return self
            try:  # the holder may have released and removed the file between our open and flock
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_fd(fd)
        if previous.strip():
            self.warn(f"took over the lock of a run that is no longer running ({_describe_holder(previous)})")
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # while still held, so no one locks a removed file
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _describe_holder(text: str) -> str:
    try:
        record = json.loads(text)
        return f"pid {record['pid']} on {record['host']}, since {record['started']}"
    except (ValueError, TypeError, KeyError):
        return "holder unknown"


# -- what a fresh run refuses ------------------------------------------------------------------------------


def previous_outputs(out: Path) -> list[str]:
    """The names in `RUN_OUTPUTS` that `out` holds (non-empty folders, files)."""
    found = []
    for name in RUN_OUTPUTS:
        path = out / name
        if (path.is_dir() and any(path.iterdir())) or path.is_file():
            found.append(name)
    return found


def check_recipe_file_is_not_overwritten(recipe: Recipe, out: Path) -> None:
    """Refuse when ``<out>/recipe.yaml`` is the recipe file given (or one it extends) and writing the
    resolved recipe there would change it: the user's own file is never replaced."""
    target = out / "recipe.yaml"
    if not target.is_file():
        return
    sources = {p.resolve() for p in (recipe.source, *recipe.chain)}
    if target.resolve() not in sources:
        return
    try:
        same = target.read_text(encoding="utf-8") == recipe.to_yaml()
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        raise FacerepError(
            f"{target} is the recipe you passed (or one it extends), and a run writes its resolved recipe "
            f"to <out>/recipe.yaml: train into another folder, e.g. --out {out / 'run'} "
            "(nothing was changed)"
        )


# -- the recipe a resume compares -----------------------------------------------------------------------


def _plain(data: Any) -> Any:
    """JSON-normal form (tuples as lists, keys as strings), as checkpoints store recipes."""
    return json.loads(json.dumps(data, default=str))


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def recipe_changes(before: Mapping[str, Any], after: Mapping[str, Any], limit: int = 12) -> list[str]:
    """One line per leaf that differs, ``key: old -> new`` (``(absent)`` for a key on one side only);
    at most `limit` lines and a count of the rest. Empty when the recipes are the same."""
    old, new = flatten(_plain(dict(before))), flatten(_plain(dict(after)))
    lines = []
    for key in sorted(set(old) | set(new)):
        a = _show(old[key]) if key in old else "(absent)"
        b = _show(new[key]) if key in new else "(absent)"
        if key not in old or key not in new or old[key] != new[key]:
            lines.append(f"{key}: {a} -> {b}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def set_aside(path: Path, name: str) -> Path:
    """Rename `path` to `name` in its folder (``-1``, ``-2`` ... before the suffix if taken); the new path."""
    target = path.with_name(name)
    stem, dot, suffix = name.rpartition(".")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{stem}-{n}.{suffix}" if dot else f"{name}-{n}")
    os.replace(path, target)
    return target


# -- files ----------------------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (a symlink at `path`
    is replaced, never followed; a kill leaves the old file or the new one, not half of one). A failure
    (no permission, a full disk, a folder in the way) is a `FacerepError` naming `path`; nothing is left."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise FacerepError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


_TEMPORARY = re.compile(r"^\.(recipe\.yaml|recipe\.origins\.yaml|plugins\.json|metrics\.jsonl)\..+\.tmp$")


def remove_temporary_files(out: Path) -> list[Path]:
    """Delete the temporary files `write_atomically` leaves in `out` when its process is killed mid-write."""
    stale = [p for p in out.iterdir() if _TEMPORARY.match(p.name) and p.is_file()] if out.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def trim_metrics(path: Path, through_step: int, warn: Warn) -> None:
    """Keep the records of steps <= `through_step` in a ``metrics.jsonl`` (all of them dropped when it is
    negative). A line that is not a JSON record (the last one cut short by a kill, or a damaged one) is
    dropped with a warning naming its line."""
    if path.exists() and not path.is_file():
        raise FacerepError(f"{path} is not a file; move it aside to resume")
    if not path.is_file():
        return
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    kept = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            what = "cut short (the run was stopped while writing it)" if number == len(lines) else "damaged"
            warn(f"{path}:{number}: not a JSON record, {what}; dropped")
            continue
        step = record.get("step", 0)
        if not isinstance(step, int | float) or step <= through_step:
            kept.append(line)
    write_atomically(path, "".join(line + "\n" for line in kept))
