"""dlib's face tools as benchmark baselines: HOG face detector, 68-point landmarks, 128-D face descriptors.

The trained networks come from the ``face-recognition-models`` package
(``shape_predictor_68_face_landmarks.dat``, ``shape_predictor_5_face_landmarks.dat``,
``dlib_face_recognition_resnet_model_v1.dat``); dlib itself from
``dlib`` / ``dlib-bin``. Both are optional: `dlib_missing` says why they cannot be used, and the
benchmarks then leave their dlib rows out with that note.

Coordinates follow facerep's convention (pixel centres at i + 0.5): dlib's points (centres at integers)
are shifted by +0.5; boxes are pixel edges (x0, y0, x1, y1), as `facerep.core.interfaces.DetectedFace`'s:
dlib's rectangle (left, top, right, bottom) covers pixels left..right, i.e. x0 = left, x1 = right + 1.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from typing import Any

import numpy as np

from facerep.common.errors import FacerepError
from facerep.data.dlib_models import DLIB_INSTALL, SHAPE_PREDICTOR, dlib_model, find_model_file, model_file

#: Role -> its ``face-recognition-models`` file (located by `facerep.data.dlib_models.find_model_file`).
MODEL_FILES: dict[str, str] = {
    "landmarks68": SHAPE_PREDICTOR,
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
}


def dlib_missing() -> str | None:
    """None when dlib and the model files are usable, else one line saying what is missing."""
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed: {DLIB_INSTALL}"
    absent = [name for name in MODEL_FILES.values() if find_model_file(name) is None]
    if absent:
        return f"face-recognition-models lacks {', '.join(absent)}: {DLIB_INSTALL}"
    return None


def _rectangle(box: tuple[float, float, float, float]):  # noqa: ANN202 - a dlib.rectangle
    import dlib

    x0, y0, x1, y1 = box
    return dlib.rectangle(math.floor(x0), math.floor(y0), math.ceil(x1) - 1, math.ceil(y1) - 1)


class DlibFaces:
    """dlib's detector, landmark predictors and face recogniser, loaded once (~2 s)."""

    def __init__(self) -> None:
        missing = dlib_missing()
        if missing:
            raise FacerepError(missing)
        # the face detector plugin's cache: a model it has loaded is not read again
        self._detector = dlib_model("hog")
        self._landmarks68 = dlib_model("shape", str(model_file(MODEL_FILES["landmarks68"])))
        self._landmarks5 = dlib_model("shape", str(model_file(MODEL_FILES["landmarks5"])))
        self._descriptor = dlib_model("recognition", str(model_file(MODEL_FILES["descriptor"])))

    def detect(self, rgb: np.ndarray, upsample: int = 1) -> list[tuple[float, float, float, float]]:
        """Face boxes (x0, y0, x1, y1), pixel edges, of an (H, W, 3) uint8 image, by the HOG detector."""
        found = self._detector(np.ascontiguousarray(rgb), int(upsample))
        return [(float(r.left()), float(r.top()), r.right() + 1.0, r.bottom() + 1.0) for r in found]

    def landmarks68(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) iBUG landmarks (pixels) of the face in `box` (x0, y0, x1, y1)."""
        shape = self._landmarks68(np.ascontiguousarray(rgb), _rectangle(box))
        return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], dtype=np.float64)

    def descriptor(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(128,) face descriptor of the face in `box` (aligned by dlib's 5-point predictor)."""
        image = np.ascontiguousarray(rgb)
        shape = self._landmarks5(image, _rectangle(box))
        return np.asarray(self._descriptor.compute_face_descriptor(image, shape), dtype=np.float64)


Box = tuple[float, float, float, float]


def detections(rgb: np.ndarray, detector: Any | None = None) -> list[tuple[Box, np.ndarray | None]]:
    """Faces of an (H, W, 3) uint8 image as (box (x0, y0, x1, y1), (68, 2) landmarks or None): by
    `detector` (a registered ``face_detector``, e.g. ``dlib``) when given, else by dlib's HOG detector here
    (boxes only)."""
    if detector is not None:
        return [
            (tuple(float(v) for v in f.box), np.asarray(f.landmarks, np.float64))
            for f in detector.detect(rgb)
        ]
    return [(box, None) for box in dlib_faces().detect(rgb)]


@cache
def dlib_faces() -> DlibFaces:
    """One shared `DlibFaces` per process."""
    return DlibFaces()


def largest(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float] | None:
    """The largest box (by area), or None for none."""
    if not boxes:
        return None
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


#: Smallest overlap (IoU) between a detection and a face's known box for the detection to count as that face.
MIN_IOU = 0.3


def overlapping_detection(
    rgb: np.ndarray, box: Box, detector: Any | None = None
) -> tuple[Box, np.ndarray | None] | None:
    """The detection of `rgb` (by `detector`, as `detections`) overlapping `box` (x0, y0, x1, y1) most, as
    (box, (68, 2) landmarks or None), when it overlaps by at least `MIN_IOU`; else None."""
    found = [(iou(found_box, box), found_box, points) for found_box, points in detections(rgb, detector)]
    best = max(found, key=lambda f: f[0], default=None)
    return (best[1], best[2]) if best is not None and best[0] >= MIN_IOU else None


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
