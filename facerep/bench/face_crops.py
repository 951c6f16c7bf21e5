"""Network crops of face photos for benchmarks, as ``facerep reconstruct`` cuts them.

A photo's crop comes from its landmark sidecar when it has one (``NAME.pts`` or ``ROOT/landmarks68/REL.pts``),
else from the largest face a registered ``face_detector`` finds (`facerep.data.photos.crop_faces`), else,
when no detector can be built or it finds no face, the photo's centred square. `FaceCropper` counts how
many photos took each way, for the benchmark's notes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from facerep.common.errors import FacerepError
from facerep.data.photos import FacePhoto, NoFaceFound, load_face_photo


def build_detector(name: str | None, device: Any = "cpu") -> tuple[Any | None, str]:
    """The registered ``face_detector`` `name` (None when `name` is None or it cannot be built, e.g. its
    optional package is missing) and a line saying which detector is used or why none is."""
    if not name:
        return None, "no face detector asked for"
    from facerep.data.landmark_store import build_detector as build

    try:
        return build(name, device), f"face_detector {name!r}"
    except FacerepError as exc:
        return None, str(exc)


class FaceCropper:
    """Crops photos for one image size, counting how each crop was chosen ("landmarks", "detected",
    "center"; "undetected" counts the centre crops of photos where the detector found no face).

    Args:
        image_size: the network's input side (px).
        crop_scale: crop side relative to the landmarks' extent.
        detector: a `facerep.core.interfaces.FaceDetector`, or None (sidecars, then the centred square).
    """

    def __init__(self, image_size: int, crop_scale: float, detector: Any | None) -> None:
        self.image_size = int(image_size)
        self.crop_scale = float(crop_scale)
        self.detector = detector
        self.counts: Counter[str] = Counter()

    def __call__(self, path: Path) -> FacePhoto:
        try:
            photo = load_face_photo(path, self.image_size, crop_scale=self.crop_scale, detector=self.detector)
        except NoFaceFound:
            photo = load_face_photo(path, self.image_size, crop_scale=self.crop_scale, crop="center")
            self.counts["undetected"] += 1
        self.counts[photo.crop] += 1
        return photo
