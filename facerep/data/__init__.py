"""Data: sidecar formats, MJPEG streams, augmentation, hybrid batching, and the synthetic world generator.

Dataset readers are plugins under `facerep.plugins.datasets`; this package holds what they share and what
the training engine uses: `HybridDataset` (sources -> one index space), `HybridBatchSampler`,
`collate_samples` / `Collate`, `Augment`, and `ensure_world` (the cached synthetic world).
"""

from __future__ import annotations

from facerep.data.augment import IBUG_FLIP, Augment, hflip, rescale
from facerep.data.collate import Collate, collate_samples
from facerep.data.hybrid import HybridDataset
from facerep.data.sampler import HybridBatchSampler
from facerep.data.world import ensure_world, source_root, write_world

__all__ = [
    "IBUG_FLIP",
    "Augment",
    "Collate",
    "HybridBatchSampler",
    "HybridDataset",
    "collate_samples",
    "ensure_world",
    "hflip",
    "rescale",
    "source_root",
    "write_world",
]
