"""Face model ``npz``: a documented generic NumPy format for any linear face model.

The file is a NumPy ``.npz`` archive with these keys (N vertices, F triangles):

============== =================== ============================================================
key            shape               meaning
============== =================== ============================================================
mean           (N, 3)              mean shape (required)
triangles      (F, 3)              0-based vertex indices (required), ideally counter-clockwise from +z
id_basis       (K, N, 3)/(K, 3N)   identity offsets per unit coefficient (required)
id_std         (K,)                prior std of the identity coefficients (default ``default_id_std``)
exp_basis      (E, N, 3)/(E, 3N)   expression offsets per unit coefficient (optional)
exp_std        (E,)                prior std of the expression coefficients (default ``default_exp_std``)
exp_names      (E,) str            expression names (optional)
albedo_mean    (N, 3)              mean albedo in [0, 1] (optional; a flat skin tone otherwise)
albedo_basis   (T, N, 3)/(T, 3N)   albedo offsets per unit coefficient (optional)
albedo_std     (T,)                their prior std (optional)
landmarks68    (68,)               iBUG-68 vertex indices, -1 where undefined (alias ``landmarks``)
mirror         (N,)                left-right vertex map (optional; nearest mirrored vertex otherwise)
uv             (N, 2)              per-vertex texture coordinates in [0, 1] (optional)
units          () str              'mm', 'cm', 'dm', 'm' or 'um' (optional; the recipe's ``units`` wins;
                                   guessed from the face width when neither says)
============== =================== ============================================================

Axes: x to the subject's left, y up, z towards the viewer. Missing pieces are filled as documented in
`facerep.data.face_model_assembly`. ICT-FaceKit's face region converted to this format is read with
``units: cm`` (its identity coefficients are N(0, 1), its blendshape weights lie in [0, 1]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerep.common.errors import DataError
from facerep.core.registry import Component, hookimpl
from facerep.data.face_model_assembly import assemble_face_model, read_index_list
from facerep.data.linear_face_model import LinearFaceModel

REQUIRED = ("mean", "triangles", "id_basis")


def load_npz_face_model(
    path: str | Path,
    units: str | None = None,
    centre: bool = True,
    default_id_std: float = 1.0,
    default_exp_std: float = 0.5,
    crop: str | Path | None = None,
    name: str = "npz",
) -> LinearFaceModel:
    """Read a face model in the generic npz format (see the module docstring)."""
    p = Path(path)
    if not str(path):
        raise DataError(
            "npz face model: no file given; set face_model.path to a .npz file "
            "(format: see facerep.plugins.facemodels.npz)"
        )
    if not p.is_file():
        raise DataError(
            f"{p}: npz face model not found (expected a .npz with keys {', '.join(REQUIRED)}, ...)"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not a readable .npz archive ({exc})") from exc
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{p}: npz face model lacks {missing}; it has {sorted(arrays)}")
    file_units = str(arrays["units"]) if "units" in arrays else None
    id_basis = arrays["id_basis"]
    k_id = id_basis.shape[0]
    exp_basis = arrays.get("exp_basis")
    k_exp = 0 if exp_basis is None else exp_basis.shape[0]
    lm = arrays.get("landmarks68", arrays.get("landmarks"))
    names = [str(s) for s in arrays["exp_names"]] if "exp_names" in arrays and k_exp else None
    return assemble_face_model(
        name,
        source=str(p),
        mean=arrays["mean"],
        triangles=arrays["triangles"],
        id_basis=id_basis,
        id_std=arrays.get("id_std", np.full(k_id, default_id_std)),
        exp_basis=exp_basis,
        exp_std=arrays.get("exp_std", np.full(k_exp, default_exp_std)) if k_exp else None,
        exp_names=names,
        albedo_mean=arrays.get("albedo_mean"),
        albedo_basis=arrays.get("albedo_basis"),
        albedo_std=arrays.get("albedo_std"),
        landmarks=lm,
        mirror=arrays.get("mirror"),
        uv=arrays.get("uv"),
        units=units or file_units,
        centre=centre,
        crop=None if crop is None else read_index_list(crop),
    )


def save_npz_face_model(path: str | Path, model: LinearFaceModel) -> Path:
    """Write any `LinearFaceModel` in the generic npz format (units 'mm')."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        p,
        mean=model.mean,
        triangles=model.triangles,
        id_basis=model.id_basis,
        id_std=model.id_std,
        exp_basis=model.exp_basis,
        exp_std=model.exp_std,
        exp_names=np.array(model.exp_names, dtype=str),
        albedo_mean=model.albedo_mean,
        albedo_basis=model.albedo_basis,
        albedo_std=model.albedo_std,
        landmarks68=model.landmarks,
        mirror=model.mirror,
        uv=model.uv,
        units=np.array("mm"),
    )
    return p


def npz(
    path: str = "",
    units: str | None = None,
    centre: bool = True,
    default_id_std: float = 1.0,
    default_exp_std: float = 0.5,
    crop: str | None = None,
) -> LinearFaceModel:
    """A linear face model from the generic npz format.

    Args:
        path: the ``.npz`` file.
        units: length unit of the file ('mm', 'cm', 'dm', 'm', 'um'); overrides the file's ``units``.
        centre: move the mean's (x, y) bounding-box centre to the origin.
        default_id_std: identity prior std when the file has no ``id_std``.
        default_exp_std: expression prior std when the file has no ``exp_std``.
        crop: optional vertex index list file (text or .npy, 0-based) of the vertices to keep.
    """
    return load_npz_face_model(path, units, centre, default_id_std, default_exp_std, crop)


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("facemodel", "npz", npz, "any linear face model in the documented generic .npz format")]


__all__ = ["load_npz_face_model", "npz", "save_npz_face_model"]
