"""Checkpoints: safetensors tensors + JSON metadata, written atomically, the last K kept.

A checkpoint is one ``.safetensors`` file. Tensors are stored under prefixed keys:

- ``model.*``, ``critic.*``, ``losses.<role>.*``: module state dicts;
- ``optim.<role>.<param index>.<state key>``: optimizer tensors (step counts, Adam moments, ...);
- ``rng.torch``: the CPU torch RNG state, ``rng.cuda.<i>`` per CUDA device;
- ``neutral_expression``: (D_exp,) the expression code decoded as "neutral" by benchmarks.

The safetensors metadata (str -> str) holds one JSON document under ``facerep``: stage, step, epoch,
sampler state, optimizer param groups, python and numpy RNG states, the resolved recipe, plugin versions,
``num_identities`` (the identity classes of the training data: what `facerep.train.run.load_run` puts in
the build context, so no loading code reads a loss's parameters to learn it).
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from facerep.common.errors import CheckpointError

_NAME = re.compile(r"^step-(\d+)\.safetensors$")
_TEMPORARY = re.compile(r"^\.(debug-)?step-\d+\.safetensors\..+\.tmp$")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header

#: Metadata every checkpoint the trainer writes holds (`load_checkpoint` refuses a file without them).
REQUIRED_META = ("stage", "stage_name", "step", "epoch", "stage_step", "epoch_step", "recipe", "classes")


@dataclass
class CheckpointData:
    """What a checkpoint holds, in memory."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.`` with the prefix removed (a module's state dict)."""
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def optimizer_to_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (safetensors) and JSON-able parts."""
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, data: CheckpointData, prefix: str, meta: dict) -> None:
    """Restore an optimizer saved by `optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in data.section(prefix).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The process's RNG states: (tensors, JSON-able)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    return tensors, meta


def restore_rng_state(data: CheckpointData, meta: dict[str, Any]) -> None:
    torch.set_rng_state(data.tensors["rng.torch"])
    cuda = sorted(k for k in data.tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([data.tensors[k] for k in cuda])
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(path: Path, data: CheckpointData) -> Path:
    """Write atomically: a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in data.tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"facerep": json.dumps(data.meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def remove_temporary_files(directory: Path) -> list[Path]:
    """Delete the temporary files `save_checkpoint` leaves when its process is killed mid-write."""
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if _TEMPORARY.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class UnreadableCheckpointError(CheckpointError):
    """A checkpoint file that cannot be used; `reason` says what it is instead."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"unreadable checkpoint {path}: {reason}")


def read_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's facerep metadata, read without its tensors, after checking the file is a whole
    safetensors file written by facerep. Raises `UnreadableCheckpointError` saying what the file is
    instead (empty, truncated, not a safetensors file, another program's safetensors file, metadata
    without the keys the trainer writes)."""
    if path.exists() and not path.is_file():  # a folder, a pipe: never opened (a pipe would block)
        raise UnreadableCheckpointError(path, "not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else 0
            header_bytes = handle.read(min(length, _MAX_HEADER)) if 0 < length <= size - 8 else b""
    except OSError as exc:
        raise UnreadableCheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None

    def bad(reason: str) -> CheckpointError:
        return UnreadableCheckpointError(path, reason)

    if size == 0:
        raise bad("empty file (0 bytes)")
    if head.startswith(b"PK\x03\x04"):
        raise bad("a zip archive (a torch.save file?), not a safetensors checkpoint")
    if size < 8:
        raise bad(f"{size} bytes, too short for a safetensors file")
    if length > size - 8 or length > _MAX_HEADER:
        with open(path, "rb") as handle:
            handle.seek(8)
            starts_like_header = handle.read(2) == b'{"'
        if starts_like_header:
            raise bad(f"truncated: its header alone needs {length} bytes, the file ends after {size - 8}")
        raise bad(
            f"not a safetensors file: its first 8 bytes announce a {length}-byte header, the file has {size}"
        )
    header = _safetensors_header(header_bytes, bad)
    try:
        data_end = max(
            (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
            default=0,
        )
    except (TypeError, KeyError, IndexError, ValueError):
        raise bad("not a safetensors file: a tensor entry of its header has no data offsets") from None
    if 8 + length + data_end > size:
        raise bad(f"truncated: {size} bytes of the {8 + length + data_end} its header lists")
    return _facerep_meta(header, bad)


def _safetensors_header(header_bytes: bytes, bad: Callable[[str], CheckpointError]) -> dict[str, Any]:
    """The JSON header of a safetensors file (`bad(reason)` is raised when it is not one)."""
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("not a safetensors file: its header is not a JSON object")
    return header


def _facerep_meta(header: dict[str, Any], bad: Callable[[str], CheckpointError]) -> dict[str, Any]:
    """The facerep metadata of a safetensors header, checked for what the trainer writes (`REQUIRED_META`
    and their types; `bad(reason)` is raised otherwise)."""
    raw = (header.get("__metadata__") or {}).get("facerep")
    if raw is None:
        raise bad("not a facerep checkpoint: a safetensors file without facerep metadata")
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        raise bad("its facerep metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise bad("its facerep metadata is not a JSON object")
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise bad(f"its facerep metadata lacks {', '.join(missing)} (not written by the trainer?)")
    for key in ("stage", "step", "epoch", "stage_step", "epoch_step"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"its metadata {key} = {value!r} is not a whole number >= 0")
    if not isinstance(meta["recipe"], dict) or not isinstance(meta["classes"], dict):
        raise bad("its metadata recipe or classes is not a mapping")
    if not isinstance(meta["stage_name"], str) or not isinstance(meta.get("stage_complete", ""), str):
        raise bad("its metadata stage_name or stage_complete is not a string")
    return meta


def load_checkpoint(path: Path) -> CheckpointData:
    """Read a checkpoint; a missing or unreadable file raises `CheckpointError` naming it and the reason."""
    if not path.exists():
        if path.is_symlink():
            raise UnreadableCheckpointError(path, "a link to a missing file")
        raise CheckpointError(f"checkpoint not found: {path}")
    meta = read_meta(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UnreadableCheckpointError(path, str(exc)) from None
    return CheckpointData(tensors, meta)


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load a module's state dict from a checkpoint section.

    Missing or unexpected keys and shape mismatches raise `CheckpointError` naming `where` (the
    checkpoint file and the component) and the first few keys concerned.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} in the checkpoint, {tuple(own[k].shape)} in the model"
        for k in own
        if k in state and hasattr(own[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if shapes:
        problems.append("shapes differ: " + _few(shapes))
    if missing:
        problems.append("missing " + _few(missing))
    if unexpected:
        problems.append("unexpected " + _few(unexpected))
    if problems:
        raise CheckpointError(
            f"{where} does not match the model the recipe builds ({'; '.join(problems)}); "
            "was it trained with another recipe?"
        )
    module.load_state_dict(state)


def _few(items: list[str], n: int = 3) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}.safetensors"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first (by global step)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


@dataclass
class Latest:
    """The newest readable checkpoint of a folder and the newer ones skipped as unreadable.

    Attributes:
        path: the checkpoint loaded (None when no file was readable or there was none).
        data: its contents.
        skipped: (file, reason) for each newer checkpoint that could not be read, newest first.
    """

    path: Path | None
    data: CheckpointData | None
    skipped: list[tuple[Path, str]]


def find_latest(directory: Path) -> Latest:
    """Read checkpoints newest first until one loads; record why each one before it did not."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(directory)):
        try:
            return Latest(path, load_checkpoint(path), skipped)
        except CheckpointError as exc:
            skipped.append((path, getattr(exc, "reason", str(exc))))
    return Latest(None, None, skipped)


def load_latest(directory: Path, warn: Any = None) -> tuple[Path, CheckpointData] | None:
    """The newest readable checkpoint, or None when `directory` holds none at all.

    Each newer checkpoint skipped is reported through `warn(message)` (the file and why it was skipped,
    and the one used instead). When checkpoints exist but none is readable, `CheckpointError` lists each
    file and the reason.
    """
    latest = find_latest(directory)
    if latest.path is None:
        if latest.skipped:
            raise CheckpointError(
                f"no readable checkpoint in {directory}: "
                + "; ".join(f"{p.name}: {reason}" for p, reason in latest.skipped)
            )
        return None
    if warn is not None:
        for path, reason in latest.skipped:
            warn(f"skipped checkpoint {path} ({reason}); using the older {latest.path.name}")
    return latest.path, latest.data
