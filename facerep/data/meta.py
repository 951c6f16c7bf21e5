"""``meta.json`` at a dataset root: which face model its 3DMM parameters belong to.

Format::

    {"face_model": {"type": "synthetic", "vertices": 2000, "seed": 0},
     "generator": {"preset": "demo", "seed": 0, "facerep": "0.1.0"}}

``face_model.type`` is a registered face model name (``synthetic``, ``bfm``, ...) and the other keys are
its recipe arguments. A root without ``meta.json`` is a real dataset whose parameters are BFM ones
(300W-LP, AFLW2000-3D), i.e. ``{"face_model": {"type": "bfm"}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.core.interfaces import FaceModel

META_FILE = "meta.json"
DEFAULT_META: dict[str, Any] = {"face_model": {"type": "bfm"}}


def read_meta(root: str | Path) -> dict[str, Any]:
    """The dataset's meta.json (or `DEFAULT_META` when absent); a malformed file raises `DataError`."""
    path = Path(root) / META_FILE
    if not path.is_file():
        return json.loads(json.dumps(DEFAULT_META))
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read meta.json ({exc})") from exc
    fm = meta.get("face_model") if isinstance(meta, dict) else None
    if not isinstance(fm, dict) or "type" not in fm:
        raise DataError(f"{path}: needs a 'face_model' object with a 'type' (e.g. \"bfm\" or \"synthetic\")")
    return meta


def write_meta(root: str | Path, meta: dict[str, Any]) -> None:
    """Write meta.json at `root`."""
    path = Path(root) / META_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def check_face_model(meta: dict[str, Any], face_model: FaceModel | None, root: str | Path) -> None:
    """Raise `DataError` when the run's face model is not the one the dataset's parameters belong to."""
    if face_model is None:
        return
    wanted = str(meta["face_model"]["type"])
    have = str(getattr(face_model, "name", type(face_model).__name__))
    if wanted != have:
        raise DataError(
            f"{Path(root)}: its 3DMM parameters belong to the {wanted!r} face model (meta.json), but the run "
            f"uses {have!r}; set the recipe's face_model to type {wanted!r} or use another dataset"
        )
    wanted_seed, have_seed = meta["face_model"].get("seed"), getattr(face_model, "seed", None)
    if wanted_seed is not None and have_seed is not None and int(wanted_seed) != int(have_seed):
        raise DataError(
            f"{Path(root)}: its 3DMM parameters belong to the {wanted!r} face model with seed {wanted_seed} "
            f"(meta.json), but the run's face model has seed {have_seed}: set face_model.seed accordingly"
        )


def fit_params(values: np.ndarray, size: int | None, name: str, where: str | Path) -> np.ndarray:
    """Coefficient vector `values` cut to the face model's first `size` components (PCA order).

    A model with more components than the data provides is an error naming the file.
    """
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if size is None:
        return flat
    if flat.size < size:
        raise DataError(f"{where}: {name} has {flat.size} coefficients but the face model needs {size}")
    return flat[:size]


def basis_sizes(face_model: FaceModel | None) -> tuple[int | None, int | None]:
    """(K_id, K_exp): how many identity and expression coefficients the run's face model takes, or
    (None, None) without a face model (the labels are then kept whole)."""
    if face_model is None:
        return None, None
    return int(face_model.id_basis.shape[0]), int(face_model.exp_basis.shape[0])


def mat_3dmm_params(
    mat: dict[str, Any], sizes: tuple[int | None, int | None], where: str | Path
) -> dict[str, np.ndarray]:
    """The 3DMM labels of a 300W-LP / AFLW2000-3D ``.mat`` file, fitted to the face model's sizes.

    Returns ``id_params`` (K_id,) from ``Shape_Para``, ``exp_params`` (K_exp,) from ``Exp_Para`` and
    ``pose_params`` (7,) from ``Pose_Para`` (pitch, yaw, roll, tx, ty, tz, scale; zero-padded, zeros
    when absent), all float32. Too few coefficients is a `DataError` naming `where`.
    """
    pose = np.asarray(mat.get("Pose_Para", np.zeros(7)), dtype=np.float32).reshape(-1)[:7]
    return {
        "id_params": fit_params(mat["Shape_Para"], sizes[0], "Shape_Para", where),
        "exp_params": fit_params(mat["Exp_Para"], sizes[1], "Exp_Para", where),
        "pose_params": np.pad(pose, (0, 7 - pose.size)),
    }
