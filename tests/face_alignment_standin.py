"""A stand-in for the face-alignment package (it downloads its weights on first use), for the tests of the
``face_alignment`` detector plugin and of the commands that use it."""

from __future__ import annotations

import types
from collections.abc import Sequence

import numpy as np


def face_alignment_standin(
    faces: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]
) -> types.SimpleNamespace:
    """A module like ``face_alignment`` (put it in ``sys.modules``) whose ``FaceAlignment`` finds `faces`
    ((68, 2) landmarks each, pixel centres on integers as face-alignment's) with `boxes` (``[x0, y0, x1,
    y1, score]`` each) in every uint8 RGB image but a black one (mean below 10: no face)."""

    class FaceAlignment:
        def __init__(
            self, kind: str, device: str = "cpu", flip_input: bool = False, face_detector: str = "sfd"
        ) -> None:
            assert kind == "2D" and device == "cpu" and face_detector == "sfd"

        def get_landmarks_from_image(self, image: np.ndarray, return_bboxes: bool = False):  # noqa: ANN202
            assert image.dtype == np.uint8 and image.ndim == 3 and return_bboxes
            if image.mean() < 10:
                return None, None, None
            return list(faces), None, [list(box) for box in boxes]

    return types.SimpleNamespace(LandmarksType=types.SimpleNamespace(TWO_D="2D"), FaceAlignment=FaceAlignment)
