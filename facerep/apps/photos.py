"""Face photos in, network-sized crops out.

A photo becomes a square crop resized to the run's image size in one of three ways:

- **landmark sidecar**: ``NAME.pts`` (iBUG / 300-W point file, 68 points) next to ``NAME.jpg``, or under
  ``landmarks68/`` beside the photo's folder as facerep's datasets lay them out: the crop is a square
  around the landmarks (`facerep.data.imagefile.landmark_box`, side = ``crop_scale`` x their extent);
- **detection** (``detect=True``, needs the optional ``face-alignment`` package, the ``[detect]`` extra):
  68 landmarks are detected, then cropped as above;
- otherwise the photo is taken as an **aligned crop** (CelebA-style): its largest centred square.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from facerep.core.errors import DataError
from facerep.data.imagefile import center_box, crop_resize, landmark_box, load_image

#: File suffixes read as photos (case-insensitive).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class FacePhoto:
    """One photo prepared for the network.

    Attributes:
        path: the photo file.
        image: (3, S, S) crop in [0, 1].
        original: the full photo (RGB).
        box: the crop in the photo, (x0, y0, side) in pixels.
        crop: how the box was chosen: "landmarks" (sidecar), "detected" or "center".
        landmarks: (68, 2) landmarks in crop pixels (sidecar or detected), or None.
    """

    path: Path
    image: Tensor
    original: Image.Image
    box: tuple[float, float, float]
    crop: str
    landmarks: Tensor | None = None

    @property
    def name(self) -> str:
        return self.path.stem


def is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES


def find_photos(target: str | Path, *, recursive: bool = True) -> list[Path]:
    """The photo `target` itself, or every photo below the folder `target` (sorted)."""
    target = Path(target)
    if target.is_file():
        if not is_photo(target):
            raise DataError(f"{target}: not a photo (suffixes read: {', '.join(PHOTO_SUFFIXES)})")
        return [target]
    if not target.is_dir():
        raise DataError(f"{target}: no such photo or folder")
    pattern = "**/*" if recursive else "*"
    photos = sorted(p for p in target.glob(pattern) if is_photo(p))
    if not photos:
        raise DataError(f"{target}: no photos found (suffixes read: {', '.join(PHOTO_SUFFIXES)})")
    return photos


def landmark_sidecar(photo: Path) -> Path | None:
    """The photo's 68-landmark ``.pts`` file: next to it, or in ``../landmarks68/`` (datasets' layout)."""
    for candidate in (photo.with_suffix(".pts"), photo.parent.parent / "landmarks68" / f"{photo.stem}.pts"):
        if candidate.is_file():
            return candidate
    return None


class LandmarkDetector:
    """68-point landmarks with the optional ``face-alignment`` package (2D FAN, CPU or CUDA)."""

    def __init__(self, device: str = "cpu") -> None:
        try:
            import face_alignment
        except ImportError:
            raise DataError(
                "--detect needs the optional face-alignment package: pip install 'facerep[detect]' "
                "(or give each photo a NAME.pts landmark file)"
            ) from None
        landmarks_type = (
            getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        )
        self._fa = face_alignment.FaceAlignment(landmarks_type, device=device)

    def __call__(self, image: Image.Image, path: Path) -> np.ndarray:
        """(68, 2) landmarks in pixels (facerep's convention) of the largest detected face."""
        found = self._fa.get_landmarks_from_image(np.asarray(image))
        if not found:
            raise DataError(f"{path}: no face detected")
        largest = max(found, key=lambda pts: float(np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])))
        return np.asarray(largest[:, :2], dtype=np.float32) + 0.5  # pixel indices -> pixel centres


def load_face_photo(
    path: str | Path,
    image_size: int,
    *,
    crop_scale: float = 1.5,
    detector: LandmarkDetector | None = None,
) -> FacePhoto:
    """Read a photo and cut the network's square crop (see the module docstring for the three ways)."""
    from facerep.data.sidecars import read_pts

    path = Path(path)
    original = load_image(path)
    sidecar = landmark_sidecar(path)
    points = None
    crop = "center"
    if sidecar is not None:
        points, crop = read_pts(sidecar), "landmarks"
    elif detector is not None:
        points, crop = detector(original, path), "detected"
    box = landmark_box(points, crop_scale) if points is not None else center_box(*original.size)
    image, landmarks, _ = crop_resize(original, box, int(image_size), points)
    return FacePhoto(path, image, original, tuple(float(b) for b in box), crop, landmarks)


def load_face_photos(
    paths: Iterable[str | Path], image_size: int, *, crop_scale: float = 1.5, detect: bool = False
) -> list[FacePhoto]:
    """`load_face_photo` for several photos (one detector shared when ``detect``)."""
    detector = LandmarkDetector() if detect else None
    return [load_face_photo(p, image_size, crop_scale=crop_scale, detector=detector) for p in paths]
