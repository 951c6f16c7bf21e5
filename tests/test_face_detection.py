"""The face_detector kind: the dlib plugin on real annotated photos, its contract checks, the face-alignment
plugin through a stand-in module, and what every command says when dlib is not installed."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA, shared_data
from face_alignment_standin import face_alignment_standin
from PIL import Image

from facerep.common.errors import FacerepError
from facerep.core.interfaces import KINDS, DetectedFace, FaceDetector
from facerep.core.registry import get_registry
from facerep.data.landmark_store import build_detector
from facerep.data.sidecars import read_pts
from facerep.testing import make_subject, parametrize_with_checks

HAS_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec(
    "face_recognition_models"
)
needs_dlib = pytest.mark.skipif(
    not HAS_DLIB, reason="dlib is not installed (pip install 'facerep[detect]'; make test installs it)"
)
DLIB_HINT = "pip install 'facerep[detect]' (or: pip install dlib-bin face-recognition-models)"
PHOTOS = SHARED_DATA / "photos" / "landmarks68"


def _photo(name: str) -> np.ndarray:
    with Image.open(shared_data("photos", "landmarks68", name)) as im:
        return np.asarray(im.convert("RGB"))


def _nme(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark error over the inter-ocular distance (between the annotation's eye centres)."""
    inter_ocular = float(np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0)))
    return float(np.linalg.norm(found - truth, axis=1).mean() / inter_ocular)


def test_face_detector_is_a_kind_with_both_plugins() -> None:
    registry = get_registry()
    assert "face_detector" in KINDS and "face_detector" in registry.kinds()
    assert {"dlib", "face_alignment"} <= set(registry.names("face_detector"))
    assert "no download" in registry.get("face_detector", "dlib").factory.weights
    assert "first use" in registry.get("face_detector", "face_alignment").factory.weights


def _face_image() -> np.ndarray | None:
    path = PHOTOS / "takeo.ppm"
    if not path.is_file():
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@needs_dlib
@parametrize_with_checks([make_subject("face_detector", "dlib", context={"face_image": _face_image()})])
def test_dlib_passes_the_contract_checks(subject, check) -> None:  # noqa: ANN001 - the kit's objects
    check(subject)


@needs_dlib
@pytest.mark.parametrize(
    ("name", "faces"),
    [("breakingbad.jpg", 2), ("image_0010.png", 1), ("takeo.ppm", 1)],
)
def test_dlib_finds_the_people_and_their_landmarks(name: str, faces: int) -> None:
    """Every person is found (and nothing else), and the annotated face's 68 landmarks are within 10% of
    the inter-ocular distance of the hand-made .pts (iBUG order, facerep's pixel convention)."""
    image = _photo(name)
    truth = read_pts(PHOTOS / (name.rsplit(".", 1)[0] + ".pts"))
    found = build_detector("dlib").detect(image)
    assert len(found) == faces
    assert all(isinstance(f, DetectedFace) and f.landmarks.shape == (68, 2) for f in found)
    closest = min(found, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - truth.mean(0))))
    assert _nme(closest.landmarks, truth) < 0.10
    x0, y0, x1, y1 = closest.box
    inside = (truth[:, 0] > x0 - 0.2 * (x1 - x0)) & (truth[:, 0] < x1 + 0.2 * (x1 - x0))
    assert inside.mean() > 0.9  # the box frames the annotated face


@needs_dlib
@pytest.mark.slow
def test_dlib_cnn_finds_a_turned_face_hog_misses() -> None:
    """einstein.jpg: HOG finds only the seated man; the CNN detector (about 45 s on one core) finds both
    people and Einstein's landmarks within 10% of the inter-ocular distance."""
    image = _photo("einstein.jpg")
    truth = read_pts(PHOTOS / "einstein.pts")
    hog = build_detector("dlib").detect(image)
    assert all(_nme(f.landmarks, truth) > 1.0 for f in hog)
    found = build_detector("dlib", detector="cnn").detect(image)
    assert len(found) == 2
    assert min(_nme(f.landmarks, truth) for f in found) < 0.10


def test_without_dlib_the_error_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # import fails, as when it is not installed
    with pytest.raises(FacerepError) as exc:
        build_detector("dlib")
    assert DLIB_HINT in str(exc.value)


def test_without_dlib_reconstruct_prints_the_pip_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture
) -> None:
    """The command fails before loading the run, and rich markup does not eat ``[detect]``."""
    from facerep.cli.app import main

    monkeypatch.setitem(sys.modules, "dlib", None)
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exc:
        main(["reconstruct", str(tmp_path / "a.png"), "--run", str(tmp_path / "no-run"), "--device", "cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2 and DLIB_HINT in err


def test_without_dlib_the_python_api_names_the_pip_install(
    monkeypatch: pytest.MonkeyPatch, tiny_trained_run
) -> None:
    import facerep

    model = facerep.load(tiny_trained_run, device="cpu")
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(FacerepError, match=r"pip install 'facerep\[detect\]'"):
        model.reconstruct(np.zeros((40, 60, 3), np.uint8))


def test_face_alignment_plugin_through_its_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second plugin calls face-alignment's API (a stand-in here: the package downloads its weights) and
    moves its pixel centres (on integers) to facerep's (+0.5); largest face first; contract checks pass."""
    points = np.stack([np.linspace(2, 28, 68), np.linspace(3, 38, 68)], 1).astype(np.float32)
    standin = face_alignment_standin(
        [points * 0.2, points], [[0, 0, 6, 8, 0.8], [1.0, 2.0, 30.0, 40.0, 0.99]]
    )
    monkeypatch.setitem(sys.modules, "face_alignment", standin)
    detector = build_detector("face_alignment")
    assert isinstance(detector, FaceDetector)
    found = detector.detect(np.full((48, 48, 3), 120, np.uint8))
    assert [f.score for f in found] == [0.99, 0.8]
    np.testing.assert_allclose(found[0].landmarks, points + 0.5)
    np.testing.assert_allclose(found[0].box, [1, 2, 30, 40])
    assert detector.detect(np.zeros((48, 48, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((48, 48, 3), np.float32))
    from facerep.testing import check_component

    results = check_component(
        "face_detector", "face_alignment", context={"face_image": np.full((48, 48, 3), 120, np.uint8)}
    )
    failed = [str(r) for r in results if r.failed]
    # the stand-in finds a face in flat images: exactly the no-face check must catch it
    assert failed and all("no_face" in r for r in failed), failed


def test_face_alignment_plugin_without_the_package_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "face_alignment", None)
    with pytest.raises(FacerepError, match="pip install face-alignment") as exc:
        build_detector("face_alignment")
    assert "downloads its weights" in str(exc.value)
