"""Face model ``sfm``: the Surrey Face Model as the eos library ships it.

Files (from eos's ``share/`` folder, https://github.com/patrikhuber/eos; the model is free for
non-commercial use, higher resolutions from https://cvssp.org/facemodel):

- ``sfm_shape_3448.bin``: a cereal binary archive of an eos ``MorphableModel`` (version 1): the shape
  ``PcaModel`` (mean (3N,), orthonormal basis (3N, K), eigenvalues (K,) = variances, triangle list), the
  colour ``PcaModel`` (empty for the shape-only model) and the per-vertex texture coordinates. Eigen
  matrices are written as int32 rows, int32 cols and column-major float32 data; vectors of arrays as a
  uint64 count then the items; all little endian.
- ``expression_blendshapes_3448.bin`` (optional): a cereal vector of eos ``Blendshape`` (name string,
  deformation (3N,)): anger, disgust, fear, happiness, sadness, surprise.
- ``ibug_to_sfm.txt``: TOML ``[landmark_mappings]`` of 1-based iBUG index to 0-based vertex (50 of 68).
- ``sfm_model_contours.json``: the right and left jaw-contour candidate vertices.
- ``sfm_reference_symmetry.txt`` (optional): 1-based symmetric vertex per line.

Filled in: the jaw landmarks (iBUG 1-8 and 10-17, 1-based) are the contour vertices spread evenly from
the top of each contour towards the chin; the inner mouth corners (61, 65) take the outer corners'
vertices; the albedo is a flat skin tone (the public model is shape-only). Units: mm. Identity std =
sqrt(eigenvalue); blendshape weights get the prior std ``default_exp_std``.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

from facerep.common.errors import DataError
from facerep.core.registry import Component, hookimpl
from facerep.data.face_model_assembly import assemble_face_model, read_index_list
from facerep.data.linear_face_model import LinearFaceModel

WHERE = "https://github.com/patrikhuber/eos (folder share/)"


class _Reader:
    """Sequential little-endian reader of a cereal binary archive, with errors naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.buf = path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"{path}: cannot read ({exc.strerror or exc}); the SFM files come from {WHERE}"
            ) from exc
        self.pos = 0

    def _take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise DataError(
                f"{self.path}: truncated or not an eos cereal archive (reading {what} at byte {self.pos})"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self._take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self._take(8, what))[0]

    def matrix(self, what: str) -> np.ndarray:
        rows, cols = struct.unpack("<ii", self._take(8, what))
        if rows < 0 or cols < 0 or rows * cols > 1 << 28:
            raise DataError(f"{self.path}: implausible {what} size {rows} x {cols} (not an eos archive?)")
        data = np.frombuffer(self._take(4 * rows * cols, what), dtype="<f4")
        return data.reshape(cols, rows).T.astype(np.float64)

    def triangles(self, what: str) -> np.ndarray:
        n = self.u64(what)
        if n > 1 << 26:
            raise DataError(f"{self.path}: implausible {what} count {n}")
        return np.frombuffer(self._take(12 * n, what), dtype="<i4").reshape(n, 3).astype(np.int64)

    def string(self, what: str) -> str:
        n = self.u64(what)
        return self._take(n, what).decode("utf-8", errors="replace")


def read_sfm_shape(path: str | Path) -> dict[str, np.ndarray]:
    """Read an eos MorphableModel archive: mean (N, 3), basis (K, N, 3), eigenvalues (K,), triangles, uv."""
    r = _Reader(Path(path))
    version = r.u32("the MorphableModel version")
    if version > 10:
        raise DataError(f"{path}: unexpected MorphableModel version {version} (not an eos cereal archive?)")
    mean = r.matrix("the shape mean")
    basis = r.matrix("the shape basis")
    ev = r.matrix("the shape eigenvalues").ravel()
    tri = r.triangles("the shape triangles")
    n3 = mean.shape[0]
    if n3 % 3 or basis.shape[0] != n3 or basis.shape[1] != ev.size:
        raise DataError(
            f"{path}: inconsistent shape model (mean {mean.shape}, basis {basis.shape}, "
            f"{ev.size} eigenvalues)"
        )
    # colour model (empty for the shape-only SFM), then texture coordinates
    col_mean = r.matrix("the colour mean")
    col_basis = r.matrix("the colour basis")
    col_ev = r.matrix("the colour eigenvalues").ravel()
    r.triangles("the colour triangles")
    n = n3 // 3
    out = {
        "mean": mean.reshape(n, 3),
        "basis": basis.T.reshape(-1, n, 3),
        "eigenvalues": ev,
        "triangles": tri,
    }
    if col_mean.size == n3 and col_basis.shape == (n3, col_ev.size):
        out["colour_mean"] = col_mean.reshape(n, 3)
        out["colour_basis"] = col_basis.T.reshape(-1, n, 3)
        out["colour_eigenvalues"] = col_ev
    if r.pos < len(r.buf):
        count = r.u64("the texture coordinates")
        if count == n:
            out["uv"] = np.frombuffer(r._take(16 * n, "the texture coordinates"), dtype="<f8").reshape(n, 2)
    return out


def read_sfm_blendshapes(path: str | Path, n: int) -> tuple[list[str], np.ndarray]:
    """Read an eos blendshape archive: (names, deformations (E, n, 3))."""
    r = _Reader(Path(path))
    count = r.u64("the blendshape count")
    if count > 1000:
        raise DataError(f"{path}: implausible blendshape count {count} (not an eos blendshape archive?)")
    names, shapes = [], []
    for i in range(count):
        names.append(r.string(f"blendshape {i} name"))
        d = r.matrix(f"blendshape {i} deformation").ravel()
        if d.size != 3 * n:
            raise DataError(f"{path}: blendshape {names[-1]!r} has {d.size} values, the shape model {3 * n}")
        shapes.append(d.reshape(n, 3))
    return names, np.stack(shapes) if shapes else np.zeros((0, n, 3))


def read_ibug_mapping(path: str | Path) -> dict[int, int]:
    """{0-based iBUG index: vertex} from eos's ``ibug_to_sfm.txt`` ([landmark_mappings] section)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DataError(f"{p}: cannot read the iBUG-to-SFM landmark mapping ({exc.strerror or exc})") from exc
    out: dict[int, int] = {}
    section = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        m = re.fullmatch(r"(\d+)\s*=\s*(\d+)", line)
        if m and section == "landmark_mappings":
            out[int(m.group(1)) - 1] = int(m.group(2))
    if not out:
        raise DataError(f"{p}: no '[landmark_mappings]' entries like '31 = 114' found")
    return out


def read_contours(path: str | Path) -> tuple[list[int], list[int]]:
    """(right, left) jaw-contour candidate vertices from ``sfm_model_contours.json``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        c = data["model_contour"]
        return [int(i) for i in c["right_contour"]], [int(i) for i in c["left_contour"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{p}: expected JSON {{'model_contour': {{'right_contour': [...], 'left_contour': [...]}}}}"
        ) from exc


def contour_landmarks(
    mean: np.ndarray, right: list[int], left: list[int], top_y: float | None = None
) -> dict[int, int]:
    """Jaw landmarks 0-7 (right) and 9-16 (left), 0-based: contour vertices spread from the top to the chin.

    Candidates above ``top_y`` (e.g. the outer eye corners' height) are ignored when 8 or more remain.
    """
    out = {}
    for side, ks in ((right, range(8)), (left, range(16, 8, -1))):
        idx = np.asarray(side, dtype=np.int64)
        if top_y is not None and (mean[idx, 1] <= top_y).sum() >= 8:
            idx = idx[mean[idx, 1] <= top_y]
        order = idx[np.argsort(-mean[idx, 1], kind="stable")]  # top (ear level) first
        picks = np.round(np.linspace(0, len(order) - 2, 8)).astype(int)
        for k, j in zip(ks, picks, strict=True):
            out[k] = int(order[j])
    return out


def load_sfm_face_model(
    folder: str | Path,
    shape_file: str = "sfm_shape_3448.bin",
    blendshapes_file: str | None = "expression_blendshapes_3448.bin",
    landmarks_file: str = "ibug_to_sfm.txt",
    contours_file: str | None = "sfm_model_contours.json",
    symmetry_file: str | None = "sfm_reference_symmetry.txt",
    default_exp_std: float = 0.5,
    centre: bool = True,
    crop: str | Path | None = None,
) -> LinearFaceModel:
    """Read the Surrey Face Model from eos's files in ``folder`` (see the module docstring)."""
    root = Path(folder)
    shape_path = root / shape_file
    if not shape_path.is_file():
        raise DataError(
            f"{shape_path}: Surrey Face Model not found (expected eos's {shape_file}; get it from {WHERE})"
        )
    s = read_sfm_shape(shape_path)
    n = s["mean"].shape[0]
    info: dict[str, object] = {"format": "eos cereal MorphableModel"}
    exp_names, exp_basis, exp_std = None, None, None
    if blendshapes_file and (root / blendshapes_file).is_file():
        exp_names, exp_basis = read_sfm_blendshapes(root / blendshapes_file, n)
        exp_std = np.full(len(exp_names), default_exp_std)
    else:
        info["expressions"] = "none (no blendshape file)"
    known = read_ibug_mapping(root / landmarks_file)
    known = {k: v for k, v in known.items() if 0 <= v < n}
    if contours_file and (root / contours_file).is_file():
        right, left = read_contours(root / contours_file)
        eyes = [known[k] for k in (36, 45) if k in known]
        top = float(s["mean"][eyes, 1].mean()) if eyes else None
        known = {**contour_landmarks(s["mean"], right, left, top), **known}
    for inner, outer in ((60, 48), (64, 54)):  # inner mouth corners: the outer corners' vertices
        if inner not in known and outer in known:
            known[inner] = known[outer]
    mirror = None
    if symmetry_file and (root / symmetry_file).is_file():
        sym = read_index_list(root / symmetry_file, one_based=True)
        if 0 < sym.size <= n and sym.min() >= 0 and sym.max() < sym.size:
            # the list covers the reference mesh (the first vertices); the rest: nearest mirrored vertex
            from facerep.geometry.symmetry import nearest_mirror_map

            mirror = nearest_mirror_map(s["mean"])
            mirror[: sym.size] = sym
            info["mirror"] = (
                f"symmetry list for the first {sym.size} vertices, nearest mirrored vertex beyond"
            )
    uv = s.get("uv")
    if uv is not None:
        uv = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]])  # eos: v down; facerep: v up
    return assemble_face_model(
        "sfm",
        source=str(shape_path),
        mean=s["mean"],
        triangles=s["triangles"],
        id_basis=s["basis"],
        id_std=np.sqrt(np.clip(s["eigenvalues"], 0, None)),
        exp_basis=exp_basis,
        exp_std=exp_std,
        exp_names=exp_names,
        albedo_mean=s["colour_mean"] / 255.0 if "colour_mean" in s else None,
        albedo_basis=s["colour_basis"] / 255.0 if "colour_basis" in s else None,
        albedo_std=np.sqrt(s["colour_eigenvalues"]) if "colour_eigenvalues" in s else None,
        landmarks=known,
        mirror=mirror,
        uv=uv,
        units="mm",
        centre=centre,
        crop=None if crop is None else read_index_list(crop),
        info=info,
    )


def sfm(
    path: str = "",
    shape_file: str = "sfm_shape_3448.bin",
    blendshapes_file: str | None = "expression_blendshapes_3448.bin",
    default_exp_std: float = 0.5,
    centre: bool = True,
    crop: str | None = None,
) -> LinearFaceModel:
    """The Surrey Face Model (eos files).

    Args:
        path: folder with eos's ``share/`` files (shape model, blendshapes, ibug_to_sfm.txt, contours,
            symmetry list).
        shape_file: the shape model archive in that folder.
        blendshapes_file: the expression blendshapes archive (None: no expressions).
        default_exp_std: prior std of the blendshape weights.
        centre: move the mean's (x, y) bounding-box centre to the origin.
        crop: optional 0-based vertex index list file of the vertices to keep.
    """
    if not path:
        raise DataError(f"sfm face model: set face_model.path to the folder with eos's SFM files ({WHERE})")
    return load_sfm_face_model(
        path, shape_file, blendshapes_file, default_exp_std=default_exp_std, centre=centre, crop=crop
    )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component("facemodel", "sfm", sfm, "Surrey Face Model (eos cereal files), mm, 50+ iBUG landmarks")
    ]


__all__ = ["load_sfm_face_model", "read_ibug_mapping", "read_sfm_blendshapes", "read_sfm_shape", "sfm"]
