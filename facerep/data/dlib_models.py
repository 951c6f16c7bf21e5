"""dlib's trained files and models, shared by the ``dlib`` face detector plugin and the benchmarks' dlib
baselines (`facerep.bench.dlib_faces`): where ``face-recognition-models`` put a file (`find_model_file`),
dlib itself (`import_dlib`), one per-process cache of its models (`dlib_model`), and the install line
that fixes a missing piece (`DLIB_INSTALL`, kept in one place so every command names the same fix)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from facerep.common.errors import FacerepError

#: What fixes a missing dlib (the default detector): the ``detect`` extra, or the two packages by name.
DLIB_INSTALL = "pip install 'facerep[detect]' (or: pip install dlib-bin face-recognition-models)"
SHAPE_PREDICTOR = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"


def find_model_file(name: str) -> Path | None:
    """A trained file of ``face-recognition-models`` (e.g. `SHAPE_PREDICTOR`), or None when the package or
    the file is not installed. Found from the import system without importing the package, whose
    ``__init__`` needs ``pkg_resources`` (absent from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    return None


def model_file(name: str) -> Path:
    """`find_model_file`, or a `FacerepError` with the install line when the file is missing."""
    path = find_model_file(name)
    if path is not None:
        return path
    raise FacerepError(
        f"the dlib face detector needs {name} from the face-recognition-models package, which is not "
        f"installed: {DLIB_INSTALL}"
    )


def import_dlib():  # noqa: ANN201 - the dlib module
    """The ``dlib`` module, or a `FacerepError` with the install line."""
    try:
        import dlib
    except ImportError:
        raise FacerepError(
            f"face detection needs the optional dlib package, which is not installed: {DLIB_INSTALL}"
        ) from None
    return dlib


#: dlib's model constructors by kind (each but ``hog`` reads a trained file).
DLIB_MODELS: dict[str, str] = {
    "hog": "get_frontal_face_detector",
    "shape": "shape_predictor",
    "cnn": "cnn_face_detection_model_v1",
    "recognition": "face_recognition_model_v1",
}


@functools.lru_cache(maxsize=8)
def dlib_model(kind: str, path: str = "") -> Any:
    """dlib's HOG detector, or its shape predictor, CNN detector or face recogniser read from `path`
    (a `DLIB_MODELS` kind), made once per process and shared by every user (each takes about 2 s)."""
    make = getattr(import_dlib(), DLIB_MODELS[kind])
    return make() if kind == "hog" else make(path)
