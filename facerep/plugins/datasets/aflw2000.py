"""AFLW2000-3D layout: ``imageNNNNN.jpg`` + ``imageNNNNN.mat`` with ``pt3d_68`` and fitted 3DMM params.

An evaluation set: each image is its own identity. Landmarks are the x, y rows of ``pt3d_68`` (3 x 68,
1-based image pixels as MATLAB writes them); ``Shape_Para`` / ``Exp_Para`` (BFM unless meta.json says
otherwise) become id_params / exp_params when present. With ``landmarks: detect`` a ``.mat`` without
``pt3d_68`` is accepted and the image's 68 landmarks are detected once and cached
(`facerep.data.landmark_store`); its ``landmarks_3d`` then has z = NaN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.core.interfaces import FaceModel
from facerep.core.registry import Component, hookimpl
from facerep.core.types import DEFAULT_IMAGE_SIZE
from facerep.data.base import ImageFaceDataset
from facerep.data.imagefile import load_image
from facerep.data.landmark_store import LANDMARK_MODES, LandmarkStore, detect_missing
from facerep.data.matfile import load_mat
from facerep.data.meta import basis_sizes, check_face_model, mat_3dmm_params, read_meta
from facerep.data.sidecars import PTS_OFFSET, mask_sidecar, read_mask, read_pts

REQUIRED = ("pt3d_68", "Shape_Para", "Exp_Para")


class AFLW2000(ImageFaceDataset):
    """AFLW2000-3D images with 68 3D landmarks and BFM parameters.

    Args:
        root: folder with the image*.jpg / image*.mat pairs.
        image_size: side of the square output images (px).
        face_model: the run's face model (injected) or None (no check, coefficients kept whole).
        on_bad_sample: "error" or "skip".
        crop: "landmarks" (default) or "center".
        landmarks: "files" (``pt3d_68`` required) or "detect" (images without it get detected landmarks).
        detector: the ``face_detector`` of ``landmarks: detect``.
        landmarks_dir: a landmark mirror written by ``facerep data landmarks --out``.
    Samples: image, mask, landmarks (68, 2), identity, sample_id, id_params, exp_params, pose_params (7,),
    landmarks_3d (68, 3) (x, y in the source image's pixels, z as stored).
    """

    labelled = True

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
            raise DataError(f"aflw2000 landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
        required = REQUIRED if landmarks == "files" else tuple(k for k in REQUIRED if k != "pt3d_68")
        self.meta = read_meta(self.root)
        check_face_model(self.meta, face_model, self.root)
        sizes = basis_sizes(face_model)
        self.files: list[str] = []
        self.records: list[dict[str, np.ndarray]] = []
        for image_path in sorted(self.root.glob("*.jpg")):
            mat_path = image_path.with_suffix(".mat")
            try:
                mat = load_mat(mat_path, required)
                pt3d = np.asarray(mat["pt3d_68"], dtype=np.float32) if "pt3d_68" in mat else None
                if pt3d is not None and pt3d.shape != (3, 68):
                    raise DataError(f"{mat_path}: pt3d_68 has shape {pt3d.shape}, expected (3, 68)")
                record = mat_3dmm_params(mat, sizes, mat_path)
            except DataError as exc:
                self.bad(exc)
                continue
            if pt3d is not None:
                pts = pt3d.T.copy()
                pts[:, :2] -= PTS_OFFSET
                record["landmarks_3d"] = pts
            self.files.append(image_path.name)
            self.records.append(record)
        missing = [
            name for name, rec in zip(self.files, self.records, strict=True) if "landmarks_3d" not in rec
        ]
        if missing:
            store = LandmarkStore(self.root, landmarks_dir)
            detect_missing(store, missing, detector, "AFLW2000-3D")
            kept = []
            for name, rec in zip(self.files, self.records, strict=True):
                if "landmarks_3d" not in rec:
                    pts = store.image_landmarks(name)
                    if pts is None:
                        self.bad(
                            f"{self.root / name}: no pt3d_68 in its .mat and no face found by the detector"
                        )
                        continue
                    flat = read_pts(pts)
                    rec["landmarks_3d"] = np.concatenate([flat, np.full((68, 1), np.nan, np.float32)], axis=1)
                kept.append((name, rec))
            self.files = [n for n, _ in kept]
            self.records = [r for _, r in kept]
        if not self.files:
            raise DataError(f"{self.root}: no usable AFLW2000-3D image/.mat pair")
        self.identities = list(range(len(self.files)))

    def labels(self, index: int) -> dict[str, Any]:
        """Sample `index`'s labels from memory (no image read): landmarks (68, 2) in the source
        image's pixels, identity, id_params, exp_params, pose_params."""
        rec = self.records[index]
        return {
            "landmarks": rec["landmarks_3d"][:, :2],
            "identity": index,
            "id_params": rec["id_params"],
            "exp_params": rec["exp_params"],
            "pose_params": rec["pose_params"],
        }

    def _load(self, index: int) -> dict[str, Any]:
        name = self.files[index]
        image = load_image(self.root / name)
        rec = self.records[index]
        mask_path = mask_sidecar(self.root, name)
        mask = read_mask(mask_path, image.size) if mask_path.is_file() else None
        return {
            "image": image,
            "landmarks": rec["landmarks_3d"][:, :2],
            "mask": mask,
            "identity": index,
            "sample_id": name,
            "id_params": rec["id_params"],
            "exp_params": rec["exp_params"],
            "pose_params": rec["pose_params"],
            "landmarks_3d": rec["landmarks_3d"],
        }


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("dataset", "aflw2000", AFLW2000, "AFLW2000-3D layout: images + pt3d_68 + BFM params")]
