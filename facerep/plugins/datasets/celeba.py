"""CelebA layout: an identity-labelled photo collection (the paper's unlabelled training rows).

Reads ``img_align_celeba/NNNNNN.jpg``, ``identity_CelebA.txt`` ("000001.jpg 2880" per line) and
``list_eval_partition.txt`` ("000001.jpg 0": 0 train, 1 val, 2 test) under `root`, plus the
preprocessing sidecars of `facerep.data.sidecars` (68 landmarks required, masks optional: without one
the landmark hull is used). Landmarks are read from the root or a landmark mirror
(`facerep.data.landmark_store`: ``facerep data landmarks`` writes one); with ``landmarks: detect`` the
missing ones are detected once (progress bar) and cached in the mirror, so a real CelebA download trains
without hand-made files. Works the same for the synthetic world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerep.common.errors import DataError
from facerep.core.registry import Component, hookimpl
from facerep.core.types import DEFAULT_IMAGE_SIZE
from facerep.data.base import ImageFaceDataset, contiguous_ids
from facerep.data.imagefile import load_image
from facerep.data.landmark_store import LANDMARK_MODES, LandmarkStore, detect_missing
from facerep.data.sidecars import landmark_sidecar, mask_sidecar, read_mask, read_pts

IMAGE_DIR = "img_align_celeba"
SPLITS = {"train": "0", "val": "1", "test": "2"}


def _read_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (a CelebA root needs it)")
    table = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{number}: expected 'NAME VALUE', found {line!r}")
        table[parts[0]] = parts[1]
    return table


class CelebA(ImageFaceDataset):
    """CelebA photos with identity labels (unlabelled for 3DMM purposes).

    Args:
        root: folder holding img_align_celeba/, identity_CelebA.txt, list_eval_partition.txt.
        image_size: side of the square output images (px).
        split: "train", "val", "test" or "all".
        on_bad_sample: "error" (raise `DataError` naming the file) or "skip" (count in ``skipped``).
        crop: "center" (the largest centred square) or "landmarks" (a square around the landmarks).
        landmarks: "files" (sidecars only) or "detect" (detect the missing ones with `detector`, cached).
        detector: the ``face_detector`` of ``landmarks: detect``.
        landmarks_dir: a landmark mirror written by ``facerep data landmarks --out`` (the cache mirror of
            the root is always searched).
    Samples: image (3, S, S), mask (1, S, S), landmarks (68, 2) px, identity (local 0..n-1),
    sample_id ("img_align_celeba/000001.jpg"), celeba_identity (the file's identity number).
    """

    labelled = False
    world_part = "celeba"

    def __init__(
        self,
        root: str | Path,
        image_size: int = DEFAULT_IMAGE_SIZE,
        split: str = "train",
        on_bad_sample: str = "error",
        crop: str = "center",
        landmarks: str = "files",
        detector: str = "dlib",
        landmarks_dir: str | None = None,
    ) -> None:
        super().__init__(root, image_size, on_bad_sample, crop)
        if landmarks not in LANDMARK_MODES:
            raise DataError(f"celeba landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
        store = LandmarkStore(self.root, landmarks_dir)
        if split not in (*SPLITS, "all"):
            raise DataError(f"celeba split must be one of {[*SPLITS, 'all']}, got {split!r}")
        identity = _read_table(self.root / "identity_CelebA.txt")
        names = sorted(identity)
        if split != "all":
            partition = _read_table(self.root / "list_eval_partition.txt")
            names = [n for n in names if partition.get(n) == SPLITS[split]]
        self.names: list[str] = []
        self.landmark_files: list[Path] = []
        keys = []
        present = []
        for name in names:
            rel = f"{IMAGE_DIR}/{name}"
            if not (self.root / rel).is_file():
                self.bad(f"{self.root / rel}: image listed in identity_CelebA.txt not found")
                continue
            present.append(name)
        if landmarks == "detect":
            detect_missing(store, [f"{IMAGE_DIR}/{n}" for n in present], detector, "CelebA")
        for name in present:
            rel = f"{IMAGE_DIR}/{name}"
            pts = store.image_landmarks(rel)
            if pts is None:
                why = (
                    "no face found by the detector"
                    if store.image_noface(rel)
                    else f"run `facerep data landmarks {self.root}`, or give the source `landmarks: detect`"
                )
                self.bad(f"{landmark_sidecar(self.root, rel)}: 68-landmark sidecar not found ({why})")
                continue
            try:
                keys.append(int(identity[name]))
            except ValueError:
                self.bad(f"{self.root / 'identity_CelebA.txt'}: identity of {name} is not an integer")
                continue
            self.names.append(name)
            self.landmark_files.append(pts)
        if not self.names:
            raise DataError(f"{self.root}: no usable CelebA image in split {split!r}")
        self.identities, self.celeba_ids = contiguous_ids(keys)

    def _load(self, index: int) -> dict[str, Any]:
        rel = f"{IMAGE_DIR}/{self.names[index]}"
        image = load_image(self.root / rel)
        landmarks = read_pts(self.landmark_files[index])
        mask_path = mask_sidecar(self.root, rel)
        mask = read_mask(mask_path, image.size) if mask_path.is_file() else None
        return {
            "image": image,
            "landmarks": landmarks,
            "mask": mask,
            "identity": self.identities[index],
            "celeba_identity": self.celeba_ids[self.identities[index]],
            "sample_id": rel,
        }


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("dataset", "celeba", CelebA, "CelebA layout: identity-labelled photos + sidecars")]
