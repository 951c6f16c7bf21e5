"""Sidecar files that carry the preprocessing outputs the paper needs next to each image.

Formats (the same for the synthetic world and for real photos preprocessed by any tool):

- **68 landmarks**: an iBUG / 300-W ``.pts`` point file per image::

      version: 1
      n_points:  68
      {
      x1 y1
      ...
      x68 y68
      }

  Points are in iBUG order. As in the 300-W annotations, coordinates are 1-based pixel positions
  (the centre of the top-left pixel is (1, 1)). facerep's in-memory convention puts that centre at
  (0.5, 0.5), so `read_pts` subtracts 0.5 and `write_pts` adds it back.
- **face masks**: an 8-bit greyscale PNG of the image's size per image; values >= 128 mark visible face
  skin (occluders such as hair, glasses and hands excluded), values < 128 everything else. Any
  segmentation tool's output can be used once saved this way.

Where sidecars live, for an image at ``ROOT/REL/NAME.jpg`` of a dataset root ``ROOT``:
``ROOT/landmarks68/REL/NAME.pts`` and ``ROOT/masks/REL/NAME.png``. A ``.pts`` file right next to the
image (``ROOT/REL/NAME.pts``, as 300-W ships them) is also accepted for landmarks.

MICC-style videos use one landmark file per video, ``VIDEO.landmarks68.csv`` next to ``VIDEO.mjpg``:
a header line ``frame,x0,y0,...,x67,y67`` then one line per frame with a face (0-based frame index,
then 136 coordinates in facerep's convention: pixels, origin at the top-left corner, x right, y down).
Frames without a line have no detected face and are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facerep.common.errors import DataError

NUM_LANDMARKS = 68
LANDMARK_DIR = "landmarks68"
MASK_DIR = "masks"
#: Offset between the .pts convention (pixel centres on integers, 1-based) and facerep's (centres at +0.5).
PTS_OFFSET = 0.5


def read_pts(path: str | Path, *, expected: int | None = NUM_LANDMARKS) -> np.ndarray:
    """Read an iBUG ``.pts`` file -> (n, 2) float32 points in facerep pixels (see module docstring).

    Raises `DataError` naming the file when it is missing, malformed, or has a point count other
    than `expected` (pass ``expected=None`` to accept any count).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read landmark file ({exc.strerror or exc})") from exc
    head, brace, rest = text.partition("{")
    body, close, _ = rest.partition("}")
    if not brace or not close:
        raise DataError(f"{path}: not an iBUG .pts file (missing '{{' / '}}' around the points)")
    n_points: int | None = None
    for ln in head.splitlines():
        key, _, value = ln.partition(":")
        if key.strip().lower() == "n_points":
            try:
                n_points = int(value)
            except ValueError:
                raise DataError(f"{path}: bad n_points line {ln.strip()!r}") from None
    tokens = body.replace(",", " ").split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: non-numeric point coordinate") from None
    if values.size % 2:
        raise DataError(f"{path}: odd number of coordinates ({values.size})")
    rows = values
    points = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    if n_points is not None and n_points != len(points):
        raise DataError(f"{path}: header says n_points {n_points} but the file has {len(points)} points")
    if expected is not None and len(points) != expected:
        raise DataError(f"{path}: expected {expected} landmarks, found {len(points)}")
    if not np.isfinite(points).all():
        raise DataError(f"{path}: landmark coordinates are not finite")
    return (points - PTS_OFFSET).astype(np.float32)


def pts_text(points: np.ndarray) -> str:
    """(n, 2) points in facerep pixels as the text of an iBUG ``.pts`` file (1-based; see the module doc)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2) + PTS_OFFSET
    body = "\n".join(f"{x:.4f} {y:.4f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n"


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write (n, 2) points in facerep pixels as an iBUG ``.pts`` file (1-based, see module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pts_text(points), encoding="utf-8")


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask PNG -> (H, W) float32 in {0, 1} (1 = visible face skin).

    `size` is the expected (width, height) (the image's); a different size is an error naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            grey = im.convert("L")
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read mask PNG ({exc})") from exc
    if size is not None and grey.size != tuple(size):
        raise DataError(
            f"{path}: mask is {grey.size[0]}x{grey.size[1]} px but its image is {size[0]}x{size[1]}"
        )
    return (np.asarray(grey, dtype=np.uint8) >= 128).astype(np.float32)


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an (H, W) mask (bool or float, > 0.5 = skin) as an 8-bit PNG (255 skin, 0 elsewhere)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.asarray(mask, dtype=np.float32) > 0.5).astype(np.uint8) * 255
    Image.fromarray(arr, mode="L").save(path, optimize=False)


def landmark_sidecar(root: str | Path, rel: str | Path) -> Path:
    """Path of the landmark sidecar of image ``root/rel`` (``root/landmarks68/rel`` with ``.pts``)."""
    return Path(root) / LANDMARK_DIR / Path(rel).with_suffix(".pts")


def mask_sidecar(root: str | Path, rel: str | Path) -> Path:
    """Path of the mask sidecar of image ``root/rel`` (``root/masks/rel`` with ``.png``)."""
    return Path(root) / MASK_DIR / Path(rel).with_suffix(".png")


def find_landmarks(root: str | Path, rel: str | Path) -> Path | None:
    """The landmark file of image ``root/rel``: the sidecar tree first, then a ``.pts`` beside the image."""
    for candidate in (landmark_sidecar(root, rel), (Path(root) / rel).with_suffix(".pts")):
        if candidate.is_file():
            return candidate
    return None


def hull_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A face mask from 68 landmarks when no mask sidecar exists: the polygon jaw + brows.

    Args:
        landmarks: (68, 2) pixels, iBUG order.
        size: (width, height) of the image.
    Returns:
        (H, W) float32 in {0, 1}.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    outline = np.concatenate([lm[0:17], lm[26:16:-1]], axis=0)
    canvas = Image.new("L", tuple(size), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in outline], fill=255)
    return (np.asarray(canvas, dtype=np.uint8) >= 128).astype(np.float32)


LANDMARK_CSV_SUFFIX = ".landmarks68.csv"


def video_landmarks_path(video: str | Path) -> Path:
    """The per-frame landmark file of a video: ``VIDEO.landmarks68.csv`` beside it."""
    video = Path(video)
    return video.with_name(video.stem + LANDMARK_CSV_SUFFIX)


def video_landmarks_text(landmarks: dict[int, np.ndarray]) -> str:
    """{frame index: (68, 2) px} as the text of a per-video landmark CSV (see module docstring)."""
    header = "frame," + ",".join(f"x{i},y{i}" for i in range(NUM_LANDMARKS))
    lines = [header]
    for frame in sorted(landmarks):
        pts = np.asarray(landmarks[frame], dtype=np.float64).reshape(NUM_LANDMARKS, 2)
        lines.append(f"{int(frame)}," + ",".join(f"{v:.4f}" for v in pts.reshape(-1)))
    return "\n".join(lines) + "\n"


def write_video_landmarks(path: str | Path, landmarks: dict[int, np.ndarray]) -> None:
    """Write {frame index: (68, 2) px} as a per-video landmark CSV (see module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(video_landmarks_text(landmarks), encoding="utf-8")


def read_video_landmarks(path: str | Path) -> dict[int, np.ndarray]:
    """Read a per-video landmark CSV -> {frame index: (68, 2) float32 px}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read video landmark file ({exc.strerror or exc})") from exc
    out: dict[int, np.ndarray] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("frame"):
            continue
        parts = line.split(",")
        if len(parts) != 1 + 2 * NUM_LANDMARKS:
            raise DataError(f"{path}:{number}: expected {1 + 2 * NUM_LANDMARKS} values, found {len(parts)}")
        try:
            frame = int(parts[0])
            pts = np.asarray([float(v) for v in parts[1:]], dtype=np.float32).reshape(NUM_LANDMARKS, 2)
        except ValueError:
            raise DataError(f"{path}:{number}: non-numeric value") from None
        out[frame] = pts
    return out
