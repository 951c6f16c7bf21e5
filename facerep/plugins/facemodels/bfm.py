"""Face model ``bfm``: the Basel Face Model 2009 and the files 3DMM-fitting projects derive from it.

Three layouts are read (chosen from the file's keys):

1. ``01_MorphableModel.mat`` (BFM 2009, https://faces.dmi.unibas.ch/bfm/ after registration): ``shapeMU``
   (3N, 1), ``shapePC`` (3N, 199) orthonormal, ``shapeEV`` (199, 1) standard deviations, ``texMU`` /
   ``texPC`` / ``texEV`` (colour, 0..255), ``tl`` (F, 3) 1-based; micrometres. Expressions come from a
   FaceWarehouse-derived ``Exp_Pca.bin`` (Deep3DFaceRecon / 3DDFA: int32 K, float32 mean (3M,), float32
   basis (K, 3M), same units; M = 53,215) with its standard deviations ``std_exp.txt`` and, when
   M != N, the 1-based index ``trimIndex`` of ``BFM_exp_idx.mat`` that selects the M vertices.
2. ``BFM_model_front.mat`` (Deep3DFaceRecon's front face, 35,709 vertices): ``meanshape`` (1, 3N),
   ``idBase`` (3N, 80), ``exBase`` (3N, 64) (bases already multiplied by their std: coefficients are
   N(0, 1)), ``meantex`` (1, 3N), ``texBase`` (3N, 80), ``tri`` (F, 3) 1-based, ``keypoints`` (1, 68)
   1-based; decimetres (micrometres / 1e5).
3. ``bfm_noneck_v3.pkl`` (3DDFA): ``u`` (3N, 1), ``w_shp`` (3N, 40), ``w_exp`` (3N, 10), ``tri`` (or
   3DDFA_V2's rebuilt ``configs/tri.pkl`` via ``tri_path``),
   ``keypoints`` (204,) indices into the flattened (x, y, z) array; micrometres. The coefficient std is
   read from 3DDFA's ``param_mean_std_62d_120x120.pkl`` (``std``: 12 pose, 40 shape, 10 expression)
   when given; otherwise a heuristic prior (1-sigma RMS displacement 3 mm / sqrt(k+1) for identity and
   2 mm / sqrt(k+1) for expression) is used and recorded in ``info``.

Everything is converted to millimetres. ``crop`` keeps a vertex index list (the paper removes the neck
and ears: 53,215 -> 37,202 vertices). Landmarks missing from a file are guessed as documented in
`facerep.data.face_model_assembly`. Pickles are read with an unpickler that only admits numpy arrays
and plain containers.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.core.registry import Component, hookimpl
from facerep.data.face_model_assembly import UNIT_SCALE, assemble_face_model, read_index_list
from facerep.data.linear_face_model import LinearFaceModel

WHERE_BFM = "the Basel Face Model 2009 from https://faces.dmi.unibas.ch/bfm/ (registration required)"
WHERE_EXP = "Exp_Pca.bin by Guo et al. (https://github.com/Juyong/3DFace), as used by Deep3DFaceRecon"


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path}: not found; expected {WHERE_BFM} or a file derived from it")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError as exc:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it with -v7") from exc
    except Exception as exc:  # scipy raises MatReadError, ValueError, IndexError, ... on junk
        raise DataError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from exc


class _SafeUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes and builtin containers only (model files are data, not code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a face-model pickle")


def load_pickle(path: Path) -> Any:
    """Read a pickle of numpy arrays safely; DataError naming the file otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    try:
        return _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a pickle of numpy arrays ({exc})") from exc


def _key(d: dict[str, Any], key: str, path: Path) -> np.ndarray:
    if key not in d:
        present = sorted(k for k in d if not k.startswith("__"))
        raise DataError(f"{path}: missing key {key!r} (found {present})")
    return np.asarray(d[key])


def _columns(basis: np.ndarray, n: int, k: int | None) -> np.ndarray:
    """(3N, K) column basis -> (K, N, 3), first k components."""
    b = np.asarray(basis, dtype=np.float64)
    if b.shape[0] != 3 * n and b.shape[1] == 3 * n:
        b = b.T
    b = b[:, :k] if k else b
    return b.T.reshape(-1, n, 3)


def read_exp_pca(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Exp_Pca.bin: (mean (M, 3), basis (K, M, 3)) in the file's units (BFM micrometres)."""
    if not path.is_file():
        raise DataError(f"{path}: expression basis not found; expected {WHERE_EXP}")
    buf = path.read_bytes()
    if len(buf) < 4:
        raise DataError(f"{path}: too short for Exp_Pca.bin (int32 K, float32 mean (3M,), basis (K, 3M))")
    k = int(np.frombuffer(buf, dtype="<i4", count=1)[0])
    floats = (len(buf) - 4) // 4
    if k <= 0 or floats % (k + 1) or (len(buf) - 4) % 4 or (floats // (k + 1)) % 3:
        raise DataError(
            f"{path}: size {len(buf)} bytes does not fit Exp_Pca.bin with K={k} "
            "(int32 K, float32 mean (3M,), float32 basis (K, 3M))"
        )
    m3 = floats // (k + 1)
    data = np.frombuffer(buf, dtype="<f4", offset=4).astype(np.float64)
    return data[:m3].reshape(-1, 3), data[m3:].reshape(k, -1, 3)


def _heuristic_std(basis: np.ndarray, rms_mm: float, scale: float) -> np.ndarray:
    rms = np.sqrt((basis**2).sum(-1).mean(-1)) * scale  # mm per unit coefficient
    k = np.arange(basis.shape[0])
    return rms_mm / np.sqrt(k + 1.0) / np.maximum(rms, 1e-12)


def load_bfm_face_model(
    path: str | Path,
    exp_path: str | Path | None = None,
    exp_std_path: str | Path | None = None,
    exp_index_path: str | Path | None = None,
    param_std_path: str | Path | None = None,
    landmarks_path: str | Path | None = None,
    crop: str | Path | None = None,
    crop_one_based: bool = False,
    n_id: int | None = None,
    n_exp: int | None = None,
    n_tex: int | None = None,
    centre: bool = True,
    tri_path: str | Path | None = None,
) -> LinearFaceModel:
    """Read a BFM-family file (see the module docstring) into a `LinearFaceModel` in mm."""
    p = Path(path)
    info: dict[str, Any] = {}
    exp_names = None
    landmarks: dict[int, int] | None = None
    albedo_mean = albedo_basis = albedo_std = None
    if p.suffix.lower() == ".pkl":
        d = load_pickle(p)
        if not isinstance(d, dict):
            raise DataError(f"{p}: expected a dict with keys u, w_shp, w_exp, tri, keypoints")
        mean = _key(d, "u", p).astype(np.float64).reshape(-1, 3)
        n = mean.shape[0]
        id_basis = _columns(_key(d, "w_shp", p), n, n_id)
        exp_basis = _columns(d["w_exp"], n, n_exp) if "w_exp" in d else None
        if tri_path:  # 3DDFA_V2 ships the rebuilt triangles of bfm_noneck_v3 in configs/tri.pkl
            tri = np.asarray(load_pickle(Path(tri_path))).astype(np.int64)
        elif "tri" in d:
            tri = np.asarray(d["tri"]).astype(np.int64)
        else:
            raise DataError(f"{p}: no 'tri' key; give tri_path (3DDFA_V2's configs/tri.pkl)")
        tri = tri.T if tri.shape[0] == 3 and tri.shape[1] != 3 else tri
        tri = tri - 1 if tri.min() == 1 else tri
        if tri.max() >= n:
            raise DataError(
                f"{tri_path or p}: triangles reference vertex {int(tri.max())} but the model has {n} "
                "vertices; for bfm_noneck_v3.pkl give tri_path (3DDFA_V2's configs/tri.pkl)"
            )
        if "keypoints" in d:
            kp = np.asarray(d["keypoints"]).astype(np.int64).ravel()
            kp = kp[::3] // 3 if kp.size == 204 else kp
            landmarks = {k: int(v) for k, v in enumerate(kp[:68])}
        units, fmt = "um", "3DDFA bfm_noneck pickle"
        scale = UNIT_SCALE[units]
        if param_std_path:
            ps = load_pickle(Path(param_std_path))
            std = np.asarray(
                ps["std"] if isinstance(ps, dict) and "std" in ps else ps, dtype=np.float64
            ).ravel()
            k_shp, k_exp = id_basis.shape[0], 0 if exp_basis is None else exp_basis.shape[0]
            off = std.size - 40 - 10 if std.size >= 62 else 0
            id_std = std[off : off + k_shp]
            exp_std = std[off + 40 : off + 40 + k_exp] if exp_basis is not None else None
            info["prior"] = f"std from {param_std_path}"
        else:
            id_std = _heuristic_std(id_basis, 3.0, scale)
            exp_std = _heuristic_std(exp_basis, 2.0, scale) if exp_basis is not None else None
            info["prior"] = "heuristic std (set param_std_path to 3DDFA's param_mean_std pickle)"
    else:
        d = _loadmat(p)
        if "shapeMU" in d:
            fmt, units = "BFM 2009 01_MorphableModel.mat", "um"
            mean = _key(d, "shapeMU", p).astype(np.float64).reshape(-1, 3)
            n = mean.shape[0]
            id_basis = _columns(_key(d, "shapePC", p), n, n_id)
            id_std = _key(d, "shapeEV", p).astype(np.float64).ravel()[: id_basis.shape[0]]
            tri = _key(d, "tl", p).astype(np.int64) - 1
            if "texMU" in d and "texPC" in d and "texEV" in d:
                albedo_mean = np.asarray(d["texMU"], dtype=np.float64).reshape(-1, 3) / 255.0
                albedo_basis = _columns(d["texPC"], n, n_tex) / 255.0
                albedo_std = np.asarray(d["texEV"], dtype=np.float64).ravel()[: albedo_basis.shape[0]]
            exp_basis, exp_std = None, None
            if exp_path:
                exp_mean, exp_b = read_exp_pca(Path(exp_path))
                m = exp_mean.shape[0]
                if m != n:
                    if not exp_index_path:
                        raise DataError(
                            f"{exp_path}: expression basis has {m} vertices, {p} has {n}; "
                            "give exp_index_path (BFM_exp_idx.mat with 'trimIndex', 1-based) to select them"
                        )
                    idx = _key(_loadmat(Path(exp_index_path)), "trimIndex", Path(exp_index_path)).ravel() - 1
                    if idx.size != m or idx.min() < 0 or idx.max() >= n:
                        raise DataError(f"{exp_index_path}: trimIndex must list {m} vertices of {n}")
                    idx = idx.astype(np.int64)
                    remap = np.full(n, -1, dtype=np.int64)
                    remap[idx] = np.arange(m)
                    tri = remap[tri]
                    tri = tri[(tri >= 0).all(axis=1)]
                    mean, id_basis = mean[idx], id_basis[:, idx]
                    if albedo_mean is not None:
                        albedo_mean, albedo_basis = albedo_mean[idx], albedo_basis[:, idx]
                    n = m
                    info["trim"] = f"{m} vertices selected by {exp_index_path}"
                exp_basis = exp_b[:n_exp] if n_exp else exp_b
                if exp_std_path:
                    exp_std = read_index_list_float(Path(exp_std_path))[: exp_basis.shape[0]]
                else:
                    exp_std = _heuristic_std(exp_basis, 2.0, UNIT_SCALE[units])
                    info["exp_prior"] = "heuristic std (set exp_std_path to std_exp.txt)"
        elif "meanshape" in d:
            fmt, units = "Deep3DFaceRecon BFM_model_front.mat", "dm"
            mean = _key(d, "meanshape", p).astype(np.float64).reshape(-1, 3)
            n = mean.shape[0]
            id_basis = _columns(_key(d, "idBase", p), n, n_id)
            id_std = np.ones(id_basis.shape[0])
            exp_basis = _columns(d["exBase"], n, n_exp) if "exBase" in d else None
            exp_std = np.ones(exp_basis.shape[0]) if exp_basis is not None else None
            tri = _key(d, "tri", p).astype(np.int64) - 1
            if "meantex" in d and "texBase" in d:
                albedo_mean = np.asarray(d["meantex"], dtype=np.float64).reshape(-1, 3) / 255.0
                albedo_basis = _columns(d["texBase"], n, n_tex) / 255.0
                albedo_std = np.ones(albedo_basis.shape[0])
            if "keypoints" in d:
                kp = np.asarray(d["keypoints"]).astype(np.int64).ravel() - 1
                landmarks = {k: int(v) for k, v in enumerate(kp[:68])}
        else:
            present = sorted(k for k in d if not k.startswith("__"))
            raise DataError(
                f"{p}: not a BFM file: expected 'shapeMU', 'shapePC', 'shapeEV', 'tl' "
                "(01_MorphableModel.mat) or 'meanshape', 'idBase', 'tri' (BFM_model_front.mat); "
                f"found {present}"
            )
    if landmarks_path:
        lm = read_index_list(landmarks_path)
        if lm.size != 68:
            raise DataError(
                f"{landmarks_path}: expected 68 vertex indices (iBUG order, 0-based), got {lm.size}"
            )
        landmarks = {k: int(v) for k, v in enumerate(lm)}
    info["format"] = fmt
    return assemble_face_model(
        "bfm",
        source=str(p),
        mean=mean,
        triangles=tri,
        id_basis=id_basis,
        id_std=id_std,
        exp_basis=exp_basis,
        exp_std=exp_std,
        exp_names=exp_names,
        albedo_mean=albedo_mean,
        albedo_basis=albedo_basis,
        albedo_std=albedo_std,
        landmarks=landmarks,
        units=units,
        centre=centre,
        crop=None if crop is None else read_index_list(crop, one_based=crop_one_based),
        info=info,
    )


def read_index_list_float(path: Path) -> np.ndarray:
    """Numbers from a whitespace-separated text file (e.g. std_exp.txt)."""
    try:
        return np.array([float(t) for t in path.read_text().split()], dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: expected whitespace-separated numbers ({exc})") from exc


def bfm(
    path: str = "",
    exp_path: str | None = None,
    exp_std_path: str | None = None,
    exp_index_path: str | None = None,
    param_std_path: str | None = None,
    landmarks_path: str | None = None,
    crop: str | None = None,
    crop_one_based: bool = False,
    n_id: int | None = None,
    n_exp: int | None = None,
    n_tex: int | None = None,
    centre: bool = True,
    tri_path: str | None = None,
) -> LinearFaceModel:
    """The Basel Face Model (2009 .mat, Deep3DFaceRecon's front .mat or 3DDFA's .pkl), in mm.

    Args:
        path: ``01_MorphableModel.mat``, ``BFM_model_front.mat`` or ``bfm_noneck_v3.pkl``.
        exp_path: ``Exp_Pca.bin`` (for 01_MorphableModel.mat).
        exp_std_path: ``std_exp.txt``, the expression standard deviations.
        exp_index_path: ``BFM_exp_idx.mat`` (``trimIndex``) when Exp_Pca has fewer vertices.
        param_std_path: 3DDFA's ``param_mean_std_62d_120x120.pkl`` (for the .pkl model).
        landmarks_path: 68 0-based vertex indices in iBUG order (text or .npy), overriding the file's.
        crop: vertex index list (text or .npy) of the face region to keep.
        crop_one_based: the crop list is 1-based (MATLAB).
        n_id, n_exp, n_tex: keep only the first components.
        centre: move the mean's (x, y) bounding-box centre to the origin.
        tri_path: triangles pickle for the 3DDFA model (3DDFA_V2's ``configs/tri.pkl``).
    """
    if not path:
        raise DataError(
            f"bfm face model: set face_model.path to {WHERE_BFM} (01_MorphableModel.mat) or a derived file"
        )
    return load_bfm_face_model(
        path,
        exp_path,
        exp_std_path,
        exp_index_path,
        param_std_path,
        landmarks_path,
        crop,
        crop_one_based,
        n_id,
        n_exp,
        n_tex,
        centre,
        tri_path,
    )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "facemodel",
            "bfm",
            bfm,
            "Basel Face Model 2009 (+ Exp_Pca), BFM_model_front.mat or 3DDFA pickle, in mm",
        )
    ]


__all__ = ["bfm", "load_bfm_face_model", "load_pickle", "read_exp_pca"]
