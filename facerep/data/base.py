"""Shared machinery of the image datasets: bad-sample policy, crops, sample assembly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerep.common.errors import DataError
from facerep.core.interfaces import FaceDataset
from facerep.data.imagefile import center_box, crop_resize, landmark_box
from facerep.data.sidecars import hull_mask

log = logging.getLogger(__name__)

BAD_SAMPLE_POLICIES = ("error", "skip")
CROPS = ("center", "landmarks")


class ImageFaceDataset(FaceDataset):
    """Base of the datasets: keeps `skipped`, applies the bad-sample policy, crops and resizes.

    Subclasses fill ``self.identities`` (contiguous local ids 0..n-1) while indexing and implement
    ``_load(i) -> dict`` returning raw parts (``image`` PIL RGB, ``landmarks`` (68, 2) px in that image,
    optional ``mask`` (H, W) float, ``identity``, ``sample_id`` and any extra keys); `__getitem__` crops.

    With ``on_bad_sample="skip"`` a sample that fails while indexing is left out and recorded in
    ``skipped`` (``"path: reason"``); one that fails to decode later is replaced by the next good sample
    of the same identity (recorded too, in the process that loaded it, and logged as a warning).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        on_bad_sample: str = "error",
        crop: str = "center",
        crop_scale: float = 1.7,
    ) -> None:
        if on_bad_sample not in BAD_SAMPLE_POLICIES:
            raise DataError(f"on_bad_sample must be one of {BAD_SAMPLE_POLICIES}, got {on_bad_sample!r}")
        if crop not in CROPS:
            raise DataError(f"crop must be one of {CROPS}, got {crop!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found")
        self.image_size = int(image_size)
        self.on_bad_sample = on_bad_sample
        self.crop = crop
        self.crop_scale = float(crop_scale)
        self.skipped: list[str] = []
        self.identities: list[int] = []

    # -- policy -------------------------------------------------------------------------------------

    def bad(self, error: DataError | str) -> None:
        """Record a bad sample (skip policy) or raise it (error policy)."""
        message = str(error)
        if self.on_bad_sample == "error":
            raise error if isinstance(error, DataError) else DataError(message)
        self.skipped.append(message)
        log.warning("skipping bad sample: %s", message)

    def report_skipped(self) -> str:
        """One line: how many samples were skipped, and the first few."""
        if not self.skipped:
            return f"{type(self).__name__} at {self.root}: no sample skipped"
        head = "; ".join(self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
        return f"{type(self).__name__} at {self.root}: skipped {len(self.skipped)} bad sample(s): {head}"

    # -- samples ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.identities)

    def _load(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _same_identity(self, index: int) -> Sequence[int]:
        ident = self.identities[index]
        n = len(self.identities)
        return [j for j in (*range(index + 1, n), *range(index)) if self.identities[j] == ident]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        try:
            return self._finish(self._load(index))
        except DataError as exc:
            if self.on_bad_sample == "error":
                raise
            self.bad(exc)
            for j in self._same_identity(index):
                try:
                    sample = self._finish(self._load(j))
                except DataError as again:
                    self.bad(again)
                    continue
                sample["replaces"] = str(exc)
                return sample
            raise DataError(f"{exc} (and no other sample of its identity could be read)") from exc

    def _finish(self, raw: dict[str, Any]) -> dict[str, Any]:
        image = raw.pop("image")
        landmarks = np.asarray(raw.pop("landmarks"), dtype=np.float32)
        mask = raw.pop("mask", None)
        if mask is None:
            mask = hull_mask(landmarks, image.size)
        if self.crop == "landmarks":
            box = landmark_box(landmarks, self.crop_scale)
        else:
            box = center_box(*image.size)
        img, lm, m = crop_resize(image, box, self.image_size, landmarks, mask)
        out: dict[str, Any] = {"image": img, "mask": m, "landmarks": lm}
        for key, value in raw.items():
            out[key] = torch.from_numpy(value) if isinstance(value, np.ndarray) else value
        return out


def contiguous_ids(keys: Sequence[Any]) -> tuple[list[int], list[Any]]:
    """Map arbitrary identity keys to 0..n-1 in sorted key order -> (ids, sorted unique keys)."""
    unique = sorted(set(keys))
    lookup = {k: i for i, k in enumerate(unique)}
    return [lookup[k] for k in keys], unique
