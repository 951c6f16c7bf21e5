"""Face photos in, network-sized face crops out.

A photo gives one square crop per face, resized to the run's image size, in one of three ways:

- **landmark sidecar**: ``NAME.pts`` (iBUG / 300-W point file, 68 points) next to ``NAME.jpg``, or
  ``ROOT/landmarks68/REL.pts`` for ``ROOT/REL.jpg`` as facerep's datasets (and ``facerep data landmarks``)
  lay them out: one face, cropped by a square around its landmarks (`facerep.data.imagefile.landmark_box`,
  side = ``crop_scale`` x their extent);
- **detection** (the default of ``facerep reconstruct`` and ``FaceRep.reconstruct``): a ``face_detector``
  (`facerep.core.interfaces.FaceDetector`, ``dlib`` by default) finds every face and its 68 landmarks; each
  face (or only the largest) is cropped as above. A photo without a face gives no crop (`NoFaceFound`);
- **centre crop** (``crop="center"``, the command's ``--no-detect``): the photo is taken as an aligned face
  crop (CelebA-style), its largest centred square.

`as_photo` turns a path, a PIL image, a numpy array or a tensor into the RGB photo these functions read.

Photos read from files by `load_face_photo` (and ``facerep reconstruct``) hold at most `MAX_PHOTO_PIXELS`
pixels: a larger one is reduced by an integer factor while it is decoded
(`facerep.data.imagefile.load_image_within`; a JPEG is decoded at 1/2, 1/4 or 1/8 scale directly), so a
100-megapixel photo neither costs gigabytes nor runs the detector at full size. Boxes and landmarks are
still given in the photo file's pixels (`FacePhoto.scale` says how much `FacePhoto.original` was reduced).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from facerep.common.errors import DataError
from facerep.core.interfaces import DetectedFace, FaceDetector
from facerep.data.imagefile import center_box, crop_resize, landmark_box, load_image

#: File suffixes read as photos (case-insensitive).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp", ".tif", ".tiff")
#: Crop choices of `crop_faces`.
CROPS = ("auto", "landmarks", "center")
#: Which detected faces `crop_faces` keeps.
FACES = ("all", "largest")
#: The largest photo (width x height) read at full size by `read_photo`; larger ones are reduced.
MAX_PHOTO_PIXELS = 16_000_000


class NoFaceFound(DataError):  # noqa: N818 - reads as what happened
    """The detector found no face in a photo; the message names the photo."""


@dataclass
class FacePhoto:
    """One face of a photo, prepared for the network.

    Attributes:
        path: the photo file (``Path("<image>")`` for an in-memory image).
        image: (3, S, S) crop in [0, 1].
        original: the full photo (RGB), reduced by `scale` when the file was larger than `MAX_PHOTO_PIXELS`.
        box: the crop in the photo, (x0, y0, side) in the photo file's pixels.
        crop: how the box was chosen: "landmarks" (sidecar), "detected" or "center".
        landmarks: (68, 2) landmarks in crop pixels (sidecar or detected), or None.
        face: index of the face in the photo (largest first), 0 for sidecar and centre crops.
        face_box: the face's box ``[x0, y0, x1, y1]`` in photo pixels (the detector's, or the landmarks'
            bounding box for a sidecar), or None for a centre crop.
        face_landmarks: (68, 2) float32 landmarks in photo pixels, or None.
        score: the detector's score, or None.
        photo_index: position of the photo among several inputs (`facerep.apps.model.FaceRep.reconstruct`).
        scale: pixels of `original` per pixel of the photo file (1.0 unless it was read reduced): a point p
            of `box`, `face_box` or `face_landmarks` is at ``p * scale`` in `original`.
    """

    path: Path
    image: Tensor
    original: Image.Image
    box: tuple[float, float, float]
    crop: str
    landmarks: Tensor | None = None
    face: int = 0
    face_box: tuple[float, float, float, float] | None = None
    face_landmarks: np.ndarray | None = None
    score: float | None = None
    photo_index: int = 0
    scale: float = 1.0

    @property
    def name(self) -> str:
        return self.path.stem


def crops_landmarks(photos: Sequence[FacePhoto]) -> Tensor:
    """(B, 68, 2) float32 landmarks of the photos' crops in crop pixels, a row of NaN for a crop without
    any (a centre crop): what a landmark-reading encoder is handed, NaN rows to be found on the crop."""
    missing = torch.full((68, 2), float("nan"))
    return torch.stack([missing if p.landmarks is None else p.landmarks.float() for p in photos])


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


def read_photo(path: str | Path) -> tuple[Image.Image, float]:
    """A photo file as (RGB image of at most `MAX_PHOTO_PIXELS` pixels, scale): ``scale`` = pixels of the
    image per pixel of the file (1.0 when read at full size; see the module docstring). A missing, corrupt
    or too large file is a `DataError` naming it."""
    from facerep.data.imagefile import load_image_within

    return load_image_within(path, MAX_PHOTO_PIXELS)


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


def as_photo(image: Any) -> tuple[Image.Image, Path]:
    """An input of `FaceRep.reconstruct` as (RGB PIL image, path or ``Path("<image>")``).

    Accepts a path (str or Path), a PIL image, a numpy array (H, W, 3) or (H, W) — uint8, or float in
    [0, 1] — and a tensor (3, H, W) or (H, W, 3) float in [0, 1] (or uint8).
    """
    import torch

    memory = Path("<image>")
    if isinstance(image, str | Path):
        return load_image(image), Path(image)
    if isinstance(image, Image.Image):
        return image.convert("RGB"), memory
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
            raise ValueError(f"an image array must be (H, W, 3) or (H, W), got shape {image.shape}")
        if arr.dtype != np.uint8:
            arr = (np.clip(np.asarray(arr, dtype=np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        return Image.fromarray(np.ascontiguousarray(arr), mode="RGB"), memory
    raise TypeError(
        "an image is a path, a PIL image, a numpy array (H, W, 3) or a tensor (3, H, W); "
        f"got {type(image).__name__}"
    )


def _bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _cut(
    original: Image.Image,
    path: Path,
    image_size: int,
    points: np.ndarray,
    how: str,
    crop_scale: float,
    face: int = 0,
    detected: DetectedFace | None = None,
    scale: float = 1.0,
) -> FacePhoto:
    """The crop around `points` (68, 2) in `original`'s pixels; box, face box and landmarks are reported in
    the photo file's (divided by `scale`)."""
    box = landmark_box(points, crop_scale)
    image, landmarks, _ = crop_resize(original, box, int(image_size), points)
    face_box = tuple(float(v) for v in detected.box) if detected is not None else _bounds(points)
    return FacePhoto(
        path,
        image,
        original,
        tuple(float(b) / scale for b in box),
        how,
        landmarks,
        face,
        tuple(v / scale for v in face_box),  # type: ignore[arg-type]
        np.asarray(np.asarray(points, dtype=np.float64) / scale, dtype=np.float32),
        float(detected.score) if detected is not None else None,
        scale=scale,
    )


def crop_faces(
    original: Image.Image,
    path: str | Path,
    image_size: int,
    *,
    detector: FaceDetector | None = None,
    faces: str = "all",
    crop: str = "auto",
    crop_scale: float = 1.5,
    sidecars: bool = True,
    scale: float = 1.0,
) -> list[FacePhoto]:
    """The network crops of one photo (see the module docstring): one per face, largest first.

    Args:
        original: the photo (RGB), possibly reduced from its file by `scale` (`read_photo`).
        path: its file (for sidecars and messages).
        image_size: side of the crops, pixels.
        detector: finds faces when the photo has no landmark sidecar.
        faces: "all" or "largest" (detected faces only; a sidecar or centre crop is one face).
        crop: "auto" (sidecar, else the detector, else the centred square), "landmarks" (a sidecar or the
            detector, an error without either) or "center" (the centred square, nothing detected).
        crop_scale: crop side / landmark extent.
        sidecars: look for a ``.pts`` sidecar of `path`.
        scale: pixels of `original` per pixel of the file at `path` (a sidecar's points are in the file's
            pixels); the returned boxes and landmarks are in the file's pixels.
    Raises:
        `NoFaceFound` when the detector finds no face; `DataError` for ``crop="landmarks"`` without landmarks.
    """
    from facerep.data.sidecars import read_pts

    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    if faces not in FACES:
        raise ValueError(f"faces must be one of {FACES}, got {faces!r}")
    scale = float(scale)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    path = Path(path)
    if crop == "center":
        box = center_box(*original.size)
        image, _, _ = crop_resize(original, box, int(image_size))
        return [FacePhoto(path, image, original, tuple(float(b) / scale for b in box), "center", scale=scale)]
    sidecar = landmark_sidecar(path) if sidecars and path.is_file() else None
    if sidecar is not None:
        points = read_pts(sidecar) * scale
        return [_cut(original, path, image_size, points, "landmarks", crop_scale, scale=scale)]
    if detector is None:
        if crop == "landmarks":
            raise DataError(f"{path}: no landmarks to crop around (no .pts sidecar and no face detector)")
        return crop_faces(original, path, image_size, crop="center", scale=scale)
    found = detector.detect(np.asarray(original.convert("RGB")))
    if not found:
        raise NoFaceFound(f"{path}: no face found")
    found = sorted(found, key=lambda f: -f.area)
    if faces == "largest":
        found = found[:1]
    return [
        _cut(original, path, image_size, f.landmarks, "detected", crop_scale, k, f, scale)
        for k, f in enumerate(found)
    ]


class LandmarkDetector:
    """The largest face's 68 landmarks of a photo, by a registered ``face_detector`` (``dlib`` by default).

    Building it without the detector's package is a `facerep.common.errors.FacerepError` naming the
    ``pip install`` line.
    """

    def __init__(self, device: Any = "cpu", name: str = "dlib") -> None:
        from facerep.data.landmark_store import build_detector

        self.detector = build_detector(name, device)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detector.detect(image)

    def __call__(self, image: Image.Image, path: Path) -> np.ndarray:
        """(68, 2) landmarks in pixels (facerep's convention) of the largest face; `NoFaceFound` if none."""
        found = self.detector.detect(np.asarray(image.convert("RGB")))
        if not found:
            raise NoFaceFound(f"{path}: no face found")
        return max(found, key=lambda f: f.area).landmarks


def load_face_photo(
    path: str | Path,
    image_size: int,
    *,
    crop_scale: float = 1.5,
    detector: LandmarkDetector | FaceDetector | None = None,
    crop: str = "auto",
) -> FacePhoto:
    """Read a photo (reduced to at most `MAX_PHOTO_PIXELS` pixels, `read_photo`) and cut the network's square
    crop of its largest face (see `crop_faces`); box and landmarks are in the photo file's pixels."""
    if isinstance(detector, LandmarkDetector):
        detector = detector.detector
    path = Path(path)
    original, scale = read_photo(path)
    return crop_faces(
        original,
        path,
        image_size,
        detector=detector,
        faces="largest",
        crop=crop,
        crop_scale=crop_scale,
        scale=scale,
    )[0]


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
