"""Checkpoints: safetensors tensors + JSON metadata, written atomically, the last K kept.

A checkpoint is one ``.safetensors`` file. Tensors are stored under prefixed keys:

- ``model.*``, ``critic.*``, ``losses.<role>.*``: module state dicts;
- ``optim.<role>.<param index>.<state key>``: optimizer tensors (step counts, Adam moments, ...);
- ``rng.torch``: the CPU torch RNG state, ``rng.cuda.<i>`` per CUDA device;
- ``neutral_expression``: (D_exp,) the expression code decoded as "neutral" by benchmarks.

The safetensors metadata (str -> str) holds one JSON document under ``facerep``: stage, step, epoch,
sampler state, optimizer param groups, python and numpy RNG states, the resolved recipe, plugin versions.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from facerep.core.errors import CheckpointError

_NAME = re.compile(r"^step-(\d+)\.safetensors$")


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


def load_checkpoint(path: Path) -> CheckpointData:
    """Read a checkpoint; a missing or corrupt file raises `CheckpointError` naming it."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("facerep")
        meta = json.loads(raw) if raw else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"corrupt checkpoint {path}: {exc}") from None
    return CheckpointData(tensors, meta)


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


def load_latest(directory: Path, warn: Any = None) -> tuple[Path, CheckpointData] | None:
    """The newest readable checkpoint; corrupt ones are reported through `warn(message)` and skipped."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            if warn is not None:
                warn(f"{exc}; falling back to the previous checkpoint")
    return None
