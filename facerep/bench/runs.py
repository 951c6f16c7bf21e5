"""Trained runs as benchmark models: a thin adapter over `facerep.train.run.load_run`, and what every
benchmark reads from its run objects (a loaded run or a hand-made stand-in): unique display names
(`run_names`), the device they compute on (`model_device`), and where each comes from (`run_checkpoints`,
`run_records`, the tables' provenance).

The protocols (`facerep.bench.protocols`) need ``encode``, ``decode_shape``, ``neutral_expression``,
``face_model`` and ``image_size`` on one object; a `LoadedRun` keeps the first two on its ``model``.
The neutral expression code is the one the trainer stored in the checkpoint (key
``neutral_expression``: the mean expression code of the most neutral labelled training images; zeros
for checkpoints without it), see `facerep.train.run.load_run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from facerep.core.types import Codes


class BenchModel:
    """A loaded run seen through the protocols' interface.

    Attributes:
        name: the run's name (its directory name).
        path: the run directory.
        checkpoint: the checkpoint file's name (shown in the tables).
        face_model, image_size, neutral_expression: from the run.
        model: the composed network (eval mode).
        recipe: the run's resolved recipe.
    """

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.name = str(loaded.name)
        self.path = Path(loaded.path)
        self.checkpoint = Path(loaded.checkpoint).name
        self.face_model = loaded.face_model
        self.image_size = int(loaded.image_size)
        self.neutral_expression = loaded.neutral_expression
        self.model = loaded.model
        self.recipe = loaded.recipe

    def encode(self, images: Tensor) -> Codes:
        """(B, 3, H, W) in [0, 1] -> Codes."""
        return self.model.encode(images)

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) mm."""
        return self.model.decode_shape(identity, expression)


def load_bench_models(paths: Sequence[str | Path], device: str = "cpu") -> list[BenchModel]:
    """Load every run directory (raises `CheckpointError` naming the path of one without a checkpoint)."""
    from facerep.train.run import load_run

    return [BenchModel(load_run(p, device=device)) for p in paths]


def run_names(runs: Sequence[Any]) -> list[str]:
    """Each run's ``name`` (``runN``, 1-based, for one without), made unique by ``#N`` (its 1-based position)
    where two share a name: the rows and files of a benchmark are keyed by these."""
    names = [str(getattr(m, "name", None) or f"run{i + 1}") for i, m in enumerate(runs)]
    if len(set(names)) != len(names):
        names = [f"{n}#{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    return names


def model_device(model: Any) -> torch.device:
    """The device of the first parameter of ``model.model`` (a `BenchModel`'s network) or of `model` itself
    when it is a module; the CPU for an object with neither (a hand-made stand-in)."""
    module = getattr(model, "model", model)
    if isinstance(module, torch.nn.Module):
        for p in module.parameters():
            return p.device
    return torch.device("cpu")


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
