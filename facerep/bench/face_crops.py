"""Network crops of face photos for benchmarks, as ``facerep reconstruct`` cuts them.

A photo's crop comes from its landmark sidecar when it has one (``NAME.pts`` or ``ROOT/landmarks68/REL.pts``),
else from the 68 landmarks of a registered ``face_detector`` (built through the registry by name, the
largest face), else, when no detector can be built or it finds no face, the photo's centred square
(`facerep.apps.photos.load_face_photo`). `CropCounts` keeps how many photos took each way, for the
benchmark's notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facerep.apps.photos import FacePhoto, load_face_photo
from facerep.core.errors import DataError, FacerepError

Locator = Callable[[Image.Image, Path], np.ndarray]


def build_detector(name: str | None) -> tuple[Any | None, str]:
    """The registered ``face_detector`` `name` (None when `name` is None or it cannot be built) and a line
    saying which detector is used or why none is."""
    if not name:
        return None, "no face detector asked for"
    from facerep.core.registry import get_registry

    registry = get_registry()
    if "face_detector" not in registry.kinds() or name not in registry.names("face_detector"):
        return None, f"no face_detector named {name!r} is registered"
    try:
        return registry.build("face_detector", {"type": name}, {}), f"face_detector {name!r}"
    except FacerepError as exc:
        return None, str(exc)


def landmark_locator(detector: Any) -> Locator:
    """A `load_face_photo` detector callable: (photo, path) -> (68, 2) landmarks of the largest face."""

    def locate(image: Image.Image, path: Path) -> np.ndarray:
        faces = detector.detect(np.asarray(image.convert("RGB"), dtype=np.uint8))
        if not faces:
            raise DataError(f"{path}: no face detected")
        return np.asarray(faces[0].landmarks, dtype=np.float32)

    return locate


class FaceCropper:
    """Crops photos for one image size, counting how each crop was chosen.

    Args:
        image_size: the network's input side (px).
        crop_scale: crop side relative to the landmarks' extent.
        locator: a `landmark_locator` or None (sidecars, then the centred square).
    """

    def __init__(self, image_size: int, crop_scale: float, locator: Locator | None) -> None:
        self.image_size = int(image_size)
        self.crop_scale = float(crop_scale)
        self.locator = locator
        self.counts: Counter[str] = Counter()

    def __call__(self, path: Path) -> FacePhoto:
        try:
            photo = load_face_photo(path, self.image_size, crop_scale=self.crop_scale, detector=self.locator)
        except DataError as exc:
            if self.locator is None or "no face detected" not in str(exc):
                raise
            photo = load_face_photo(path, self.image_size, crop_scale=self.crop_scale, crop="center")
            self.counts["undetected"] += 1
        self.counts[photo.crop] += 1
        return photo
