"""Held-out identities: split a labelled source so that validation identities are never trained on.

`split_identities(dataset, count, seed)` picks `count` identities of a source (a seeded draw, the same
for every stage and process of a run) and returns two `IdentitySubset` views: the training view without
any image of those identities, and the held-out view with all of them. Both keep the source's contract
(``identities`` contiguous from 0, ``labelled``, ``skipped``), so the hybrid sampler and the loaders
never see a held-out image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facerep.core.interfaces import FaceDataset
from facerep.data.base import contiguous_ids


class IdentitySubset(FaceDataset):
    """The samples of `base` at `indices`, identities renumbered 0..n-1 (order of first appearance kept).

    Args:
        base: a `FaceDataset`.
        indices: positions in `base` (ascending).
    """

    def __init__(self, base: Any, indices: Sequence[int]) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]
        self.identities, self.base_identities = contiguous_ids(
            [int(base.identities[i]) for i in self.indices]
        )
        self.labelled = bool(getattr(base, "labelled", False))  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        sample = dict(self.base[self.indices[index]])
        sample["identity"] = self.identities[index]
        return sample

    def labels(self, index: int) -> dict[str, Any]:
        """The labels of sample `index` of this view (`FaceDataset.labels`), identity renumbered."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        labels = dict(self.base.labels(self.indices[index]))
        labels["identity"] = self.identities[index]
        return labels

    @property
    def skipped(self) -> list[str]:
        return list(getattr(self.base, "skipped", []))

    def __getattr__(self, name: str) -> Any:  # root, meta, image_size ... of the wrapped source
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def split_identities(dataset: Any, count: int, seed: int = 0) -> tuple[IdentitySubset, IdentitySubset]:
    """(training view, held-out view) of `dataset`, holding out `count` of its identities.

    Raises ValueError when `count` is not in [1, number of identities - 1].
    """
    ids = np.asarray(dataset.identities, dtype=np.int64)
    unique = np.unique(ids)
    count = int(count)
    if not 1 <= count < unique.size:
        raise ValueError(
            f"cannot hold out {count} of the source's {unique.size} identities "
            f"(choose between 1 and {unique.size - 1})"
        )
    chosen = np.random.default_rng([int(seed), 7]).choice(unique, size=count, replace=False)
    held = np.isin(ids, chosen)
    positions = np.arange(ids.size)
    return IdentitySubset(dataset, positions[~held]), IdentitySubset(dataset, positions[held])
