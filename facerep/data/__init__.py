"""Data: sidecar formats, MJPEG streams, augmentation and hybrid batching.

Dataset readers are plugins under `facerep.plugins.datasets` (the MICC reader, which the MICC benchmark
shares, is `facerep.data.micc`); this package holds what they share and what the training uses:
`HybridDataset` (sources -> one index space), `HybridBatchSampler`, `collate_samples` / `Collate` and
`Augment`. The synthetic world generator is `facerep.world`.
"""

from __future__ import annotations

from facerep.data.augment import Augment, hflip, rescale
from facerep.data.collate import Collate, collate_samples
from facerep.data.hybrid import HybridDataset
from facerep.data.sampler import HybridBatchSampler

__all__ = [
    "Augment",
    "Collate",
    "HybridBatchSampler",
    "HybridDataset",
    "collate_samples",
    "hflip",
    "rescale",
]
