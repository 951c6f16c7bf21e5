"""Hybrid batches (paper, section 4): P identities x K photos of unlabelled rows + B_l labelled pairs.

Every batch holds, in this order:

1. ``P * K`` unlabelled rows: P distinct identities, K different photos each, grouped by identity (so
   the centre loss sees several photos of one person);
2. ``2 * B_l`` labelled rows: B_l pairs, partners adjacent (rows u, u+1), for the pairwise shape loss.

An epoch is one pass over the unlabelled photos: each identity's photos are shuffled and cut into groups
of K (a remainder smaller than K waits for a later epoch; an identity with fewer than K photos gives one
group with repeats), groups are shuffled and packed into batches of P distinct identities. Labelled rows
come from an endless stream of shuffled passes over the labelled samples. With no unlabelled samples the
epoch is one pass over the labelled ones.

Distributed semantics: the batch sizes are those of the *global* batch. Every rank builds the same global
plan from (seed, epoch) and takes its shard of every global batch: identity groups ``rank, rank +
world_size, ...`` and labelled pairs ``rank, rank + world_size, ...`` (so P and B_l must be multiples of the
world size). Every rank runs every step, each row of a global batch goes to exactly one rank with the
augmentation seed it has in a single process, and a data-parallel run sees the same rows per step as a
single process with the same recipe. Call `set_epoch` before each epoch. The sampler runs in the main
process, so it works with any ``num_workers``. `state_dict` / `load_state_dict` resume exactly in the middle
of an epoch.

Each yielded element is ``(index, seed)`` by default: the dataset index and a 63-bit seed for that row's
random augmentation (`facerep.data.hybrid.HybridDataset` accepts these), so a resumed run draws the same
augmentations; with ``with_seeds=False`` plain indices are yielded.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch


def _dist_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if ready else 1
    if rank is None:
        rank = dist.get_rank() if ready else 0
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
    return int(num_replicas), int(rank)


class HybridBatchSampler(torch.utils.data.Sampler):
    """Yields hybrid batches of dataset indices (see the module docstring).

    Args:
        identities: (n,) identity of every dataset index (any integers; only equality matters).
        labelled: (n,) True for 3DMM-labelled indices.
        identities_per_batch: P, distinct identities of unlabelled rows per batch (0: none).
        photos_per_identity: K, photos per identity.
        labelled_pairs: B_l, labelled pairs per batch (0: none).
        num_replicas, rank: distributed world size and this process's rank (default: from
            torch.distributed when initialised, else 1 and 0).
        seed: base seed; every rank must use the same one.
        with_seeds: yield ``(index, augmentation seed)`` pairs instead of plain indices.
    """

    def __init__(
        self,
        identities: Sequence[int],
        labelled: Sequence[bool],
        *,
        identities_per_batch: int = 8,
        photos_per_identity: int = 4,
        labelled_pairs: int = 8,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        with_seeds: bool = True,
    ) -> None:
        if len(identities) != len(labelled):
            raise ValueError(
                f"identities ({len(identities)}) and labelled ({len(labelled)}) differ in length"
            )
        self.P, self.K, self.B_l = int(identities_per_batch), int(photos_per_identity), int(labelled_pairs)
        if self.P < 0 or self.K < 1 or self.B_l < 0 or self.P + self.B_l == 0:
            raise ValueError(
                f"bad batch sizes: identities {self.P}, photos_per_identity {self.K}, "
                f"labelled_pairs {self.B_l}"
            )
        self.num_replicas, self.rank = _dist_defaults(num_replicas, rank)
        for name, count in (("identities_per_batch", self.P), ("labelled_pairs", self.B_l)):
            if count % self.num_replicas:
                raise ValueError(
                    f"{name} = {count} is not a multiple of the {self.num_replicas} processes: the batch "
                    "sizes are global and every process takes an equal share of each batch"
                )
        self.seed = int(seed)
        self.with_seeds = bool(with_seeds)
        flags = np.asarray(labelled, dtype=bool)
        ids = np.asarray(identities)
        self._labelled = np.flatnonzero(flags)
        groups: dict[Any, list[int]] = defaultdict(list)
        for i in np.flatnonzero(~flags):
            groups[ids[i].item()].append(int(i))
        self._groups = [np.asarray(groups[k], dtype=np.int64) for k in sorted(groups)]
        if self.P > 0 and len(self._groups) < self.P:
            raise ValueError(
                f"a batch needs {self.P} distinct unlabelled identities but the data has {len(self._groups)}"
            )
        if self.P > 0 and not self._groups and self.B_l == 0:
            raise ValueError("no unlabelled samples to draw from")
        if self.B_l > 0 and len(self._labelled) < 2:
            raise ValueError(f"labelled pairs need at least 2 labelled samples, found {len(self._labelled)}")
        self.epoch = 0
        self._start = 0  # batches of this rank's share already done in `epoch`
        self._yielded = 0
        self._iteration_start = 0
        self._plan_cache: tuple[int, list[np.ndarray]] | None = None

    # -- the plan -----------------------------------------------------------------------------------

    def _unlabelled_batches(self, epoch: int) -> list[np.ndarray]:
        if self.P == 0 or not self._groups:
            return []
        rng = np.random.default_rng([self.seed, epoch, 0])
        chunks: list[tuple[int, np.ndarray]] = []
        keys: list[tuple[int, float]] = []
        for gid, photos in enumerate(self._groups):
            order = rng.permutation(photos)
            if len(order) < self.K:
                order = np.concatenate([order, rng.choice(order, self.K - len(order))])
            m = len(order) // self.K
            for c in range(m):
                chunks.append((gid, order[c * self.K : (c + 1) * self.K]))
                keys.append((c - m, 0.0))  # rounds counted from the end: identities with many groups first
        tie = rng.random(len(chunks))
        sequence = sorted(range(len(chunks)), key=lambda i: (keys[i][0], tie[i]))
        batches: list[np.ndarray] = []
        current: list[np.ndarray] = []
        used: set[int] = set()
        deferred: deque[int] = deque()

        def place(i: int) -> bool:
            gid, chunk = chunks[i]
            if gid in used:
                return False
            current.append(chunk)
            used.add(gid)
            if len(current) == self.P:
                batches.append(np.concatenate(current))
                current.clear()
                used.clear()
            return True

        def drain() -> bool:
            progress = False
            for _ in range(len(deferred)):
                i = deferred.popleft()
                if place(i):
                    progress = True
                else:
                    deferred.append(i)
            return progress

        for i in sequence:
            if not place(i):
                deferred.append(i)
            elif not current:
                drain()
        while deferred and drain():
            pass
        order = rng.permutation(len(batches))
        return [batches[j] for j in order]

    def _labelled_rows(self, epoch: int, batch: int) -> np.ndarray:
        """The 2 B_l labelled rows of global batch `batch`: a window of an endless shuffled stream."""
        n, per = len(self._labelled), 2 * self.B_l
        start, out = batch * per, []
        while per > 0:
            cycle, offset = divmod(start, n)
            perm = np.random.default_rng([self.seed, epoch, 1, cycle]).permutation(self._labelled)
            take = perm[offset : offset + per]
            out.append(take)
            per -= len(take)
            start += len(take)
        return np.concatenate(out)

    def global_plan(self, epoch: int) -> list[np.ndarray]:
        """The global batches of `epoch`, in order (every rank runs a shard of each, `shard_positions`)."""
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1]
        unl = self._unlabelled_batches(epoch)
        count = len(unl) if self.P > 0 and self._groups else len(self._labelled) // (2 * self.B_l)
        plan = []
        for b in range(count):
            parts = [unl[b]] if unl else []
            if self.B_l > 0:
                parts.append(self._labelled_rows(epoch, b))
            plan.append(np.concatenate(parts).astype(np.int64))
        self._plan_cache = (epoch, plan)
        return plan

    def shard_positions(self, rank: int | None = None) -> np.ndarray:
        """Positions in a global batch of a rank's rows (default: this rank's): its identity groups, then
        its labelled pairs."""
        n, r = self.num_replicas, self.rank if rank is None else int(rank)
        unlabelled = self.P * self.K if (self.P > 0 and self._groups) else 0
        groups = [np.arange(j * self.K, (j + 1) * self.K) for j in range(r, self.P, n)] if unlabelled else []
        pairs = [unlabelled + np.arange(2 * q, 2 * q + 2) for q in range(r, self.B_l, n)]
        parts = groups + pairs
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    # -- Sampler protocol ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list]:
        epoch, start = self.epoch, self._start
        plan = self.global_plan(epoch)
        positions = self.shard_positions()
        self._yielded = self._iteration_start = start
        for g in range(start, len(plan)):
            self._yielded += 1
            rows = plan[g][positions]
            if self.with_seeds:
                sequence = np.random.SeedSequence([self.seed, epoch, g, 2])
                seeds = sequence.generate_state(len(plan[g]), np.uint64)[positions]
                yield [(int(i), int(s >> np.uint64(1))) for i, s in zip(rows, seeds, strict=True)]
            else:
                yield [int(i) for i in rows]
        if self.epoch == epoch:
            self._start = 0  # a finished epoch does not resume in the middle

    def __len__(self) -> int:
        """Batches the next iteration yields (the epoch's global batches, minus a resumed prefix)."""
        return max(0, len(self.global_plan(self.epoch)) - self._start)

    @property
    def batch_size(self) -> int:
        """Rows per batch on this rank (the global batch divided by the number of processes)."""
        return (self.P * self.K + 2 * self.B_l) // self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next iteration yields (as DistributedSampler.set_epoch)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._start = 0

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, int]:
        """Where this rank stands: epoch and batches done in it.

        With ``num_workers > 0`` the DataLoader fetches batches ahead of the training loop, so pass the
        number of batches the loop has consumed from the current iteration (the DataLoader's iterator);
        without it the number yielded so far is used.
        """
        done = self._yielded if batches_consumed is None else self._iteration_start + batches_consumed
        return {
            "epoch": self.epoch,
            "batches_done": int(done),
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next iteration yields the rest of ``state['epoch']`` after its done batches."""
        if int(state.get("seed", self.seed)) != self.seed:
            raise ValueError(f"sampler state has seed {state['seed']} but this sampler uses {self.seed}")
        if int(state.get("num_replicas", self.num_replicas)) != self.num_replicas:
            raise ValueError(
                f"sampler state is for {state['num_replicas']} ranks but this run has {self.num_replicas}"
            )
        self.epoch = int(state["epoch"])
        self._start = int(state["batches_done"])
        self._yielded = self._start
        self._iteration_start = self._start
