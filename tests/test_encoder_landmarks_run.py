"""A trained run whose encoder reads landmarks (the probe of `landmark_probe`): training (steps,
validation, the neutral estimate, sample sheets) and the applications (`FaceRep.encode`, `reconstruct`,
transfer) hand it the landmarks of exactly the images it encodes, in their frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import landmark_probe as probe
import pytest
import torch
import yaml

import facerep
from facerep.apps.model import FaceRep
from facerep.common.errors import DataError, FacerepError
from facerep.core.registry import get_registry, reset_registry
from facerep.testing.runs import tiny_recipe_text


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[probe.ProbeCall]]]:
    """A 2-step tiny run with the probe encoder, validation every step and a sample sheet every step; the
    probe's calls during training."""
    from facerep.core.recipe import load_recipe
    from facerep.train.options import TrainOptions
    from facerep.train.trainer import Trainer

    reset_registry()
    get_registry().register(probe.ProbePlugin(), name="landmark-probe", package="landmark-probe-tests")
    try:
        folder = tmp_path_factory.mktemp("probe-run")
        train = {"validate": {"every": 1, "identities": 1}, "sample_every": 1}
        recipe = yaml.safe_load(tiny_recipe_text("gcn_albedo_only", steps=2, train=train))
        recipe["model"]["encoder"] = {"_replace_": True, "type": probe.PROBE_NAME}
        path = folder / "probe.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        probe.CALLS.clear()
        run = Trainer(load_recipe(path), TrainOptions(out=folder / "run", quiet=True)).fit()
        yield run, list(probe.CALLS)
    finally:
        reset_registry()


def test_training_hands_every_encoder_call_its_images_landmarks(
    probe_run: tuple[Path, list[probe.ProbeCall]],
) -> None:
    run, calls = probe_run
    sizes = [c.images.shape[0] for c in calls]
    # steps (batch of 2 x 2 photos + a labelled pair = 6 rows), sample sheets, validation, neutral estimate
    assert 6 in sizes and len(calls) >= 2 + 2 + 1
    for call in calls:
        assert call.landmarks.shape == (call.images.shape[0], 68, 2) and call.images.shape[-1] == 32
        assert bool(torch.isfinite(call.landmarks).all())
        # in the 32 px crops' frame: the face's points fill a good part of the crop, inside it
        extent = call.landmarks.amax(1) - call.landmarks.amin(1)
        assert float(call.landmarks.min()) > -4 and float(call.landmarks.max()) < 36
        assert float(extent.min()) > 8
    assert (run / "samples").is_dir() and any((run / "samples").iterdir())
    metrics = (run / "metrics.jsonl").read_text()
    assert "val/shape_mm" in metrics


def test_face_rep_gives_the_encoder_the_crops_landmarks(
    probe_run: tuple[Path, list[probe.ProbeCall]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from facerep.apps.transfer import transfer
    from facerep.data.photos import find_photos, load_face_photo
    from facerep.world.cache import ensure_world

    run, _ = probe_run
    model = facerep.load(run)  # the probe stays registered while the module's fixture lives
    assert model.reads_landmarks and model.image_size == 32
    probe.CALLS.clear()
    images = torch.rand(2, 3, 48, 48)
    marks = 48 * (0.2 + 0.6 * torch.rand(2, 68, 2))
    model.encode(images, marks)
    assert torch.allclose(probe.CALLS[-1].landmarks, marks * (32 / 48))
    # a photo: cropped around its landmark sidecar, the encoder gets those landmarks in the crop
    photo = find_photos(ensure_world("tiny", 0, progress=False) / "celeba" / "img_align_celeba")[0]
    model.reconstruct(photo)
    expected = load_face_photo(photo, 32, crop_scale=1.5).landmarks
    assert expected is not None and torch.allclose(probe.CALLS[-1].landmarks, expected, atol=1e-5)
    # crops given with NaN rows / without landmarks: found on the crop by the detector, else a DataError
    found = 32 * (0.25 + 0.5 * torch.rand(1, 68, 2))
    monkeypatch.setattr(
        FaceRep, "crop_landmarks", lambda self, crops, detector="dlib": found.expand(len(crops), -1, -1)
    )
    both = torch.cat([marks[:1], torch.full((1, 68, 2), float("nan"))])
    model.reconstruct(images, both)
    assert torch.allclose(probe.CALLS[-1].landmarks[0], marks[0] * (32 / 48))
    assert torch.allclose(probe.CALLS[-1].landmarks[1], found[0] * (32 / 48))
    transfer(model, images[:1], images[1:], source_landmarks=marks[:1], target_landmarks=marks[1:])
    assert torch.allclose(probe.CALLS[-2].landmarks, marks[:1] * (32 / 48))
    assert torch.allclose(probe.CALLS[-1].landmarks, marks[1:] * (32 / 48))
    monkeypatch.undo()

    def no_detector(self: FaceRep, detector: object) -> None:
        raise FacerepError("face_detector 'dlib' needs dlib: pip install 'facerep[detect]'")

    monkeypatch.setattr(FaceRep, "_face_detector", no_detector)
    with pytest.raises(
        DataError, match=r"reads the crop's 68 landmarks .*needs a face detector.*pip install"
    ):
        model.encode(images)
    with pytest.raises(
        DataError, match=r"reads the crop's 68 landmarks and 2 crop\(s\) have none: pass landmarks="
    ):
        model.reconstruct(images, detect=False)


def test_crops_landmarks_stacks_each_crops_landmarks_with_nan_rows_for_centre_crops() -> None:
    from PIL import Image

    from facerep.data.photos import FacePhoto, crops_landmarks

    marks = torch.arange(136, dtype=torch.float64).view(68, 2)
    photo = Image.new("RGB", (8, 8))
    crop = torch.zeros(3, 4, 4)
    with_marks = FacePhoto(Path("a.jpg"), crop, photo, (0, 0, 8), "landmarks", landmarks=marks)
    centre = FacePhoto(Path("b.jpg"), crop, photo, (0, 0, 8), "center")
    stacked = crops_landmarks([with_marks, centre])
    assert stacked.shape == (2, 68, 2) and stacked.dtype == torch.float32
    assert torch.equal(stacked[0], marks.float())
    assert bool(stacked[1].isnan().all())
