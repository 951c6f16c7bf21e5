"""The ``dlib`` face detector (the default): dlib's HOG (or CNN) face detector, then its 68-point iBUG shape
predictor.

Everything it needs installs from PyPI and runs offline: ``dlib-bin`` (dlib's binary wheels) and
``face-recognition-models`` (dlib's trained files: ``shape_predictor_68_face_landmarks.dat``,
``mmod_human_face_detector.dat``). facerep's ``detect`` extra installs both. The 68-point model was trained
by dlib's author on the iBUG 300-W dataset, whose licence excludes commercial use: see the README.

Measured on the real photos of the project's test data (one CPU core, ``upsample=1``): HOG finds both people
of a 1920 x 1080 photo in about 1.3 s with a mean landmark error of 6% of the inter-ocular distance; the CNN
detector finds turned faces HOG misses but takes 20-60 s on such a photo without a GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from facerep.common.errors import FacerepError
from facerep.core.interfaces import DetectedFace, FaceDetector
from facerep.core.registry import Component, hookimpl
from facerep.data.dlib_models import CNN_DETECTOR, SHAPE_PREDICTOR, dlib_model, import_dlib, model_file

DETECTORS = ("hog", "cnn")


class DlibDetector(FaceDetector):
    """dlib's face detector and 68-point shape predictor.

    Args:
        detector: "hog" (frontal-face HOG + linear SVM; fast on a CPU) or "cnn" (dlib's MMOD CNN: finds turned
            and small faces, slow without CUDA).
        upsample: times the image is doubled before detection (1 finds faces down to about 40 px).
        threshold: smallest detection score kept. HOG scores are SVM margins (dlib keeps > 0); 0.1 drops
            the weakest false positives (a hand, a pattern) seen on real photos while keeping turned faces
            that score 0.2.
        device: the run's device (injected); only used to say that CPU dlib ignores CUDA.
    """

    weights = "bundled: face-recognition-models (dlib's iBUG 300-W 68-point model); no download"

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        threshold: float = 0.1,
        device: torch.device | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise FacerepError(f"dlib detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        if int(upsample) < 0:
            raise FacerepError(f"dlib upsample must be 0 or more, got {upsample}")
        import_dlib()  # fails first, with the install line, when dlib is missing
        self.detector = detector
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._predictor = dlib_model("shape", str(model_file(SHAPE_PREDICTOR)))
        if detector == "hog":
            self._hog = dlib_model("hog")
        else:
            self._cnn = dlib_model("cnn", str(model_file(CNN_DETECTOR)))

    def _boxes(self, image: np.ndarray) -> list[tuple[object, float]]:
        if self.detector == "hog":
            rects, scores, _ = self._hog.run(image, self.upsample, self.threshold)
            return list(zip(rects, scores, strict=True))
        return [(d.rect, float(d.confidence)) for d in self._cnn(image, self.upsample)]

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces of an (H, W, 3) uint8 RGB image, largest first (see `FaceDetector`)."""
        image = self.check_rgb(image)
        faces = []
        for rect, score in self._boxes(image):
            if score < self.threshold:
                continue
            shape = self._predictor(image, rect)
            # dlib puts pixel centres on integers; facerep at +0.5
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32) + 0.5
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
            faces.append(DetectedFace(box, points, float(score)))
        return sorted(faces, key=lambda f: -f.area)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "face_detector",
            "dlib",
            DlibDetector,
            "dlib HOG/CNN face detector + 68-point iBUG landmarks (weights bundled, offline)",
        )
    ]
