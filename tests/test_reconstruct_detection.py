"""`facerep reconstruct` and `FaceRep.reconstruct` on uncropped photos: faces detected and cropped, one
output per face, no-face photos skipped, safe folder names, every input type of the Python API."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

import facerep
from facerep.apps.model import FaceRep
from facerep.apps.reconstruct import reconstruct_photos
from facerep.data.landmark_store import build_detector
from facerep.data.photos import NoFaceFound

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None, reason="dlib is not installed (pip install 'facerep[detect]')"
)


@pytest.fixture(scope="module")
def model(tiny_trained_run: Path) -> FaceRep:
    return facerep.load(tiny_trained_run, device="cpu")


@pytest.fixture(scope="module")
def takeo() -> Image.Image:
    with Image.open(shared_data("photos", "landmarks68", "takeo.ppm")) as im:
        return im.convert("RGB")


def _two_people(path: Path) -> Path:
    """amy1.png and raj1.png (real photos) side by side on a grey canvas: an uncropped photo of two people."""
    canvas = Image.new("RGB", (420, 220), (100, 100, 100))
    for k, name in enumerate(("amy", "raj")):
        with Image.open(shared_data("photos", "identities", name, f"{name}1.png")) as im:
            canvas.paste(im.convert("RGB").resize((170 - 40 * k, 170 - 40 * k)), (20 + 210 * k, 25))
    canvas.save(path)
    return path


def _check_every_face(model: FaceRep, photo: Path, faces: int, tmp_path: Path) -> None:
    """One output folder per face, each face's box and 68 landmarks (photo pixels) in index.json as the
    detector gives them (largest first); a photo without a face is reported and skipped, not centre-cropped;
    ``faces="largest"`` keeps one."""
    Image.new("RGB", (200, 120), (90, 90, 90)).save(photo.parent / "wall.png")
    out = tmp_path / "out"
    results = reconstruct_photos(model, photo.parent, out)
    index = json.loads((out / "index.json").read_text())
    stem = photo.stem
    assert [r["folder"] for r in index["photos"]] == [f"{stem}_face{k + 1}" for k in range(faces)]
    assert index["no_face"] == [str(photo.parent / "wall.png")] and not (out / "wall").exists()
    with Image.open(photo) as im:
        detected = build_detector("dlib").detect(np.asarray(im.convert("RGB")))
    assert len(detected) == faces
    for entry, face, result in zip(index["photos"], detected, results, strict=True):
        assert entry["crop"] == "detected" and len(entry["landmarks"]) == 68
        np.testing.assert_allclose(entry["box"], face.box, atol=0.01)
        np.testing.assert_allclose(entry["landmarks"], face.landmarks, atol=0.01)
        saved = np.load(result.folder / "codes.npz")
        np.testing.assert_allclose(saved["face_landmarks"], face.landmarks, atol=1e-4)
        assert (result.folder / "canonical.obj").is_file()
    largest = reconstruct_photos(model, photo, tmp_path / "largest", faces="largest")
    assert len(largest) == 1 and largest[0].folder.name == stem
    np.testing.assert_allclose(largest[0].face_box, detected[0].box)


def test_every_face_of_an_uncropped_photo_gets_its_output(model: FaceRep, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _check_every_face(model, _two_people(tmp_path / "in" / "pair.png"), 2, tmp_path)


@pytest.mark.slow
def test_every_face_of_breakingbad_gets_its_output(model: FaceRep, tmp_path: Path) -> None:
    """breakingbad.jpg at full size (1920 x 1080, two people; the copy has no sidecar beside it)."""
    (tmp_path / "in").mkdir()
    photo = tmp_path / "in" / "breakingbad.jpg"
    photo.write_bytes(shared_data("photos", "landmarks68", "breakingbad.jpg").read_bytes())
    _check_every_face(model, photo, 2, tmp_path)


def test_output_folders_stay_inside_out(model: FaceRep, tmp_path: Path) -> None:
    """Photos named ``...png``, ``..png`` and ``.png``-like stems write into folders inside --out."""
    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("...png", "..png", ".x.png", "a.png"):
        Image.new("RGB", (40, 40), (120, 100, 90)).save(photos / name, format="PNG")
    out = tmp_path / "deep" / "out"
    results = reconstruct_photos(model, sorted(photos.iterdir()), out, detect=False)
    assert len(results) == 4
    for result in results:
        assert result.folder.parent == out.resolve() and result.folder.name not in ("", ".", "..")
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    index = json.loads((out / "index.json").read_text())
    assert len({entry["folder"] for entry in index["photos"]}) == 4


def test_python_api_takes_every_input_type(model: FaceRep, takeo: Image.Image, tmp_path: Path) -> None:
    """A path, a PIL image, uint8 and float arrays and a (3, H, W) tensor of one photo give the same crop
    and so the same codes; boxes and landmarks come back in photo pixels."""
    path = tmp_path / "takeo.png"  # no sidecar beside the copy: detected like the others
    takeo.save(path)
    array = np.array(takeo)
    inputs = {
        "path": path,
        "str": str(path),
        "pil": takeo,
        "uint8": array,
        "float": array.astype(np.float32) / 255.0,
        "tensor": torch.from_numpy(array).permute(2, 0, 1).float() / 255.0,
    }
    face = build_detector("dlib").detect(array)[0]
    results = {name: model.reconstruct(x) for name, x in inputs.items()}
    reference = results["path"]
    assert reference.codes.identity.shape == (1, 128)
    np.testing.assert_allclose(reference.extras["boxes"][0].numpy(), face.box, atol=1e-4)
    np.testing.assert_allclose(reference.extras["landmarks"][0].numpy(), face.landmarks, atol=1e-4)
    for name, recon in results.items():
        assert torch.allclose(recon.codes.identity, reference.codes.identity, atol=1e-5), name
    both = model.reconstruct([path, takeo])
    assert both.codes.identity.shape == (2, 128) and both.extras["photo"].tolist() == [0, 1]
    # face crops (square tensors) are taken as they are, as before
    crop = torch.rand(2, 3, model.image_size, model.image_size)
    assert model.reconstruct(crop).codes.identity.shape == (2, 128)
    with pytest.raises(NoFaceFound, match="no face found"):
        model.reconstruct(np.full((90, 120, 3), 128, np.uint8))
    with pytest.warns(UserWarning, match="centred square"):
        centre = model.reconstruct(takeo, detect=False)
    assert torch.isnan(centre.extras["boxes"]).all()
    with pytest.raises(TypeError, match="an image is a path"):
        model.reconstruct(42)
