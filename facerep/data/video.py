"""Video frames as RGB arrays, whatever the container: raw motion-JPEG streams and FFmpeg formats.

- **Raw motion-JPEG** (MICC Florence's ``.mjpg`` / ``.mjpeg``, or any file that starts with a JPEG
  start-of-image marker, whatever its suffix): split at the JPEG markers by `facerep.data.mjpeg`, no extra
  package.
- **Everything else** (``.mpg``, ``.avi``, ``.mp4``, ``.mkv``, ``.mov``, ...): decoded by PyAV (the ``av``
  package on PyPI, whose wheels ship FFmpeg; installed by facerep's ``detect`` extra). Frames come out in
  presentation order as FFmpeg decodes them; ``rgb24`` conversion is exact for RGB codecs (ffv1,
  rawvideo, libx264rgb), so a lossless file reads back frame-exactly.

`VideoReader` counts frames without decoding them (JPEG markers, or container packets) and decodes frames
in increasing index order cheaply (one pass); going back reopens the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError, FacerepError
from facerep.data.mjpeg import SOI, index_mjpeg, read_mjpeg_frame

#: Suffixes read as videos (case-insensitive).
VIDEO_SUFFIXES = (".mjpg", ".mjpeg", ".mpg", ".mpeg", ".avi", ".mp4", ".mkv", ".mov", ".webm")
#: Suffixes of raw motion-JPEG streams.
MJPEG_SUFFIXES = (".mjpg", ".mjpeg")
#: What fixes a missing PyAV.
PYAV_INSTALL = "pip install 'facerep[detect]' (or: pip install av)"


def is_raw_mjpeg(path: Path) -> bool:
    """True when the file starts with a JPEG start-of-image marker (a raw motion-JPEG stream)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == SOI
    except OSError as exc:
        raise DataError(f"{path}: cannot read video ({exc.strerror or exc})") from exc


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise FacerepError(
            f"reading this video needs the optional PyAV package (FFmpeg in a wheel): {PYAV_INSTALL}"
        ) from None
    return av


class VideoReader:
    """The frames of one video file.

    Args:
        path: a raw motion-JPEG stream or any container FFmpeg reads.
    Raises:
        `DataError` naming the file when it is missing or unreadable; `FacerepError` with the install
        line when it needs PyAV and PyAV is missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: video not found")
        self.kind = "mjpeg" if is_raw_mjpeg(self.path) else "av"
        self._spans: list[tuple[int, int]] | None = None
        self._count: int | None = None
        self._container: Any = None
        self._decoded: Iterator[Any] | None = None
        self._next = 0
        if self.kind == "mjpeg":
            self._spans = index_mjpeg(self.path)
            self._count = len(self._spans)
        else:
            self._av = _import_av()
            self._count = self._count_packets()

    def _open(self) -> Any:
        try:
            container = self._av.open(str(self.path))
        except Exception as exc:  # PyAV raises its own FFmpeg error classes
            raise DataError(f"{self.path}: cannot open video ({exc})") from exc
        if not container.streams.video:
            container.close()
            raise DataError(f"{self.path}: no video stream")
        return container

    def _count_packets(self) -> int:
        container = self._open()
        try:
            stream = container.streams.video[0]
            count = sum(1 for packet in container.demux(stream) if packet.size)
        except Exception as exc:
            raise DataError(f"{self.path}: corrupt video ({exc})") from exc
        finally:
            container.close()
        if count == 0:
            raise DataError(f"{self.path}: the video has no frame")
        return count

    def __len__(self) -> int:
        return int(self._count or 0)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the open decoder (data-loader workers reopen the file)."""
        state = dict(self.__dict__)
        state.update(_container=None, _decoded=None, _next=0)
        state.pop("_av", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.kind == "av":
            self._av = _import_av()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the decoder (the reader reopens the file when asked for a frame again)."""
        if self._container is not None:
            self._container.close()
        self._container, self._decoded, self._next = None, None, 0

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based) as (H, W, 3) uint8 RGB."""
        if not 0 <= index < len(self):
            raise DataError(f"{self.path}: frame {index} outside [0, {len(self)})")
        if self._spans is not None:
            return read_mjpeg_frame(self.path, self._spans[index], index)
        if self._decoded is None or index < self._next:
            self.close()
            self._container = self._open()
            self._decoded = self._container.decode(video=0)
        try:
            while True:
                decoded = next(self._decoded)
                current = self._next
                self._next += 1
                if current == index:
                    return np.ascontiguousarray(decoded.to_ndarray(format="rgb24"))
        except StopIteration:
            raise DataError(
                f"{self.path}: frame {index} could not be decoded (the file ends early)"
            ) from None
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: corrupt frame {self._next - 1} ({exc})") from exc

    def frames(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) for the given frame indices (sorted; default all), decoding in one pass."""
        wanted = range(len(self)) if indices is None else sorted(set(int(i) for i in indices))
        for index in wanted:
            yield index, self.frame(index)


def write_video(path: str | Path, frames: Iterable[np.ndarray], *, codec: str = "ffv1", fps: int = 25) -> int:
    """Write (H, W, 3) uint8 RGB frames with PyAV (``ffv1`` / ``rawvideo`` / ``libx264rgb``: lossless) and
    return the number of frames. For tests and for exporting frame sequences."""
    av = _import_av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pix_fmt = {"ffv1": "bgr0", "rawvideo": "bgr24", "libx264rgb": "rgb24"}.get(codec, "yuv420p")
    count = 0
    with av.open(str(path), "w") as container:
        stream = None
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt
                if codec == "libx264rgb":
                    stream.options = {"crf": "0", "preset": "ultrafast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count
