"""ROC AUC, equal error rate and TAR at FAR on hand-computed score lists."""

from __future__ import annotations

import numpy as np
import pytest

from facerep.bench.roc import equal_error_rate, roc_auc, roc_curve, tar_at_far


def test_perfect_separation() -> None:
    pos, neg = [0.9, 0.8, 0.7], [0.1, 0.2, 0.3, 0.4]
    assert roc_auc(pos, neg) == 1.0
    assert equal_error_rate(pos, neg) == 0.0


def test_reversed_scores() -> None:
    pos, neg = [0.1, 0.2], [0.8, 0.9, 0.95]
    assert roc_auc(pos, neg) == 0.0
    assert equal_error_rate(pos, neg) == 1.0


def test_hand_computed_mixed_list() -> None:
    pos, neg = [0.9, 0.6, 0.4], [0.5, 0.3, 0.2, 0.1]
    # pairs (pos, neg) with pos > neg: 0.9 beats 4, 0.6 beats 4, 0.4 beats 3 -> 11 of 12
    assert roc_auc(pos, neg) == pytest.approx(11 / 12)
    # threshold 0.5: FAR 1/4, FRR 1/3; threshold 0.4: FAR 1/4, FRR 0 -> the rates cross at FAR = 1/4
    assert equal_error_rate(pos, neg) == pytest.approx(0.25)
    curve = roc_curve(pos, neg)
    assert curve.thresholds[0] == np.inf and curve.thresholds[-1] == -np.inf
    assert (curve.far[0], curve.tar[0], curve.far[-1], curve.tar[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)


def test_eer_interpolates_between_thresholds() -> None:
    # threshold 0.8: FAR 0, FRR 1/3; threshold 0.7: FAR 1/2, FRR 1/3. FAR - FRR goes from -1/3 to 1/6,
    # crossing zero two thirds of the way: EER = 2/3 x 1/2 = 1/3
    assert equal_error_rate([0.9, 0.8, 0.3], [0.7, 0.2]) == pytest.approx(1 / 3)
    # the rates meet exactly at a threshold: threshold 0.4 gives FAR 1/2 and FRR 1/2
    assert equal_error_rate([0.5, 0.3], [0.4, 0.2]) == pytest.approx(0.5)


def test_ties_count_one_half() -> None:
    assert roc_auc([0.5, 0.5], [0.5]) == pytest.approx(0.5)
    assert roc_auc([0.7, 0.5], [0.5, 0.1]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_tar_at_far() -> None:
    neg = np.arange(100) / 100.0  # 0.00 .. 0.99
    pos = np.array([0.995, 0.985, 0.975, 0.5])
    # FAR 1e-2 of 100 negatives: one may pass; the threshold is the second-highest negative (0.98)
    assert tar_at_far(pos, neg, 1e-2) == pytest.approx(2 / 4)
    assert tar_at_far(pos, neg, 1e-1) == pytest.approx(3 / 4)  # threshold 0.89
    assert tar_at_far(pos, neg, 1e-3) is None  # fewer than 1,000 negatives
    thousand = np.arange(1000) / 1000.0  # one of 1,000 may pass: the threshold is 0.998
    assert tar_at_far([0.9985, 0.9995, 0.998, 0.5], thousand, 1e-3) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="far must be in"):
        tar_at_far(pos, neg, 0.0)


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="no positive"):
        roc_auc([], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0.1, float("nan")], [0.2])
