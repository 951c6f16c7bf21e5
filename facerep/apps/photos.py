"""Face photos in, network-sized crops out.

A photo becomes a square crop resized to the run's image size in one of three ways:

- **landmark sidecar**: ``NAME.pts`` (iBUG / 300-W point file, 68 points) next to ``NAME.jpg``, or
  ``ROOT/landmarks68/REL.pts`` for ``ROOT/REL.jpg`` as facerep's datasets (and ``facerep data landmarks``)
  lay them out: the crop is a square
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
#: Crop choices of `load_face_photo`.
CROPS = ("auto", "landmarks", "center")


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


def landmark_sidecar(photo: Path, max_depth: int = 4) -> Path | None:
    """The photo's 68-landmark ``.pts`` file: ``NAME.pts`` next to it, or ``ROOT/landmarks68/REL.pts`` for
    a photo at ``ROOT/REL.jpg`` (the datasets' layout, `facerep.data.sidecars`) with ROOT up to
    `max_depth` folders above the photo."""
    photo = Path(photo)
    candidates = [photo.with_suffix(".pts")]
    for root in list(photo.parents)[:max_depth]:
        candidates.append(root / "landmarks68" / photo.relative_to(root).with_suffix(".pts"))
    for candidate in candidates:
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
    crop: str = "auto",
) -> FacePhoto:
    """Read a photo and cut the network's square crop (see the module docstring for the three ways).

    `crop` is "auto" (landmarks when a sidecar or the detector gives them, else the centred square),
    "landmarks" (an error without landmarks) or "center" (ignore landmarks for the crop).
    """
    from facerep.data.sidecars import read_pts

    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    path = Path(path)
    original = load_image(path)
    sidecar = landmark_sidecar(path)
    points = None
    how = "center"
    if sidecar is not None:
        points, how = read_pts(sidecar), "landmarks"
    elif detector is not None:
        points, how = detector(original, path), "detected"
    if crop == "landmarks" and points is None:
        raise DataError(f"{path}: no landmarks to crop around (no .pts sidecar; try --detect)")
    if crop == "center" or points is None:
        box, how = center_box(*original.size), "center"
    else:
        box = landmark_box(points, crop_scale)
    image, landmarks, _ = crop_resize(original, box, int(image_size), points)
    return FacePhoto(path, image, original, tuple(float(b) for b in box), how, landmarks)


def load_face_photos(
    paths: Iterable[str | Path],
    image_size: int,
    *,
    crop_scale: float = 1.5,
    detect: bool = False,
    crop: str = "auto",
) -> list[FacePhoto]:
    """`load_face_photo` for several photos (one detector shared when ``detect``)."""
    detector = LandmarkDetector() if detect else None
    return [
        load_face_photo(p, image_size, crop_scale=crop_scale, detector=detector, crop=crop) for p in paths
    ]
