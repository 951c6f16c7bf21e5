"""Every built-in plugin passes the facerep.testing contract checks (at tiny sizes)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA

from facerep.core.registry import get_registry
from facerep.testing import Subject, checks_for, make_subject, parametrize_with_checks

#: Tiny recipe nodes of the built-ins whose defaults are paper-sized; the rest use ``{type: NAME}``.
TINY_NODES: dict[tuple[str, str], dict[str, Any]] = {
    ("encoder", "resnet"): {"type": "resnet", "depth": 18},
    ("shape_decoder", "gcn"): {"type": "gcn", "channels": [16, 8, 8, 8], "K": 3},
    ("albedo_decoder", "gcn"): {"type": "gcn", "channels": [16, 8, 8, 8], "K": 3},
    ("albedo_decoder", "unet"): {"type": "unet", "uv_size": 32, "width": 8},
    ("critic", "gcn"): {"type": "gcn", "channels": [8, 8, 8, 8], "K": 3},
    ("facemodel", "synthetic"): {"type": "synthetic", "vertices": 600},
    ("benchmark", "micc"): {"type": "micc", "progress": False},
    ("dataset", "celeba"): {"type": "celeba", "root": "builtin"},
    ("dataset", "w300lp"): {"type": "w300lp", "root": "builtin"},
    ("dataset", "micc"): {"type": "micc", "root": "builtin", "frame_step": 2},
    ("dataset", "aflw2000"): {"type": "aflw2000", "root": str(SHARED_DATA / "aflw2000")},
}
#: Face models read from files: the real ones in ../shared/data, and a BFM file written from the tiny
#: synthetic model in Deep3DFaceRecon's BFM_model_front.mat layout (the real BFM cannot ship).
BFM_FILE = Path(tempfile.gettempdir()) / f"facerep-contract-{os.getpid()}" / "BFM_model_front.mat"
atexit.register(shutil.rmtree, BFM_FILE.parent, ignore_errors=True)
FILE_NODES: dict[tuple[str, str], dict[str, Any]] = {
    ("facemodel", "bfm"): {"type": "bfm", "path": str(BFM_FILE)},
    ("facemodel", "npz"): {
        "type": "npz",
        "path": str(SHARED_DATA / "ict" / "ict_facemodel_light_face9409.npz"),
        "units": "cm",
    },
    ("facemodel", "sfm"): {"type": "sfm", "path": str(SHARED_DATA / "sfm")},
}
TINY_NODES.update(FILE_NODES)


def _write_bfm_front(path: Path) -> None:
    """The tiny synthetic face model as a BFM_model_front.mat (decimetres, bases scaled by their std)."""
    import numpy as np
    import scipy.io

    from facerep.testing import tiny_face_model

    fm = tiny_face_model()

    def columns(basis: np.ndarray, std: np.ndarray) -> np.ndarray:
        return (basis * std[:, None, None]).reshape(basis.shape[0], -1).T.astype(np.float64)

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        path,
        {
            "meanshape": fm.mean.reshape(1, -1) / 100.0,
            "idBase": columns(fm.id_basis, fm.id_std) / 100.0,
            "exBase": columns(fm.exp_basis, fm.exp_std) / 100.0,
            "meantex": fm.albedo_mean.reshape(1, -1) * 255.0,
            "texBase": columns(fm.albedo_basis, fm.albedo_std) * 255.0,
            "tri": fm.triangles + 1,
            "keypoints": (fm.landmarks + 1).reshape(1, -1),
        },
    )


#: Kinds whose checks need the generated synthetic world (or real files): slow.
SLOW_KINDS = ("dataset",)
#: Large networks: build, outputs and gradients in the fast suite, the other checks when slow tests run.
HEAVY = {("encoder", "resnet"), ("albedo_decoder", "unet")}
HEAVY_FAST_CHECKS = ("build", "outputs", "gradients")
#: Kinds checked in their own test file: face detectors need a photo with a face and optional packages
#: (tests/test_face_detection.py).
CHECKED_ELSEWHERE = ("face_detector",)
#: Datasets whose files do not belong to the synthetic face model are built without one.
NO_FACE_MODEL = {("dataset", "aflw2000")}


def _builtins() -> list[tuple[str, str]]:
    return [(c.kind, c.name) for c in get_registry().components() if c.package == "facerep"]


def _subject(kind: str, name: str) -> Subject:
    context = {"face_model": None} if (kind, name) in NO_FACE_MODEL else None
    return make_subject(kind, TINY_NODES.get((kind, name), {"type": name}), context=context)


LIGHT = [
    _subject(k, n)
    for k, n in _builtins()
    if k not in SLOW_KINDS and k not in CHECKED_ELSEWHERE and (k, n) not in HEAVY and (k, n) not in FILE_NODES
]
FROM_FILES = [_subject(k, n) for k, n in _builtins() if (k, n) in FILE_NODES]
HEAVY_SUBJECTS = [_subject(k, n) for k, n in _builtins() if (k, n) in HEAVY]
DATASETS = [_subject(k, n) for k, n in _builtins() if k in SLOW_KINDS]


def test_every_builtin_is_checked() -> None:
    kinds = {k for k, _ in _builtins()}
    assert {"encoder", "shape_decoder", "albedo_decoder", "renderer", "critic", "loss", "facemodel"} <= kinds
    covered = {(s.kind, s.name) for s in LIGHT + HEAVY_SUBJECTS + DATASETS + FROM_FILES}
    covered |= {(k, n) for k, n in _builtins() if k in CHECKED_ELSEWHERE}
    assert covered == set(_builtins())


@parametrize_with_checks(LIGHT)
def test_builtin_contract(subject, check) -> None:  # noqa: ANN001 - the kit's objects
    check(subject)


@parametrize_with_checks(FROM_FILES)
def test_builtin_face_model_from_files_contract(subject, check) -> None:  # noqa: ANN001
    path = Path(subject.node["path"])
    if path == BFM_FILE and not path.exists():
        _write_bfm_front(path)
    if not path.exists():
        pytest.skip(f"real third-party test data not found at {path}")
    check(subject)


@parametrize_with_checks(HEAVY_SUBJECTS, checks=HEAVY_FAST_CHECKS)
def test_builtin_network_contract(subject, check) -> None:  # noqa: ANN001
    check(subject)


@pytest.mark.slow
@parametrize_with_checks(
    HEAVY_SUBJECTS, checks=[c.name for c in checks_for("encoder") if c.name not in HEAVY_FAST_CHECKS]
)
def test_builtin_network_contract_slow(subject, check) -> None:  # noqa: ANN001
    check(subject)


@pytest.mark.slow
@parametrize_with_checks(DATASETS)
def test_builtin_dataset_contract(subject, check) -> None:  # noqa: ANN001
    root = str(subject.node.get("root"))
    if root.startswith(str(SHARED_DATA)) and not Path(root).exists():
        pytest.skip(f"real third-party test data not found at {root}")
    check(subject)
