"""Videos: FFmpeg containers through PyAV read back frame-exactly, raw motion-JPEG under any suffix."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from facerep.common.errors import DataError, FacerepError
from facerep.data.mjpeg import decode_jpeg, encode_jpeg, write_mjpeg
from facerep.data.video import VideoReader, write_video

needs_av = pytest.mark.skipif(
    importlib.util.find_spec("av") is None, reason="PyAV is not installed (pip install 'facerep[detect]')"
)


def _frames(n: int = 6, h: int = 36, w: int = 52) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@needs_av
@pytest.mark.parametrize(
    ("name", "codec"), [("v.avi", "ffv1"), ("v.mp4", "libx264rgb"), ("raw.avi", "rawvideo")]
)
def test_lossless_video_reads_back_frame_exactly(tmp_path, name: str, codec: str) -> None:
    frames = _frames()
    assert write_video(tmp_path / name, frames, codec=codec) == len(frames)
    reader = VideoReader(tmp_path / name)
    assert reader.kind == "av" and len(reader) == len(frames)
    for index, frame in reader.frames():
        np.testing.assert_array_equal(frame, frames[index])
    # random access: backwards reopens the file, forwards decodes on
    np.testing.assert_array_equal(reader.frame(4), frames[4])
    np.testing.assert_array_equal(reader.frame(1), frames[1])
    np.testing.assert_array_equal(reader.frame(5), frames[5])
    assert [i for i, _ in reader.frames([5, 0, 3])] == [0, 3, 5]
    with pytest.raises(DataError, match="frame 6 outside"):
        reader.frame(6)


def test_raw_mjpeg_is_read_whatever_its_suffix(tmp_path) -> None:
    frames = _frames(3)
    write_mjpeg(tmp_path / "clip.mpg", frames)  # some MICC copies name raw streams .mpg
    reader = VideoReader(tmp_path / "clip.mpg")
    assert reader.kind == "mjpeg" and len(reader) == 3
    np.testing.assert_array_equal(reader.frame(2), decode_jpeg(encode_jpeg(frames[2])))


def test_missing_and_unreadable_videos_name_the_file(tmp_path) -> None:
    with pytest.raises(DataError, match=r"gone\.avi: video not found"):
        VideoReader(tmp_path / "gone.avi")
    (tmp_path / "junk.avi").write_bytes(b"not a video at all" * 10)
    if importlib.util.find_spec("av") is not None:
        with pytest.raises(DataError, match=r"junk\.avi"):
            VideoReader(tmp_path / "junk.avi")


def test_without_pyav_a_container_video_names_the_pip_install(tmp_path, monkeypatch) -> None:
    (tmp_path / "v.avi").write_bytes(b"RIFF0000AVI LIST")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(FacerepError, match=r"pip install 'facerep\[detect\]' \(or: pip install av\)"):
        VideoReader(tmp_path / "v.avi")
