"""Sidecar formats (.pts, mask PNG, video landmark CSV), MJPEG streams and OBJ scans."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import shared_data
from PIL import Image

from facerep.common.errors import DataError
from facerep.data.mjpeg import index_mjpeg, read_mjpeg, read_mjpeg_frame, write_mjpeg
from facerep.data.objfile import read_obj, write_obj
from facerep.data.sidecars import (
    hull_mask,
    read_mask,
    read_pts,
    read_video_landmarks,
    write_mask,
    write_pts,
    write_video_landmarks,
)


def test_read_real_pts_files_inside_their_images() -> None:
    folder = shared_data("photos", "landmarks68")
    files = sorted(folder.glob("*.pts"))
    assert len(files) == 4
    for pts_path in files:
        points = read_pts(pts_path)
        assert points.shape == (68, 2) and points.dtype == np.float32
        image_path = next(p for p in folder.glob(pts_path.stem + ".*") if p.suffix != ".pts")
        with Image.open(image_path) as im:
            w, h = im.size
        assert (points >= 0).all() and (points[:, 0] < w).all() and (points[:, 1] < h).all()
        # iBUG order: the jaw starts on the image's left, the nose tip (30) lies between the eyes' corners
        assert points[0, 0] < points[16, 0]
        assert points[36, 0] < points[30, 0] < points[45, 0]
        assert points[30, 1] > points[39, 1] and points[8, 1] > points[57, 1]


def test_pts_first_point_is_one_based(tmp_path) -> None:
    folder = shared_data("photos", "landmarks68")
    raw = (folder / "takeo.pts").read_text().splitlines()[3].split()
    points = read_pts(folder / "takeo.pts")
    assert points[0, 0] == pytest.approx(float(raw[0]) - 0.5, abs=1e-4)
    assert points[0, 1] == pytest.approx(float(raw[1]) - 0.5, abs=1e-4)


def test_pts_round_trip_and_errors(tmp_path) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 64, (68, 2)).astype(np.float32)
    write_pts(tmp_path / "a.pts", points)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), points, atol=1e-4)
    with pytest.raises(DataError, match="b.pts"):
        read_pts(tmp_path / "b.pts")
    write_pts(tmp_path / "c.pts", points[:5])
    with pytest.raises(DataError, match="expected 68 landmarks, found 5"):
        read_pts(tmp_path / "c.pts")
    (tmp_path / "d.pts").write_text("version: 1\nn_points: 68\n1 2\n")
    with pytest.raises(DataError, match="d.pts"):
        read_pts(tmp_path / "d.pts")


def test_mask_round_trip_and_size_check(tmp_path) -> None:
    mask = np.zeros((20, 30), dtype=np.float32)
    mask[5:15, 8:20] = 1.0
    write_mask(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", (30, 20)), mask)
    with pytest.raises(DataError, match="m.png: mask is 30x20"):
        read_mask(tmp_path / "m.png", (20, 20))


def test_hull_mask_covers_the_face_interior() -> None:
    pts = read_pts(shared_data("photos", "landmarks68", "takeo.pts"))
    with Image.open(shared_data("photos", "landmarks68", "takeo.ppm")) as im:
        size = im.size
    mask = hull_mask(pts, size)
    nose = pts[30].astype(int)
    assert mask[nose[1], nose[0]] == 1.0 and mask[0, 0] == 0.0


def test_video_landmarks_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(1)
    marks = {0: rng.uniform(0, 99, (68, 2)), 7: rng.uniform(0, 99, (68, 2))}
    write_video_landmarks(tmp_path / "v.landmarks68.csv", marks)
    back = read_video_landmarks(tmp_path / "v.landmarks68.csv")
    assert sorted(back) == [0, 7]
    np.testing.assert_allclose(back[7], marks[7], atol=1e-4)


def _frames(n: int, size: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [
        np.full((size, size, 3), 40 * i, np.uint8) + rng.integers(0, 5, (size, size, 3), np.uint8)
        for i in range(n)
    ]


def test_mjpeg_round_trip_and_random_access(tmp_path) -> None:
    frames = _frames(5)
    assert write_mjpeg(tmp_path / "v.mjpg", frames, quality=95) == 5
    decoded = list(read_mjpeg(tmp_path / "v.mjpg"))
    assert len(decoded) == 5
    for a, b in zip(frames, decoded, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3
    spans = index_mjpeg(tmp_path / "v.mjpg")
    np.testing.assert_array_equal(read_mjpeg_frame(tmp_path / "v.mjpg", spans[3], 3), decoded[3])


def test_mjpeg_skips_embedded_exif_thumbnail(tmp_path) -> None:
    # a frame whose APP1 segment carries its own SOI ... EOI (a thumbnail) must stay one frame
    thumb = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(thumb, format="JPEG")
    exif = Image.Exif()
    exif[0x010E] = "x"
    frame = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(
        frame, format="JPEG", exif=exif.tobytes() + thumb.getvalue()
    )
    data = frame.getvalue() * 3
    (tmp_path / "t.mjpg").write_bytes(data)
    assert len(index_mjpeg(tmp_path / "t.mjpg")) == 3


def test_truncated_mjpeg_is_an_error_naming_the_file(tmp_path) -> None:
    write_mjpeg(tmp_path / "v.mjpg", _frames(2))
    data = (tmp_path / "v.mjpg").read_bytes()
    (tmp_path / "cut.mjpg").write_bytes(data[: len(data) - 40])
    with pytest.raises(DataError, match="cut.mjpg"):
        index_mjpeg(tmp_path / "cut.mjpg")
    (tmp_path / "none.mjpg").write_bytes(b"not a video")
    with pytest.raises(DataError, match="no JPEG frame"):
        index_mjpeg(tmp_path / "none.mjpg")


def test_obj_round_trip(tmp_path) -> None:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]], dtype=float)
    f = np.array([[0, 1, 2], [1, 3, 2]])
    write_obj(tmp_path / "s.obj", v, f)
    v2, f2 = read_obj(tmp_path / "s.obj")
    np.testing.assert_allclose(v2, v, atol=1e-4)
    np.testing.assert_array_equal(f2, f)
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1/1 2/2 3/3 4/4\n")
    assert read_obj(tmp_path / "q.obj")[1].shape == (2, 3)


def test_cli_data_landmarks_writes_sidecars_with_a_detector(tmp_path, monkeypatch) -> None:
    """`facerep data landmarks --detector face_alignment` with a stand-in for face-alignment: a .pts per image
    in the --out mirror (the largest face, pixel centres moved to facerep's +0.5), nothing in the root."""
    import sys

    from face_alignment_standin import face_alignment_standin

    from facerep.cli.app import main
    from facerep.data.landmark_store import LandmarkStore
    from facerep.data.sidecars import landmark_sidecar

    points = np.stack([np.linspace(2, 20, 68), np.linspace(3, 21, 68)], 1).astype(np.float32)

    # two faces: the larger one is kept; a black image has none
    fake = face_alignment_standin([points * 0.5, points], [[1, 1.5, 10, 11, 0.9], [2, 3, 20, 21, 0.99]])
    monkeypatch.setitem(sys.modules, "face_alignment", fake)
    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (24, 24), (120, 90, 60)).save(root / "a.jpg")
    (root / "sub").mkdir()
    Image.new("RGB", (24, 24), (120, 90, 60)).save(root / "sub" / "b.png")
    Image.new("RGB", (24, 24), (0, 0, 0)).save(root / "dark.png")
    out = tmp_path / "mirror"
    main(
        ["data", "landmarks", str(root), "--detector", "face_alignment", "--device", "cpu", "--out", f"{out}"]
    )
    # face-alignment's pixel centres sit on integers: facerep's are at +0.5
    np.testing.assert_allclose(read_pts(landmark_sidecar(out, "a.jpg")), points + 0.5, atol=1e-4)
    assert landmark_sidecar(out, "sub/b.png").is_file() and not landmark_sidecar(out, "dark.png").exists()
    assert LandmarkStore(root, out).image_noface("dark.png")
    assert sorted(p.name for p in root.rglob("*")) == ["a.jpg", "b.png", "dark.png", "sub"]
