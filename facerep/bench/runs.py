"""What every benchmark reads from its run objects (a trained run loaded by
`facerep.apps.bench_models.load_bench_models`, or a hand-made stand-in): unique display names
(`run_names`), the device they compute on (`model_device`), and where each comes from (`run_checkpoints`,
`run_records`, the tables' provenance).

The protocols (`facerep.bench.protocols`) need ``encode``, ``decode_shape``, ``neutral_expression``,
``face_model`` and ``image_size`` on one object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def run_names(runs: Sequence[Any]) -> list[str]:
    """Each run's ``name`` (``runN``, 1-based, for one without), made unique by ``#N`` (its 1-based position)
    where two share a name: the rows and files of a benchmark are keyed by these."""
    names = [str(getattr(m, "name", None) or f"run{i + 1}") for i, m in enumerate(runs)]
    if len(set(names)) != len(names):
        names = [f"{n}#{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    return names


def model_device(model: Any) -> torch.device:
    """The device of the first parameter of ``model.model`` (a loaded run's network,
    `facerep.apps.bench_models.BenchModel`) or of `model` itself when it is a module; the CPU for an object
    with neither (a hand-made stand-in)."""
    module = getattr(model, "model", model)
    if isinstance(module, torch.nn.Module):
        for p in module.parameters():
            return p.device
    return torch.device("cpu")


def reads_landmarks(model: Any) -> bool:
    """True when a run's encoder reads the crop's 68 landmarks (its ``reads_landmarks``; False for an
    object without one): its ``encode`` then needs ``landmarks`` (`facerep.core.interfaces.Encoder`)."""
    return bool(getattr(model, "reads_landmarks", False))


def run_checkpoints(runs: Sequence[Any], names: Sequence[str]) -> dict[str, str]:
    """Run name (`run_names`) -> its checkpoint file's name ("" for a run object without one)."""
    return {n: str(getattr(m, "checkpoint", "") or "") for m, n in zip(runs, names, strict=True)}


def run_records(runs: Sequence[Any], names: Sequence[str]) -> list[dict[str, str]]:
    """The tables' ``runs`` entry: per run its ``name``, folder (``path``, "" when unknown) and
    ``checkpoint`` file name, in run order."""
    checkpoints = run_checkpoints(runs, names)
    return [
        {"name": n, "path": str(getattr(m, "path", "") or ""), "checkpoint": checkpoints[n]}
        for m, n in zip(runs, names, strict=True)
    ]
