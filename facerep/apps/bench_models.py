"""Trained runs as benchmark models: a thin adapter over `facerep.train.run.load_run` that gives each
benchmark plugin (`facerep.core.interfaces.Benchmark`) what it reads from a run.

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

    @property
    def reads_landmarks(self) -> bool:
        """True when the run's encoder reads the crop's 68 landmarks (`encode` then needs them)."""
        return bool(self.model.reads_landmarks)

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        """(B, 3, H, W) in [0, 1] (and their (B, 68, 2) landmarks in pixels of those images) -> Codes."""
        return self.model.encode(images, landmarks)

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) mm."""
        return self.model.decode_shape(identity, expression)


def load_bench_models(paths: Sequence[str | Path], device: str = "cpu") -> list[BenchModel]:
    """Load every run directory (raises `CheckpointError` naming the path of one without a checkpoint)."""
    from facerep.train.run import load_run

    return [BenchModel(load_run(p, device=device)) for p in paths]
