"""Where the 68 iBUG landmarks sit on the procedural face, and which landmark mirrors which.

The synthetic face model snaps these positions to its mesh; face-model files that define only some
landmarks get the others from this layout (`facerep.data.face_model_assembly`).
"""

from __future__ import annotations

import numpy as np

from facerep.geometry.procedural_face import FACE_A, FACE_B, NOSE_TIP_Y, mean_shape

#: iBUG-68 landmark positions in surface parameters (x, y) mm for the subject's right half (x <= 0)
#: and the midline; the left half mirrors them (see `IBUG_MIRROR`).
IBUG_RIGHT: dict[int, tuple[float, float]] = {
    # nose bridge and tip (midline)
    27: (0.0, 24.0),
    28: (0.0, 7.0),
    29: (0.0, -9.0),
    30: (0.0, -25.0),
    33: (0.0, -35.0),
    # nose base
    31: (-13.0, -30.0),
    32: (-7.0, -33.5),
    # right brow, outer to inner
    17: (-50.0, 37.0),
    18: (-42.0, 41.0),
    19: (-33.0, 43.0),
    20: (-24.0, 42.0),
    21: (-15.0, 39.0),
    # right eye: outer corner, upper lid, inner corner, lower lid
    36: (-44.0, 20.0),
    37: (-37.0, 24.0),
    38: (-27.0, 24.0),
    39: (-20.0, 20.0),
    40: (-27.0, 16.5),
    41: (-37.0, 16.5),
    # outer lips
    48: (-25.0, -50.0),
    49: (-15.0, -45.0),
    50: (-6.0, -43.0),
    51: (0.0, -44.0),
    57: (0.0, -60.5),
    58: (-7.0, -59.5),
    59: (-16.0, -56.5),
    # inner lips
    60: (-21.0, -50.0),
    61: (-8.0, -48.5),
    62: (0.0, -48.5),
    66: (0.0, -51.5),
    67: (-8.0, -51.5),
}
#: iBUG-68 left-right correspondence (landmark k mirrors to landmark IBUG_MIRROR[k]).
IBUG_MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]  # jaw
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]  # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65],  # inner lips
    dtype=np.int64,
)


def jaw_points() -> dict[int, tuple[float, float]]:
    """Jaw contour 0..8 (subject's right side to the chin) on the ellipse at 93% of the rim."""
    out = {}
    for k in range(9):
        phi = np.radians(-100.0 + k * 100.0 / 8.0)  # -100 deg (ear level) .. 0 (chin)
        out[k] = (0.93 * FACE_A * float(np.sin(phi)), -0.93 * FACE_B * float(np.cos(phi)))
    return out


def ibug_layout() -> tuple[np.ndarray, np.ndarray]:
    """The procedural face's 68 landmark positions (68, 3) mm relative to its nose tip, and the mirror map."""
    xy = np.zeros((68, 2))
    targets = {**jaw_points(), **IBUG_RIGHT}
    for k in range(68):
        if k in targets:
            xy[k] = targets[k]
    for k in range(68):
        if k not in targets:
            xy[k] = xy[IBUG_MIRROR[k]] * np.array([-1.0, 1.0])
    pts = mean_shape(xy[:, 0], xy[:, 1])
    tip = mean_shape(np.zeros(1), np.full(1, NOSE_TIP_Y))[0]
    return pts - tip, IBUG_MIRROR
