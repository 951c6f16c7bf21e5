"""NME normalised by the ground-truth box, yaw bins and their summary (the AFLW2000-3D table's numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facerep.bench.landmark_layout import fit_to_box, mean_layout
from facerep.bench.nme import BIN_NAMES, box_size, nme, summarise_nme, yaw_bin


def _box_points(w: float, h: float, x0: float = 10.0, y0: float = 20.0) -> np.ndarray:
    """68 points spread over a w x h box (corners included)."""
    rng = np.random.default_rng(0)
    pts = np.column_stack([x0 + rng.uniform(0, w, 68), y0 + rng.uniform(0, h, 68)])
    pts[:4] = [(x0, y0), (x0 + w, y0), (x0, y0 + h), (x0 + w, y0 + h)]
    return pts


def test_known_offset_gives_known_nme() -> None:
    truth = _box_points(40.0, 10.0)  # sqrt(40 * 10) = 20
    assert box_size(truth) == pytest.approx(20.0)
    assert nme(truth + (3.0, 4.0), truth) == pytest.approx(5.0 / 20.0)  # every point 5 px off
    assert nme(truth, truth) == 0.0
    # half the points 10 px off, half exact: mean distance 5 px
    moved = truth.copy()
    moved[::2, 0] += 10.0
    assert nme(moved, truth) == pytest.approx(5.0 / 20.0)


def test_nme_refuses_mismatched_or_empty_boxes() -> None:
    truth = _box_points(40.0, 10.0)
    with pytest.raises(ValueError, match="differ in shape"):
        nme(truth[:67], truth)
    with pytest.raises(ValueError, match="empty bounding box"):
        nme(np.zeros((68, 2)), np.zeros((68, 2)))


@pytest.mark.parametrize(
    ("yaw", "expected"),
    [(0.0, 0), (29.999, 0), (-29.999, 0), (30.0, 1), (-30.0, 1), (59.999, 1), (60.0, 2), (-60.0, 2),
     (89.9, 2), (90.0, 2), (-97.0, 2)],
)  # fmt: skip
def test_yaw_bin_edges(yaw: float, expected: int) -> None:
    assert yaw_bin(yaw) == expected
    assert BIN_NAMES[expected] in ("[0,30)", "[30,60)", "[60,90]")


def test_yaw_bin_refuses_nan() -> None:
    with pytest.raises(ValueError, match="not finite"):
        yaw_bin(float("nan"))


def test_summary_balanced_and_overall() -> None:
    errors = [0.02, 0.04, 0.06, 0.10, 0.30]
    yaws = [5.0, -25.0, 45.0, 61.0, -80.0]
    s = summarise_nme(errors, yaws)
    assert s.counts == [2, 1, 2]
    assert s.bins == pytest.approx([0.03, 0.06, 0.20])
    assert s.balanced == pytest.approx((0.03 + 0.06 + 0.20) / 3)
    assert s.overall == pytest.approx(0.104)
    assert s.std == pytest.approx(float(np.std(errors)))
    # an empty bin: no balanced figure, the overall mean stays
    s = summarise_nme([0.1, 0.2], [10.0, 40.0])
    assert s.bins[2] is None and s.counts == [1, 1, 0] and s.balanced is None
    assert s.overall == pytest.approx(0.15)


def test_mean_layout_is_fitted_to_the_box() -> None:
    layout = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]])
    truth = np.array([[10.0, 10.0], [50.0, 10.0], [10.0, 20.0], [50.0, 20.0]])  # 40 x 10 box
    fitted = fit_to_box(layout, truth)
    scale = math.sqrt(40.0 * 10.0) / 2.0  # sqrt(w*h) ratio
    np.testing.assert_allclose(fitted[4], [30.0, 15.0])  # centre to centre
    np.testing.assert_allclose(fitted[3] - fitted[0], [2.0 * scale, 2.0 * scale])

    class Model:
        mean = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        landmarks = np.array([1, 0])

    np.testing.assert_allclose(mean_layout(Model()), [[4.0, -5.0], [1.0, -2.0]])  # y flipped: image y down
