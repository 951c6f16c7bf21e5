"""facerep.load and `facerep reconstruct`: on synthetic photos of a few-step run and on real photos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

import facerep
from facerep.apps.model import FaceRep
from facerep.apps.reconstruct import reconstruct_photos
from facerep.data.photos import find_photos, load_face_photo
from facerep.geometry import mesh_io

MESH_FILES = (
    "canonical.obj",
    "canonical.ply",
    "canonical_textured.obj",
    "neutral.obj",
    "posed.obj",
    "posed.ply",
)
IMAGE_FILES = ("input.png", "albedo.png", "render.png", "overlay.png", "canonical_textured.png")


@pytest.fixture(scope="module")
def model(tiny_trained_run: Path) -> FaceRep:
    return facerep.load(tiny_trained_run)


@pytest.fixture(scope="module")
def synthetic_photos() -> list[Path]:
    from facerep.world.cache import ensure_world

    world = ensure_world("tiny", 0, progress=False)
    return find_photos(world / "celeba" / "img_align_celeba")[:3]


def _check_folder(folder: Path, model: FaceRep, photo: Path) -> None:
    n = model.face_model.num_vertices
    for name in MESH_FILES:
        mesh = mesh_io.read_obj(folder / name) if name.endswith(".obj") else mesh_io.read_ply(folder / name)
        assert mesh.vertices.shape == (n, 3), (folder, name)
        assert mesh.triangles.shape == np.asarray(model.face_model.triangles).shape
        if name != "canonical_textured.obj":
            assert mesh.colors is not None and mesh.colors.shape == (n, 3)
    textured = mesh_io.read_obj(folder / "canonical_textured.obj")
    assert textured.texture is not None and textured.texture.name == "canonical_textured.png"
    assert textured.uv is not None and np.allclose(textured.uv, model.face_model.uv, atol=1e-5)
    for name in IMAGE_FILES:
        with Image.open(folder / name) as im:
            im.load()
    with Image.open(folder / "overlay.png") as im, Image.open(photo) as original:
        assert im.size == original.size
    with Image.open(folder / "render.png") as im:
        assert im.mode == "RGBA" and im.size == (model.image_size, model.image_size)
    codes = np.load(folder / "codes.npz")
    assert codes["identity"].shape == (128,) and codes["expression"].shape == (64,)
    assert codes["pose"].shape == (6,) and codes["light"].shape == (27,)
    assert codes["vertices"].shape == codes["posed_vertices"].shape == (n, 3)
    canonical = mesh_io.read_obj(folder / "canonical.obj").vertices
    assert np.allclose(canonical, codes["vertices"], atol=1e-4)


def test_load_returns_a_model_object(model: FaceRep, tiny_trained_run: Path) -> None:
    assert model.image_size == 32 and model.run.path == tiny_trained_run
    images = torch.rand(2, 3, 48, 48)  # resized to the run's 32 px
    codes = model.encode(images)
    assert codes.identity.shape == (2, 128) and codes.pose.shape == (2, 6)
    decoded = model.decode(codes)
    assert decoded.vertices.shape == (2, model.face_model.num_vertices, 3) and decoded.rendering is None
    rendering = model.render(decoded.vertices, decoded.albedo, codes.pose, codes.light)
    recon = model.reconstruct(images)
    assert torch.allclose(recon.rendering.image, rendering.image, atol=1e-5)
    assert torch.allclose(recon.vertices, decoded.vertices, atol=1e-5)
    neutral = model.decode(codes, neutral=True)
    expected = model.model.decode_shape(codes.identity, model.neutral_expression.expand(2, -1))
    assert torch.allclose(neutral.vertices, expected)
    assert not recon.vertices.requires_grad


@pytest.fixture(scope="module")
def synthetic_out(
    model: FaceRep, synthetic_photos: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list, list[int]]:
    out = tmp_path_factory.mktemp("reconstruct-synthetic")
    calls: list[int] = []
    results = reconstruct_photos(model, synthetic_photos, out, batch_size=2, progress=calls.append)
    return out, results, calls


def test_reconstruct_synthetic_photos(
    model: FaceRep, synthetic_photos: list[Path], synthetic_out: tuple[Path, list, list[int]]
) -> None:
    tmp_path, results, calls = synthetic_out
    assert calls == [2, 3]
    assert [r.crop for r in results] == ["landmarks"] * 3  # the world's landmarks68/ sidecars
    for result in results:
        _check_folder(result.folder, model, result.photo)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [Path(p["photo"]) for p in index["photos"]] == synthetic_photos
    # the written codes are the model's codes of the same crop
    crop = load_face_photo(synthetic_photos[0], model.image_size).image
    codes = model.encode(crop)
    saved = np.load(results[0].folder / "codes.npz")
    assert np.allclose(saved["identity"], codes.identity[0].numpy(), atol=1e-5)


def test_posed_mesh_projects_onto_the_rendered_vertices(
    model: FaceRep, synthetic_photos: list[Path], synthetic_out: tuple[Path, list, list[int]]
) -> None:
    result = synthetic_out[1][0]

    saved = np.load(result.folder / "codes.npz")
    pose, size = torch.as_tensor(saved["pose"]), model.image_size
    f = float(torch.exp(pose[5])) * size / 200.0
    posed = saved["posed_vertices"]
    u, v = size / 2 + f * posed[:, 0], size / 2 - f * posed[:, 1]
    recon = model.reconstruct(load_face_photo(synthetic_photos[0], size).image)
    assert np.allclose(np.stack([u, v], 1), recon.rendering.vertices_2d[0].numpy(), atol=1e-3)


def test_crop_choices(synthetic_photos: list[Path]) -> None:
    from facerep.common.errors import DataError

    photo = synthetic_photos[0]
    auto, centre = load_face_photo(photo, 32), load_face_photo(photo, 32, crop="center")
    assert (auto.crop, centre.crop) == ("landmarks", "center")
    with Image.open(photo) as im:
        assert centre.box == (0.0, (im.height - im.width) / 2, float(im.width)) or centre.box[2] == min(
            im.size
        )
    bare = shared_data("photos", "identities", "amy", "amy1.png")
    assert load_face_photo(bare, 32).crop == "center"
    with pytest.raises(DataError, match="no landmarks"):
        load_face_photo(bare, 32, crop="landmarks")


def test_cli_reconstruct_a_folder(
    tiny_trained_run: Path, synthetic_photos: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from facerep.cli.app import main

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a").mkdir()
    (folder / "a" / "face.jpg").write_bytes(synthetic_photos[0].read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    main(["reconstruct", str(folder), "--run", str(tiny_trained_run), "--out", str(out), "--no-detect"])
    index = json.loads((out / "index.json").read_text())
    assert len(index["photos"]) == 1 and not index["errors"] and index["photos"][0]["crop"] == "center"
    assert index["photos"][0]["box"] is None and index["no_face"] == []
    assert (out / "face" / "canonical_textured.png").is_file()
    assert "--no-detect: every photo is taken as an aligned face crop" in capsys.readouterr().err


def test_unreadable_photos_stop_or_are_skipped(model: FaceRep, tmp_path: Path) -> None:
    from facerep.common.errors import DataError

    bad = tmp_path / "in" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        reconstruct_photos(model, bad.parent, tmp_path / "out")
    results = reconstruct_photos(model, bad.parent, tmp_path / "out", on_error="skip")
    assert results == []
    assert "broken.jpg" in next(iter(json.loads((tmp_path / "out" / "index.json").read_text())["errors"]))


def test_reconstruct_real_landmark_photos(model: FaceRep, tmp_path: Path) -> None:
    folder = shared_data("photos", "landmarks68")
    photos = find_photos(folder)
    assert len(photos) == 4
    results = reconstruct_photos(model, folder, tmp_path)
    assert sorted(r.photo.name for r in results) == sorted(p.name for p in photos)
    assert {r.crop for r in results} == {"landmarks"}
    for result in results:
        _check_folder(result.folder, model, result.photo)
        landmarks = np.load(result.folder / "codes.npz")["landmarks"]
        assert landmarks.shape == (68, 2)
        # the crop frames the annotated face: landmarks inside the crop, spanning a good part of it
        assert (landmarks > 0).all() and (landmarks < model.image_size).all()
        assert np.ptp(landmarks[:, 0]) > 0.4 * model.image_size


def test_reconstruct_real_identity_crops(model: FaceRep, tmp_path: Path) -> None:
    root = shared_data("photos", "identities")
    photos = [p for person in ("amy", "raj") for p in find_photos(root / person)[:2]]
    photos.append(photos[0])  # the same file name twice: the output folders must not collide
    results = reconstruct_photos(model, photos, tmp_path, batch_size=3, detect=False)
    assert {r.crop for r in results} == {"center"} and len(results) == 5
    assert len({r.folder for r in results}) == 5
    for result in results[::2]:
        _check_folder(result.folder, model, result.photo)


@pytest.mark.slow
def test_reconstruct_every_real_identity_crop(model: FaceRep, tmp_path: Path) -> None:
    root = shared_data("photos", "identities")
    results = reconstruct_photos(model, root, tmp_path, detect=False)
    assert len(results) == 40 and {r.crop for r in results} == {"center"}
    for result in results:
        _check_folder(result.folder, model, result.photo)


@pytest.mark.slow
def test_identity_codes_cluster_by_person_with_a_standard_run(tmp_path: Path) -> None:
    """With a standard-size run (FACEREP_STANDARD_RUN=DIR), a person's identity codes lie closer to each
    other than to other people's."""
    run = os.environ.get("FACEREP_STANDARD_RUN")
    if not run:
        pytest.skip("set FACEREP_STANDARD_RUN to a trained standard-size run directory")
    model = facerep.load(run)
    root = shared_data("photos", "identities")
    people = sorted(p.name for p in root.iterdir() if p.is_dir())
    codes, labels = [], []
    for k, person in enumerate(people):
        photos = find_photos(root / person)
        images = torch.stack([load_face_photo(p, model.image_size).image for p in photos])
        codes.append(torch.nn.functional.normalize(model.encode(images).identity, dim=1))
        labels += [k] * len(photos)
    x, y = torch.cat(codes), torch.as_tensor(labels)
    d = torch.cdist(x, x)
    same = (y[:, None] == y[None]) & ~torch.eye(len(y), dtype=torch.bool)
    assert float(d[same].mean()) < float(d[y[:, None] != y[None]].mean())
