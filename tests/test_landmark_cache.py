"""Landmarks for real datasets without hand-made files: a CelebA-layout tree of real photos trains with
``landmarks: detect`` (computed once, cached outside the tree), `facerep data landmarks` is resumable and
never writes into the dataset, `recipe validate --data` checks the sources, ``--device auto``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

from facerep.common.errors import DataError, FacerepError
from facerep.data.landmark_store import LandmarkStore, mirror_root
from facerep.data.mjpeg import write_mjpeg

needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None, reason="dlib is not installed (pip install 'facerep[detect]')"
)
PEOPLE = ("amy", "raj", "sheldon")


def _celeba(root: Path) -> Path:
    """CelebA's layout from real photos: 3 people x 2 photos and one image without a face; no landmarks."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    identity, partition = [], []
    k = 0
    for person_id, person in enumerate(PEOPLE, start=1):
        for n in (1, 2):
            k += 1
            with Image.open(shared_data("photos", "identities", person, f"{person}{n}.png")) as im:
                im.convert("RGB").save(images / f"{k:06d}.jpg", quality=95)
            identity.append(f"{k:06d}.jpg {person_id}")
            partition.append(f"{k:06d}.jpg 0")
    Image.new("RGB", (150, 150), (128, 128, 128)).save(images / "000007.jpg")
    identity.append("000007.jpg 4")
    partition.append("000007.jpg 0")
    (root / "identity_CelebA.txt").write_text("\n".join(identity) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@needs_dlib
def test_celeba_trains_without_landmark_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facerep.data.landmark_store as store_module
    from facerep.plugins.datasets.celeba import CelebA

    root = _celeba(tmp_path / "celeba")
    before = _listing(root)
    with pytest.raises(DataError, match=r"000001\.pts: 68-landmark sidecar not found .*landmarks: detect"):
        CelebA(root, image_size=32)
    data = CelebA(root, image_size=32, landmarks="detect", on_bad_sample="skip")
    assert len(data) == 6 and data.num_identities == 3
    assert len(data.skipped) == 1 and "000007.pts" in data.skipped[0] and "no face found" in data.skipped[0]
    sample = data[0]
    assert sample["image"].shape == (3, 32, 32) and sample["landmarks"].shape == (68, 2)
    assert _listing(root) == before  # the cache is outside the dataset
    assert (mirror_root(root) / "landmarks68" / "img_align_celeba" / "000001.pts").is_file()
    # computed once: the second build needs no detector
    monkeypatch.setattr(store_module, "build_detector", lambda *a, **k: pytest.fail("detector built again"))
    again = CelebA(root, image_size=32, landmarks="detect", on_bad_sample="skip")
    assert torch.equal(again[0]["landmarks"], sample["landmarks"])
    assert len(CelebA(root, image_size=32, on_bad_sample="skip")) == 6  # files mode reads the mirror too


@needs_dlib
def test_data_landmarks_on_videos_is_resumable(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from facerep.cli.app import main

    root = tmp_path / "micc"
    frames = []
    for n in (1, 2, 3):
        with Image.open(shared_data("photos", "identities", "penny", f"penny{n}.png")) as im:
            frames.append(np.asarray(im.convert("RGB")))
    frames.insert(1, np.full_like(frames[0], 128))
    write_mjpeg(root / "subject_01" / "Video" / "PTZ-Indoor.mjpg", frames)
    before = _listing(root)
    main(["data", "landmarks", str(root), "--device", "cpu"])
    first = " ".join(capsys.readouterr().err.split())
    assert "micc layout: 1 video(s)" in first and "landmarks for 3 frame(s) written, 0 already done" in first
    assert "no face found in 1 frame(s): subject_01/Video/PTZ-Indoor.mjpg#1" in first
    assert _listing(root) == before
    store = LandmarkStore(root)
    assert sorted(store.video_landmarks("subject_01/Video/PTZ-Indoor.mjpg")) == [0, 2, 3]
    main(["data", "landmarks", str(root), "--device", "cpu"])
    assert "landmarks for 0 frame(s) written, 4 already done" in " ".join(capsys.readouterr().err.split())


def test_a_mirror_inside_the_dataset_is_refused(tmp_path: Path) -> None:
    from facerep.core.interfaces import DetectedFace

    root = tmp_path / "data"
    root.mkdir()
    store = LandmarkStore(root, root / "landmarks")
    face = DetectedFace(np.array([0, 0, 4, 4.0]), np.zeros((68, 2), np.float32), 1.0)
    with pytest.raises(DataError, match="refusing to write inside the dataset folder"):
        store.write_image("a.jpg", face)
    assert _listing(root) == []


@needs_dlib
def test_recipe_validate_checks_each_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from facerep.cli.app import main

    root = _celeba(tmp_path / "celeba")
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(
        "extends: demo\n"
        "data:\n"
        "  sources:\n"
        f"    photos: {{type: celeba, root: {root}, landmarks: detect, on_bad_sample: skip}}\n"
        "    labelled: {type: w300lp, root: builtin}\n"
    )
    main(["recipe", "validate", str(recipe), "--data"])
    out = " ".join(capsys.readouterr().out.split())
    assert "photos (celeba): " in out and "6 samples, the first 3 load" in out
    assert "1 bad sample(s) skipped" in out and "labelled (w300lp): the synthetic world" in out
    (root / "img_align_celeba" / "000001.jpg").unlink()
    strict = recipe.read_text().replace("on_bad_sample: skip", "on_bad_sample: error")
    recipe.write_text(strict)
    with pytest.raises(SystemExit) as exc:
        main(["recipe", "validate", str(recipe), "--data"])
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2 and "000001.jpg: image listed in identity_CelebA.txt not found" in err
    recipe.write_text(strict.replace(str(root), str(tmp_path / "nowhere")))
    with pytest.raises(SystemExit):
        main(["recipe", "validate", str(recipe), "--data"])
    err = " ".join(capsys.readouterr().err.split())
    assert "mine.yaml:4, key 'data.sources.photos.root'" in err and "nowhere" in err


def test_device_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    from facerep.train.device import describe_device, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert describe_device(resolve_device()).startswith("device: cpu (")
    with pytest.raises(FacerepError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(FacerepError, match="not a torch device"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
