"""Reading and writing the MATLAB ``.mat`` files of 300W-LP and AFLW2000-3D (through scipy.io)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError

#: Fields of a 300W-LP / AFLW2000-3D .mat and their shapes in the real files.
FIELDS_300WLP: dict[str, tuple[int, int]] = {
    "Shape_Para": (199, 1),
    "Exp_Para": (29, 1),
    "Tex_Para": (199, 1),
    "Pose_Para": (1, 7),
    "Illum_Para": (1, 10),
    "Color_Para": (1, 7),
    "pt2d": (2, 68),
    "roi": (1, 4),
}


def load_mat(path: str | Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """Load a .mat file; a missing/corrupt file or a missing required field raises `DataError` naming it."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: .mat file not found")
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, MatReadError ... on bad files
        raise DataError(f"{path}: cannot read .mat file ({type(exc).__name__}: {exc})") from exc
    missing = [f for f in required if f not in data]
    if missing:
        present = sorted(k for k in data if not k.startswith("__"))
        raise DataError(f"{path}: missing field(s) {missing} (the file has {present})")
    return data


def save_mat(path: str | Path, fields: dict[str, np.ndarray]) -> None:
    """Write a .mat (MATLAB 5 format, as the real files) with the given fields."""
    import scipy.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), fields, format="5", do_compression=False)
