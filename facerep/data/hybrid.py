"""One indexable dataset over several sources, for the hybrid sampler and collate."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from facerep.common.errors import DataError
from facerep.data.augment import Augment
from facerep.data.collate import Collate
from facerep.data.sampler import HybridBatchSampler

log = logging.getLogger(__name__)


class HybridDataset(torch.utils.data.Dataset):
    """The concatenation of named sources (unlabelled photo collections and labelled sets).

    Global index i maps to source k = the one whose range holds i. Every sample gets ``source`` = k (its
    position in `names`), and its ``identity`` stays local; `identity_offsets` gives each source's offset
    in the shared label space (sources in order, each after the previous ones' identities), used by
    `collate`.

    Indexing accepts an int or ``(index, seed)`` (as the sampler yields): the seed drives the sample's
    random augmentation, so draws are reproducible across workers and resumes.

    Args:
        sources: {name: FaceDataset} (order kept) or a sequence of datasets.
        augment: applied to every sample when given (training).
    """

    def __init__(self, sources: Mapping[str, Any] | Sequence[Any], augment: Augment | None = None) -> None:
        if isinstance(sources, Mapping):
            self.names = [str(n) for n in sources]
            self.sources = list(sources.values())
        else:
            self.sources = list(sources)
            self.names = [f"source{k}" for k in range(len(self.sources))]
        if not self.sources:
            raise ValueError("HybridDataset needs at least one source")
        self.augment = augment
        self.cumulative: list[int] = []
        total = 0
        for src in self.sources:
            total += len(src)
            self.cumulative.append(total)
        self.identity_offsets: dict[int, int] = {}
        offset = 0
        for k, src in enumerate(self.sources):
            self.identity_offsets[k] = offset
            offset += (max(src.identities) + 1) if len(src.identities) else 0
        self.num_identities = offset

    def __len__(self) -> int:
        return self.cumulative[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (source position, index within that source)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        k = bisect.bisect_right(self.cumulative, index)
        return k, index - (self.cumulative[k - 1] if k else 0)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = (key, None) if isinstance(key, int) else (int(key[0]), int(key[1]))
        k, local = self.locate(index)
        sample = dict(self.sources[k][local])
        sample["source"] = k
        if self.augment is not None:
            gen = None
            if seed is not None:
                gen = torch.Generator()
                gen.manual_seed(seed)
            sample = self.augment(sample, gen)
        return sample

    @property
    def identities(self) -> list[int]:
        """Global identity of every index (local identity + its source's offset)."""
        out: list[int] = []
        for k, src in enumerate(self.sources):
            out.extend(int(i) + self.identity_offsets[k] for i in src.identities)
        return out

    @property
    def labelled(self) -> list[bool]:
        """Per index: True where the source is 3DMM-labelled."""
        out: list[bool] = []
        for src in self.sources:
            out.extend([bool(getattr(src, "labelled", False))] * len(src))
        return out

    def skipped(self) -> dict[str, list[str]]:
        """{source name: skipped sample descriptions} for sources built with ``on_bad_sample: skip``."""
        return {n: list(getattr(s, "skipped", [])) for n, s in zip(self.names, self.sources, strict=True)}

    def collate(self) -> Collate:
        """The DataLoader ``collate_fn`` with this dataset's identity offsets."""
        return Collate(self.identity_offsets)

    def sampler(
        self,
        identities_per_batch: int = 8,
        photos_per_identity: int = 4,
        labelled_pairs: int = 8,
        *,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> HybridBatchSampler:
        """A `HybridBatchSampler` over this dataset (batch sizes as in a recipe's ``data.batch``)."""
        has_unlabelled = not all(self.labelled)
        has_labelled = any(self.labelled)
        if not has_unlabelled and identities_per_batch:
            log.warning("no unlabelled source: batches hold labelled pairs only")
            identities_per_batch = 0
        if not has_labelled and labelled_pairs:
            log.warning("no labelled source: batches hold unlabelled rows only")
            labelled_pairs = 0
        return HybridBatchSampler(
            self.identities,
            self.labelled,
            identities_per_batch=identities_per_batch,
            photos_per_identity=photos_per_identity,
            labelled_pairs=labelled_pairs,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )

    def loader(
        self,
        batch: Mapping[str, int] | None = None,
        *,
        num_workers: int = 0,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        pin_memory: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.utils.data.DataLoader:
        """A DataLoader of hybrid `Batch`es; `batch` is a recipe's ``data.batch`` node
        (identities, photos_per_identity, labelled_pairs). Pass a private `generator` so that creating
        an iterator (which seeds the workers) does not draw from the global torch RNG."""
        batch = dict(batch or {})
        unknown = set(batch) - {"identities", "photos_per_identity", "labelled_pairs"}
        if unknown:
            raise DataError(f"data.batch has unknown keys {sorted(unknown)}")
        sampler = self.sampler(
            batch.get("identities", 8),
            batch.get("photos_per_identity", 4),
            batch.get("labelled_pairs", 8),
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )
        return torch.utils.data.DataLoader(
            self,
            batch_sampler=sampler,
            num_workers=num_workers,
            collate_fn=self.collate(),
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            generator=generator,
        )
