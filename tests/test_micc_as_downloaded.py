"""`facerep bench --data micc:PATH` on a tree in MICC Florence's layout as downloaded: a real scan, videos of
real photos, no landmark files. Faces are detected per frame on the fly and cached outside the tree; frames
without a face and missing videos are skipped and counted; --strict makes a missing video an error."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from PIL import Image

from facerep.data.landmark_store import LandmarkStore
from facerep.data.mjpeg import write_mjpeg

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None, reason="dlib is not installed (pip install 'facerep[detect]')"
)
HAS_AV = importlib.util.find_spec("av") is not None


def _photo(person: str, k: int) -> np.ndarray:
    with Image.open(shared_data("photos", "identities", person, f"{person}{k}.png")) as im:
        return np.asarray(im.convert("RGB").resize((150, 150)))


def _write_tree(root: Path) -> None:
    """subject_01 (amy): three videos, one frame without a face, the PTZ-Indoor one an .avi (PyAV) when
    available; subject_02 (raj): no PTZ-Outdoor video. Both subjects' scan is the real james scan."""
    scan = shared_data("scans", "james", "james.obj")
    grey = np.full((150, 150, 3), 128, np.uint8)
    for subject, person in (("subject_01", "amy"), ("subject_02", "raj")):
        folder = root / subject / "Model" / "frontal1" / "obj"
        folder.mkdir(parents=True)
        shutil.copy(scan, folder / "james.obj")
        video = root / subject / "Video"
        frames = [_photo(person, 1), _photo(person, 2), grey, _photo(person, 3)]
        write_mjpeg(video / "Indoor-Cooperative.mjpg", frames if subject == "subject_01" else frames[:2])
        indoor = [_photo(person, 4), _photo(person, 5)]
        if HAS_AV and subject == "subject_01":
            from facerep.data.video import write_video

            write_video(video / "PTZ-Indoor.avi", indoor, codec="ffv1")
        else:
            write_mjpeg(video / "PTZ-Indoor.mjpg", indoor)
        if subject == "subject_01":
            write_mjpeg(video / "PTZ-Outdoor.mjpg", [_photo(person, 5), _photo(person, 1)])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def micc_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("micc-download")
    _write_tree(root)
    return root


def test_bench_on_micc_as_downloaded(micc_tree: Path, tiny_trained_run: Path, tmp_path: Path, capsys) -> None:
    from facerep.cli.app import main

    before = _files(micc_tree)
    out = tmp_path / "bench"
    args = ["bench", str(tiny_trained_run), "--data", f"micc:{micc_tree}", "--out", str(out)]
    main([*args, "--no-baselines", "--error-maps", "0", "--protocol", "identity", "--device", "cpu"])
    printed = " ".join(capsys.readouterr().out.split())
    assert _files(micc_tree) == before  # nothing written into the dataset
    assert "1 video(s) missing or unreadable" in printed and "PTZ-Outdoor" in printed
    assert "1 frame(s) without a detected face skipped" in printed
    table = (out / "table1.md").read_text()
    assert "similarity alignment (estimated nose tip, then ICP)" in table
    assert "note: 1 video(s) missing or unreadable, not scored" in table
    with open(out / "per_subject.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    scored = {(r["subject"], r["condition"]): int(r["frames"]) for r in rows}
    assert scored == {
        ("subject_01", "Cooperative"): 3,  # the grey frame has no face
        ("subject_01", "Indoor"): 2,
        ("subject_01", "Outdoor"): 2,
        ("subject_02", "Cooperative"): 2,
        ("subject_02", "Indoor"): 2,
    }
    assert {r["alignment"] for r in rows} == {"estimated nose tip"}
    assert all(float(r["mean"]) > 0 for r in rows)
    # the detections are cached in the mirror, outside the tree: the grey frame is remembered as face-less
    store = LandmarkStore(micc_tree)
    assert sorted(store.video_landmarks("subject_01/Video/Indoor-Cooperative.mjpg")) == [0, 1, 3]
    assert store.video_noface("subject_01/Video/Indoor-Cooperative.mjpg") == {2}


def test_cached_detections_are_reused(micc_tree: Path, tiny_trained_run: Path, monkeypatch) -> None:
    """A second read of the tree needs no detector (everything is cached): a broken one is never built."""
    import facerep.data.micc as micc_reader
    from facerep.bench.micc_source import MiccSource

    MiccSource(micc_tree, 32)  # detects what the first test did not (when run alone)
    monkeypatch.setattr(micc_reader, "build_detector", lambda *a, **k: pytest.fail("detector built again"))
    source = MiccSource(micc_tree, 32)
    assert source.frames("subject_01", "Indoor-Cooperative").shape == (3, 3, 32, 32)
    assert source.noface_frames[("subject_01", "Indoor-Cooperative")] == 1
    assert len(source.skipped_videos) == 1 and "subject_02/Video/PTZ-Outdoor" in source.skipped_videos[0]


def test_strict_makes_a_missing_video_an_error(
    micc_tree: Path, tiny_trained_run: Path, tmp_path, capsys
) -> None:
    from facerep.cli.app import main

    args = ["bench", str(tiny_trained_run), "--data", f"micc:{micc_tree}", "--out", str(tmp_path / "b")]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--strict", "--no-baselines", "--device", "cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2 and "subject_02/Video/PTZ-Outdoor.mjpg: video not found" in err
    assert not (tmp_path / "b" / "table1.md").exists()
