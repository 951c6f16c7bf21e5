"""AFLW2000-3D samples for the landmark benchmark: image, 68 ground-truth points, yaw.

Layout: ``ROOT/imageNNNNN.jpg`` with ``ROOT/imageNNNNN.mat`` holding ``pt3d_68`` (3, 68: x, y in 1-based
image pixels as MATLAB writes them, then z) and ``Pose_Para`` (1, 7: pitch, yaw, roll in radians, ...).
The ground truth is the x, y rows of ``pt3d_68`` in facerep's pixel convention (centres at i + 0.5);
the yaw is ``Pose_Para``'s second entry, in degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerep.common.errors import DataError
from facerep.data.matfile import load_mat
from facerep.data.sidecars import PTS_OFFSET

REQUIRED_FIELDS: tuple[str, ...] = ("pt3d_68", "Pose_Para")


@dataclass
class AflwSample:
    """One AFLW2000-3D image.

    Attributes:
        name: the file stem (``image00050``).
        image: the image file.
        landmarks: (68, 2) ground-truth x, y in pixels (facerep's convention).
        yaw: ground-truth yaw in degrees (signed).
    """

    name: str
    image: Path
    landmarks: np.ndarray
    yaw: float


def read_sample(mat_path: Path, image_path: Path) -> AflwSample:
    """One sample from its ``.mat`` and image (a `DataError` names the file and what is wrong)."""
    mat = load_mat(mat_path, REQUIRED_FIELDS)
    pt3d = np.asarray(mat["pt3d_68"], dtype=np.float64)
    if pt3d.shape != (3, 68):
        raise DataError(f"{mat_path}: pt3d_68 has shape {pt3d.shape}, expected (3, 68)")
    pose = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)
    if pose.size < 2 or not np.all(np.isfinite(pt3d[:2])) or not math.isfinite(pose[1]):
        raise DataError(f"{mat_path}: Pose_Para needs a finite yaw (second entry) and pt3d_68 finite x, y")
    if not image_path.is_file():
        raise DataError(f"{mat_path}: its image {image_path.name} is missing")
    return AflwSample(mat_path.stem, image_path, pt3d[:2].T - PTS_OFFSET, math.degrees(float(pose[1])))


def read_aflw2000(root: str | Path, *, limit: int | None = None) -> list[AflwSample]:
    """Every image/.mat pair under `root` (sorted by name; the first `limit` when given).

    Raises:
        DataError: a missing folder, no pairs, an image without its ``.mat`` (or the reverse), a ``.mat``
            without ``pt3d_68`` / ``Pose_Para`` or with a wrong shape.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: AFLW2000-3D folder not found")
    images = {p.stem: p for p in root.glob("*.jpg")}
    mats = {p.stem: p for p in root.glob("*.mat")}
    lonely = sorted(set(images) ^ set(mats))
    if lonely:
        name = lonely[0]
        have, lacks = (f"{name}.jpg", f"{name}.mat") if name in images else (f"{name}.mat", f"{name}.jpg")
        raise DataError(f"{root / have}: has no {lacks} beside it ({len(lonely)} unpaired file(s))")
    if not mats:
        raise DataError(f"{root}: no AFLW2000-3D image/.mat pair (imageNNNNN.jpg + imageNNNNN.mat)")
    names = sorted(mats)[: limit if limit is not None else None]
    return [read_sample(mats[n], images[n]) for n in names]
