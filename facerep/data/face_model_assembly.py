"""Turning the arrays of a real face-model file into a `LinearFaceModel`, filling what it lacks.

Every loader (npz, sfm, bfm) reads its own format into plain arrays and calls `assemble_face_model`,
which applies the same documented rules:

- units: every length is converted to millimetres (``UNIT_SCALE``); when neither the file nor the recipe
  says, the unit is guessed from the mean face's width (a face is about 150 mm wide) and the guess is
  recorded in ``model.info["units"]``;
- frame: the model's own axes are kept (they must be x to the subject's left, y up, z towards the
  viewer); with ``centre`` the mean is translated so that its (x, y) bounding-box centre is at the
  origin; triangles are flipped if most of them face away from +z;
- albedo: a model without one gets a flat skin tone with three global colour components (tone,
  redness, yellowness; `flat_albedo_prior`);
- landmarks: iBUG-68 indices the file does not define are taken from the mirror of their left-right
  partner when that is defined, else from the procedural face's layout placed at the model's nose tip
  and snapped to the nearest frontal vertex (`guess_landmarks`);
- mirror map: the file's symmetry list, else the nearest vertex of the x-mirrored mean;
- uv: the file's per-vertex UVs, else a planar frontal projection;
- crop: an optional vertex index list keeps a sub-mesh (triangles with all corners kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.data.linear_face_model import LinearFaceModel
from facerep.geometry.ibug_layout import IBUG_MIRROR, ibug_layout

#: Millimetres per unit.
UNIT_SCALE: dict[str, float] = {"mm": 1.0, "cm": 10.0, "dm": 100.0, "m": 1000.0, "um": 1e-3}


def unit_scale(units: str, where: str = "") -> float:
    """Millimetres per ``units`` (one of `UNIT_SCALE`); DataError naming ``where`` otherwise."""
    key = str(units).strip().lower().replace("µm", "um").replace("micrometres", "um")
    if key not in UNIT_SCALE:
        raise DataError(f"{where}: unknown length unit {units!r}; expected one of {sorted(UNIT_SCALE)}")
    return UNIT_SCALE[key]


def infer_units(mean: np.ndarray) -> str:
    """Guess the length unit of a face mesh from its width (a face is 100-250 mm wide)."""
    width = float(np.ptp(np.asarray(mean, dtype=np.float64)[:, 0]))
    for units in ("mm", "cm", "dm", "m", "um"):
        if 60.0 <= width * UNIT_SCALE[units] <= 400.0:
            return units
    return "mm"


def flat_albedo_prior(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo for models without one: a flat skin tone and 3 global colour components (unit RMS).

    Returns (albedo_mean (N, 3), albedo_basis (3, N, 3), albedo_std (3,)).
    """
    mean = np.broadcast_to(np.asarray(LinearFaceModel.DEFAULT_SKIN, dtype=np.float32), (n, 3)).copy()
    dirs = np.array([[1.0, 1.0, 1.0], [2.0, -1.0, -1.0], [1.0, 1.0, -2.0]])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    basis = np.broadcast_to(dirs[:, None, :], (3, n, 3)).astype(np.float32).copy()
    return mean, basis, np.array([0.08, 0.02, 0.015], dtype=np.float32)


def guess_landmarks(mean_mm: np.ndarray, known: Mapping[int, int] | None = None) -> np.ndarray:
    """68 iBUG vertex indices: ``known`` ones kept, the others from the procedural layout.

    The layout is placed with its nose tip on the model's most frontal vertex and each missing point is
    snapped, in the frontal (x, y) projection, to the nearest vertex less than 80 mm behind the tip.
    """
    v = np.asarray(mean_mm, dtype=np.float64)
    layout, _ = ibug_layout()
    tip = v[int(np.argmax(v[:, 2]))]
    frontal = np.flatnonzero(v[:, 2] > tip[2] - 80.0)
    out = np.full(68, -1, dtype=np.int64)
    for k, idx in (known or {}).items():
        out[int(k)] = int(idx)
    for k in np.flatnonzero(out < 0):
        target = tip + layout[k]
        d = ((v[frontal, :2] - target[:2]) ** 2).sum(1)
        out[k] = frontal[int(np.argmin(d))]
    return out


def complete_landmarks(
    mean_mm: np.ndarray, known: Mapping[int, int], mirror: np.ndarray | None = None
) -> tuple[np.ndarray, list[int]]:
    """Fill missing iBUG landmarks: first from the mirrored partner, then by `guess_landmarks`.

    Returns (landmarks (68,), the iBUG indices that were filled in).
    """
    have = {int(k): int(v) for k, v in known.items()}
    filled = [k for k in range(68) if k not in have]
    if mirror is not None:
        for k in filled:
            partner = int(IBUG_MIRROR[k])
            if partner in have and partner != k:
                have[k] = int(mirror[have[partner]])
    return guess_landmarks(mean_mm, have), filled


def crop_vertices(keep: np.ndarray, n: int, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep a vertex subset: (kept indices sorted (M,), triangles re-indexed to the kept vertices)."""
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    if keep.size == 0 or keep.min() < 0 or keep.max() >= n:
        raise DataError(f"crop index list must select vertices within [0, {n}), got {keep.size} indices")
    remap = np.full(n, -1, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    tri = remap[triangles]
    return keep, tri[(tri >= 0).all(axis=1)]


def read_index_list(path: str | Path, one_based: bool = False) -> np.ndarray:
    """Vertex indices from a text file (whitespace/comma separated, '#' comments) or a ``.npy`` file."""
    p = Path(path)
    try:
        if p.suffix == ".npy":
            idx = np.load(p).astype(np.int64).ravel()
        else:
            text = "\n".join(line.split("#", 1)[0] for line in p.read_text().splitlines())
            idx = np.array([int(t) for t in text.replace(",", " ").split()], dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read a vertex index list ({exc})") from exc
    return idx - 1 if one_based else idx


def _orient(mean: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, bool]:
    v = mean.astype(np.float64)
    n = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    if n[:, 2].sum() < 0:
        return triangles[:, [0, 2, 1]].copy(), True
    return triangles, False


def assemble_face_model(
    name: str,
    *,
    source: str,
    mean: np.ndarray,
    triangles: np.ndarray,
    id_basis: np.ndarray,
    id_std: np.ndarray,
    exp_basis: np.ndarray | None = None,
    exp_std: np.ndarray | None = None,
    exp_names: Sequence[str] | None = None,
    albedo_mean: np.ndarray | None = None,
    albedo_basis: np.ndarray | None = None,
    albedo_std: np.ndarray | None = None,
    landmarks: Mapping[int, int] | np.ndarray | None = None,
    mirror: np.ndarray | None = None,
    uv: np.ndarray | None = None,
    units: str | None = None,
    centre: bool = True,
    crop: np.ndarray | None = None,
    info: dict[str, Any] | None = None,
) -> LinearFaceModel:
    """Build a `LinearFaceModel` from raw arrays in file units (see the module docstring for the rules).

    Shapes: mean (N, 3); triangles (F, 3) 0-based; bases (K, N, 3) offsets per unit coefficient in file
    units; std (K,); albedo in [0, 1]; landmarks a {iBUG index: vertex} mapping or a (68,) array (-1 for
    unknown); mirror (N,) 0-based.
    """
    info = dict(info or {})
    mean = np.asarray(mean, dtype=np.float64)
    n = mean.shape[0]
    if units is None:
        units = infer_units(mean)
        info["units"] = f"{units} (guessed from the face width)"
    else:
        info["units"] = units
    scale = unit_scale(units, source)
    tri = np.asarray(triangles, dtype=np.int64)
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n:
        raise DataError(f"{source}: triangles must be (F, 3) 0-based indices below {n}, got {tri.shape}")

    def basis(b: np.ndarray | None, what: str) -> np.ndarray | None:
        if b is None:
            return None
        b = np.asarray(b, dtype=np.float64)
        if b.ndim == 2 and b.shape[1] == 3 * n:
            b = b.reshape(b.shape[0], n, 3)
        if b.ndim != 3 or b.shape[1:] != (n, 3):
            raise DataError(f"{source}: {what} must be (K, {n}, 3) or (K, {3 * n}), got {b.shape}")
        return b * scale

    id_b, exp_b = basis(id_basis, "identity basis"), basis(exp_basis, "expression basis")
    lm_known: dict[int, int] = {}
    if landmarks is not None:
        if isinstance(landmarks, Mapping):
            lm_known = {int(k): int(v) for k, v in landmarks.items()}
        else:
            arr = np.asarray(landmarks, dtype=np.int64).ravel()
            if arr.shape != (68,):
                raise DataError(f"{source}: landmarks must be 68 iBUG vertex indices, got {arr.shape}")
            lm_known = {k: int(v) for k, v in enumerate(arr) if v >= 0}
    if albedo_mean is not None:
        albedo_mean = np.asarray(albedo_mean, dtype=np.float64).reshape(n, 3)
    if albedo_basis is not None:
        albedo_basis = np.asarray(albedo_basis, dtype=np.float64).reshape(-1, n, 3)

    if crop is not None:
        keep, tri = crop_vertices(crop, n, tri)
        remap = np.full(n, -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        mean = mean[keep]
        id_b = id_b[:, keep]
        exp_b = exp_b[:, keep] if exp_b is not None else None
        albedo_mean = albedo_mean[keep] if albedo_mean is not None else None
        albedo_basis = albedo_basis[:, keep] if albedo_basis is not None else None
        uv = np.asarray(uv)[keep] if uv is not None else None
        lost = [k for k, v in lm_known.items() if remap[v] < 0]
        lm_known = {k: int(remap[v]) for k, v in lm_known.items() if remap[v] >= 0}
        if mirror is not None:
            m = remap[np.asarray(mirror)[keep]]
            mirror = m if (m >= 0).all() else None
        info["crop"] = f"{keep.size} of {n} vertices" + (f"; landmarks re-guessed: {lost}" if lost else "")
        n = keep.size

    mean_mm = mean * scale
    if centre:
        lo, hi = mean_mm.min(axis=0), mean_mm.max(axis=0)
        shift = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.0])
        mean_mm = mean_mm - shift
        info["centred_by_mm"] = shift.round(4).tolist()
    tri, flipped = _orient(mean_mm, tri)
    if flipped:
        info["triangles"] = "flipped to face +z"
    if mirror is None:
        from facerep.geometry.symmetry import nearest_mirror_map

        mirror = nearest_mirror_map(mean_mm, centre_x=float(mean_mm[:, 0].mean()) if not centre else 0.0)
        info["mirror"] = "nearest vertex of the x-mirrored mean"
    lm, filled = complete_landmarks(mean_mm, lm_known, np.asarray(mirror))
    if filled:
        info["landmarks_filled"] = filled
    if albedo_mean is None and albedo_basis is None:
        albedo_mean, albedo_basis, albedo_std = flat_albedo_prior(n)
        info["albedo"] = "flat skin tone + 3 global colour components (the file has no albedo)"
    elif albedo_basis is None:
        _, albedo_basis, albedo_std = flat_albedo_prior(n)

    return LinearFaceModel(
        name=name,
        mean=mean_mm,
        triangles=tri,
        id_basis=id_b,
        id_std=np.asarray(id_std, dtype=np.float64),
        exp_basis=exp_b,
        exp_std=None if exp_std is None else np.asarray(exp_std, dtype=np.float64),
        albedo_mean=albedo_mean,
        albedo_basis=albedo_basis,
        albedo_std=albedo_std,
        landmarks=lm,
        mirror=mirror,
        uv=uv,
        exp_names=exp_names,
        info={"source": source, **info},
    )


__all__ = [
    "UNIT_SCALE",
    "assemble_face_model",
    "complete_landmarks",
    "crop_vertices",
    "flat_albedo_prior",
    "guess_landmarks",
    "ibug_layout",
    "infer_units",
    "read_index_list",
    "unit_scale",
]
