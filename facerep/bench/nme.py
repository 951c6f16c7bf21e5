"""Landmark error normalised by the face box (NME) and its summary by yaw bin: the AFLW2000-3D table.

The 3DDFA protocol (Zhu et al., CVPR 2016; followed by PRNet, 3DDFA_V2 and others): the error of one
image is the mean Euclidean distance over the 68 landmarks between prediction and ground truth, divided
by sqrt(w * h) of the ground truth's bounding box (the x / y extents of its 68 points). Images are
grouped by the absolute ground-truth yaw into [0, 30), [30, 60) and [60, 90] degrees (yaws beyond 90,
which a few AFLW2000-3D labels have, count in the last bin); the field's headline "mean" is the mean of
the three bin means (the *balanced* figure), reported beside the plain mean over all images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: (low, high) absolute yaw in degrees of each bin; the last bin is closed and takes everything above.
YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
BIN_NAMES: tuple[str, ...] = ("[0,30)", "[30,60)", "[60,90]")


def box_size(landmarks: np.ndarray) -> float:
    """sqrt(w * h) of the bounding box of (68, 2) points (pixels)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"landmarks must be (K, 2), got shape {pts.shape}")
    w, h = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    return float(np.sqrt(w * h))


def nme(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean point-to-point distance between (68, 2) `prediction` and `truth`, over `box_size(truth)`.

    A fraction (multiply by 100 for the percentages papers print).
    """
    pred = np.asarray(prediction, dtype=np.float64)
    gt = np.asarray(truth, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and truth {gt.shape} landmarks differ in shape")
    size = box_size(gt)
    if not size > 0:
        raise ValueError("the ground-truth landmarks have an empty bounding box")
    return float(np.linalg.norm(pred - gt, axis=1).mean() / size)


def yaw_bin(yaw_degrees: float) -> int:
    """Index into `YAW_BINS` of a yaw (degrees, either sign): |yaw| < 30 -> 0, < 60 -> 1, else 2."""
    yaw = abs(float(yaw_degrees))
    if not np.isfinite(yaw):
        raise ValueError(f"yaw {yaw_degrees!r} is not finite")
    for index, (_, high) in enumerate(YAW_BINS[:-1]):
        if yaw < high:
            return index
    return len(YAW_BINS) - 1


@dataclass
class NmeSummary:
    """NME of one method over a set of images, by yaw bin.

    Attributes:
        bins: mean NME per bin (`BIN_NAMES` order), None for an empty bin.
        counts: images per bin.
        balanced: mean of the three bin means (None when a bin is empty).
        overall: mean over all images.
        std: population std of the per-image NMEs.
        n: images scored.
    """

    bins: list[float | None]
    counts: list[int]
    balanced: float | None
    overall: float | None
    std: float | None
    n: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarise_nme(errors: Sequence[float], yaws_degrees: Sequence[float]) -> NmeSummary:
    """Bin the per-image NMEs `errors` by the matching ground-truth yaws (degrees)."""
    err = np.asarray(errors, dtype=np.float64)
    if err.shape != (len(yaws_degrees),):
        raise ValueError(f"{err.size} errors for {len(yaws_degrees)} yaws")
    bins = np.array([yaw_bin(y) for y in yaws_degrees], dtype=int)
    means: list[float | None] = []
    counts: list[int] = []
    for index in range(len(YAW_BINS)):
        chosen = err[bins == index]
        counts.append(int(chosen.size))
        means.append(float(chosen.mean()) if chosen.size else None)
    balanced = None if any(m is None for m in means) else float(np.mean([m for m in means if m is not None]))
    if err.size == 0:
        return NmeSummary(means, counts, None, None, None, 0)
    return NmeSummary(means, counts, balanced, float(err.mean()), float(err.std()), int(err.size))
