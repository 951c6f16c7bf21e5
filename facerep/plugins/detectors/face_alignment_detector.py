"""The ``face_alignment`` face detector: the face-alignment package's face detector and 2D FAN network.

Needs ``pip install face-alignment``, and a network connection the first time: face-alignment downloads
its detector and landmark weights into the torch hub cache on first use (use the default ``dlib`` detector
to stay offline). Runs on CUDA when the run's device is a GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from facerep.common.errors import FacerepError
from facerep.core.interfaces import DetectedFace, FaceDetector
from facerep.core.registry import Component, hookimpl

#: What fixes a missing face-alignment (it downloads its weights on first use).
FACE_ALIGNMENT_INSTALL = "pip install face-alignment"


class FaceAlignmentDetector(FaceDetector):
    """face-alignment's face detector (``sfd`` by default) and its 2D 68-point FAN.

    Args:
        face_detector: face-alignment's detector name ("sfd", "blazeface", "dlib").
        device: the run's device (injected).
    """

    weights = "downloaded by face-alignment into the torch hub cache on first use (needs a network once)"

    def __init__(self, face_detector: str = "sfd", device: torch.device | None = None) -> None:
        try:
            import face_alignment
        except ImportError:
            raise FacerepError(
                "the face_alignment detector needs the optional face-alignment package, which is not "
                f"installed: {FACE_ALIGNMENT_INSTALL} (it downloads its weights on first use; the default "
                "'dlib' detector works offline)"
            ) from None
        kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self._fa = face_alignment.FaceAlignment(
            kind, device=str(device or "cpu"), flip_input=False, face_detector=face_detector
        )

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces of an (H, W, 3) uint8 RGB image, largest first (see `FaceDetector`)."""
        image = self.check_rgb(image)
        found = self._fa.get_landmarks_from_image(image, return_bboxes=True)
        points_list, _, boxes = found if isinstance(found, tuple) else (found, None, None)
        faces = []
        for k, points in enumerate(points_list or []):
            # face-alignment: pixel centres on integers; facerep at +0.5
            landmarks = np.asarray(points[:, :2], dtype=np.float32) + 0.5
            if boxes is not None and k < len(boxes):
                box = np.asarray(boxes[k][:4], dtype=np.float64)
                score = float(boxes[k][4]) if len(boxes[k]) > 4 else 1.0
            else:
                box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)]).astype(np.float64)
                score = 1.0
            faces.append(DetectedFace(box, landmarks, score))
        return sorted(faces, key=lambda f: -f.area)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "face_detector",
            "face_alignment",
            FaceAlignmentDetector,
            "face-alignment's detector + 2D FAN 68 landmarks (downloads its weights on first use)",
        )
    ]
