"""300W-LP layout: images with fitted 3DMM parameters (the paper's labelled training rows).

Reads ``{AFW,HELEN,IBUG,LFPW}/NAME.jpg`` + ``NAME.mat`` under `root` (the ``*_Flip`` folders, mirrored
copies, are skipped as in the paper). From each .mat: ``Shape_Para`` (identity coefficients),
``Exp_Para`` (expression coefficients), ``pt2d`` (2 x 68 landmarks, 1-based pixels as MATLAB writes them)
and ``Pose_Para`` (1 x 7) when present. With ``landmarks: detect`` a ``.mat`` without ``pt2d`` is accepted
and the image's 68 landmarks are detected once and cached (`facerep.data.landmark_store`). Views of one
source photo share its name up to a trailing ``_N``: that source photo is the identity. ``meta.json`` at
the root names the face model the parameters belong to (absent: BFM); coefficients are cut to the run's
face model's component counts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.core.interfaces import FaceModel
from facerep.core.registry import Component, hookimpl
from facerep.core.types import DEFAULT_IMAGE_SIZE
from facerep.data.base import ImageFaceDataset, contiguous_ids
from facerep.data.imagefile import load_image
from facerep.data.landmark_store import LANDMARK_MODES, LandmarkStore, detect_missing
from facerep.data.matfile import load_mat
from facerep.data.meta import basis_sizes, check_face_model, mat_3dmm_params, read_meta
from facerep.data.sidecars import PTS_OFFSET, mask_sidecar, read_mask, read_pts

SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")
REQUIRED = ("Shape_Para", "Exp_Para", "pt2d")
_VIEW = re.compile(r"_\d+$")


def source_identity(name: str) -> str:
    """The source photo of a 300W-LP view: its name without the trailing ``_N`` view index."""
    return _VIEW.sub("", name)


class W300LP(ImageFaceDataset):
    """300W-LP images with 3DMM labels.

    Args:
        root: folder holding AFW/, HELEN/, IBUG/, LFPW/ (``*_Flip`` folders are ignored).
        image_size: side of the square output images (px).
        face_model: the run's face model (injected): checks meta.json and sets coefficient counts.
        on_bad_sample: "error" or "skip" (counted in ``skipped``).
        crop: "center" or "landmarks" (a square around the landmarks; the default, since real 300W-LP
            faces fill about half of the 450 px image).
        landmarks: "files" (``pt2d`` required) or "detect" (images without ``pt2d`` get detected landmarks).
        detector: the ``face_detector`` of ``landmarks: detect``.
        landmarks_dir: a landmark mirror written by ``facerep data landmarks --out``.
    Samples: image, mask, landmarks, identity (source photo, local 0..n-1), sample_id ("AFW/NAME.jpg"),
    id_params (K_id,), exp_params (K_exp,), pose_params (7,) (zeros when absent).
    """

    labelled = True
    world_part = "300w_lp"

    def __init__(
        self,
        root: str | Path,
        image_size: int = DEFAULT_IMAGE_SIZE,
        face_model: FaceModel | None = None,
        on_bad_sample: str = "error",
        crop: str = "landmarks",
        landmarks: str = "files",
        detector: str = "dlib",
        landmarks_dir: str | None = None,
    ) -> None:
        super().__init__(root, image_size, on_bad_sample, crop)
        if landmarks not in LANDMARK_MODES:
            raise DataError(f"w300lp landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
        required = REQUIRED if landmarks == "files" else tuple(k for k in REQUIRED if k != "pt2d")
        self.meta = read_meta(self.root)
        check_face_model(self.meta, face_model, self.root)
        sizes = basis_sizes(face_model)
        present = [s for s in SUBSETS if (self.root / s).is_dir()]
        if not present:
            raise DataError(f"{self.root}: no 300W-LP subset folder ({', '.join(SUBSETS)}) found")
        self.files: list[str] = []
        self.id_params: list[np.ndarray] = []
        self.exp_params: list[np.ndarray] = []
        self.pose_params: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []
        keys = []
        for subset in present:
            for image_path in sorted((self.root / subset).glob("*.jpg")):
                rel = f"{subset}/{image_path.name}"
                mat_path = image_path.with_suffix(".mat")
                try:
                    mat = load_mat(mat_path, required)
                    pt2d = np.asarray(mat["pt2d"], dtype=np.float32) if "pt2d" in mat else None
                    if pt2d is not None and pt2d.shape != (2, 68):
                        raise DataError(f"{mat_path}: pt2d has shape {pt2d.shape}, expected (2, 68)")
                    params = mat_3dmm_params(mat, sizes, mat_path)
                except DataError as exc:
                    self.bad(exc)
                    continue
                self.files.append(rel)
                self.id_params.append(params["id_params"])
                self.exp_params.append(params["exp_params"])
                self.pose_params.append(params["pose_params"])
                self.landmarks.append(None if pt2d is None else pt2d.T - PTS_OFFSET)
                keys.append(f"{subset}/{source_identity(image_path.stem)}")
        keys = self._detect_missing(LandmarkStore(self.root, landmarks_dir), detector, keys)
        if not self.files:
            raise DataError(f"{self.root}: no usable 300W-LP image")
        self.identities, self.source_names = contiguous_ids(keys)

    def _detect_missing(self, store: LandmarkStore, detector: str, keys: list[str]) -> list[str]:
        """Landmarks for the images whose .mat has no pt2d (``landmarks: detect``); drops those without a
        face (bad samples). Returns the identity keys of the images kept."""
        missing = [self.files[i] for i, lm in enumerate(self.landmarks) if lm is None]
        if not missing:
            return keys
        detect_missing(store, missing, detector, "300W-LP")
        kept = []
        for i, rel in enumerate(self.files):
            if self.landmarks[i] is None:
                pts = store.image_landmarks(rel)
                if pts is None:
                    self.bad(f"{self.root / rel}: no pt2d in its .mat and no face found by the detector")
                    continue
                self.landmarks[i] = read_pts(pts)
            kept.append(i)
        for name in ("files", "id_params", "exp_params", "pose_params", "landmarks"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in kept])
        return [keys[i] for i in kept]

    def labels(self, index: int) -> dict[str, Any]:
        """Sample `index`'s labels from memory (no image read): landmarks (68, 2) in the source
        image's pixels, identity, id_params, exp_params, pose_params."""
        return {
            "landmarks": self.landmarks[index],
            "identity": self.identities[index],
            "id_params": self.id_params[index],
            "exp_params": self.exp_params[index],
            "pose_params": self.pose_params[index],
        }

    def _load(self, index: int) -> dict[str, Any]:
        rel = self.files[index]
        image = load_image(self.root / rel)
        mask_path = mask_sidecar(self.root, rel)
        mask = read_mask(mask_path, image.size) if mask_path.is_file() else None
        return {
            "image": image,
            "landmarks": self.landmarks[index],
            "mask": mask,
            "identity": self.identities[index],
            "sample_id": rel,
            "id_params": self.id_params[index],
            "exp_params": self.exp_params[index],
            "pose_params": self.pose_params[index],
        }


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("dataset", "w300lp", W300LP, "300W-LP layout: 3DMM-labelled images (flips skipped)")]
