"""Verification metrics from pair scores: ROC curve, area under it, equal error rate, TAR at a FAR.

Scores are similarities (higher = more likely the same identity); a pair is accepted when its score is
at least the threshold. `positives` are the same-identity pairs' scores, `negatives` the others'.

- ROC AUC is the Mann-Whitney statistic: the probability that a random positive outscores a random
  negative, ties counting one half.
- The equal error rate is where the false accept rate (FAR, negatives accepted) equals the false reject
  rate (FRR, positives rejected), interpolated linearly between the thresholds on either side.
- TAR at FAR f: the share of positives scoring strictly above the (k+1)-th highest negative, with
  k = floor(f * negatives), so that at most a fraction f of the negatives is accepted. It is defined only
  when there are at least 1 / f negatives (`tar_at_far` returns None otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def _scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"no {name} scores")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the {name} scores contain NaN or infinite values")
    return arr


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos * n_neg)), in [0, 1]."""
    pos, neg = _scores(positives, "positive"), _scores(negatives, "negative")
    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks for ties: ties count one half
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


@dataclass
class RocCurve:
    """FAR and TAR at every threshold, from accepting nothing to accepting everything.

    Attributes:
        thresholds: (T,) descending; the first is +inf (nothing accepted), the last -inf.
        far: (T,) false accept rate (share of negatives with score >= threshold), ascending.
        tar: (T,) true accept rate (share of positives with score >= threshold), ascending.
    """

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray


def roc_curve(positives: Sequence[float], negatives: Sequence[float]) -> RocCurve:
    """The ROC curve at every distinct score (see `RocCurve`)."""
    pos, neg = _scores(positives, "positive"), _scores(negatives, "negative")
    cuts = np.unique(np.concatenate([pos, neg]))[::-1]
    thresholds = np.concatenate([[np.inf], cuts, [-np.inf]])
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    # share with score >= t = 1 - (count strictly below t) / n
    tar = 1.0 - np.searchsorted(pos_sorted, thresholds, side="left") / pos.size
    far = 1.0 - np.searchsorted(neg_sorted, thresholds, side="left") / neg.size
    return RocCurve(thresholds, far, tar)


def equal_error_rate(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The rate at which FAR = FRR (= 1 - TAR), linearly interpolated on the ROC curve."""
    curve = roc_curve(positives, negatives)
    far, frr = curve.far, 1.0 - curve.tar
    diff = far - frr  # rises from -1 (nothing accepted) to +1 (everything accepted)
    index = int(np.argmax(diff >= 0.0))
    if diff[index] == 0.0 or index == 0:
        return float(far[index])
    d0, d1 = diff[index - 1], diff[index]
    weight = d0 / (d0 - d1)
    return float(far[index - 1] + weight * (far[index] - far[index - 1]))


def tar_at_far(positives: Sequence[float], negatives: Sequence[float], far: float) -> float | None:
    """True accept rate at false accept rate `far` (see the module docstring); None with < 1/far negatives."""
    if not 0.0 < far < 1.0:
        raise ValueError(f"far must be in (0, 1), got {far}")
    pos, neg = _scores(positives, "positive"), _scores(negatives, "negative")
    if neg.size * far < 1.0 - 1e-9:
        return None
    allowed = int(np.floor(far * neg.size + 1e-9))
    threshold = np.sort(neg)[::-1][allowed]
    return float(np.mean(pos > threshold))
