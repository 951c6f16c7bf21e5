"""Motion-JPEG streams: JPEG frames written back to back (MICC Florence's ``.mjpg`` videos).

A raw MJPEG stream has no container: each frame is a complete JPEG file, from its start-of-image
marker (FF D8) to its end-of-image marker (FF D9). `index_mjpeg` walks each frame's marker segments
by their lengths up to the first start-of-scan (so thumbnails embedded in EXIF segments, which carry
their own FF D8 / FF D9, are skipped), then finds the end-of-image marker after the entropy-coded data
(where a literal FF is always stuffed as FF 00, so FF D9 cannot occur inside it).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from facerep.common.errors import DataError

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_SOS = 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


def _frame_end(data: bytes, start: int, path: Path) -> int:
    """End offset (exclusive) of the JPEG starting at `start` (which holds SOI)."""
    pos = start + 2
    n = len(data)
    while True:
        while pos < n and data[pos] != 0xFF:
            pos += 1  # tolerate garbage between segments
        while pos < n and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= n:
            raise DataError(f"{path}: truncated JPEG frame at byte {start} (no start-of-scan)")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos  # EOI without a scan (degenerate but complete)
        if marker in _STANDALONE:
            continue
        if pos + 2 > n:
            raise DataError(f"{path}: truncated JPEG frame at byte {start}")
        length = int.from_bytes(data[pos : pos + 2], "big")
        seg_end = pos + length
        if marker == _SOS:
            end = data.find(EOI, seg_end)
            if end < 0:
                raise DataError(f"{path}: truncated JPEG frame at byte {start} (no end-of-image marker)")
            return end + 2
        pos = seg_end


def index_mjpeg(path: str | Path, data: bytes | None = None) -> list[tuple[int, int]]:
    """Byte ranges ``(start, end)`` of every JPEG frame of a motion-JPEG file, in order.

    Raises `DataError` naming the file when it is missing, holds no frame, or its last frame is cut.
    """
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read video ({exc.strerror or exc})") from exc
    frames: list[tuple[int, int]] = []
    pos = data.find(SOI)
    while pos >= 0:
        end = _frame_end(data, pos, path)
        frames.append((pos, end))
        pos = data.find(SOI, end)
    if not frames:
        raise DataError(f"{path}: no JPEG frame found (not a motion-JPEG stream)")
    return frames


def decode_jpeg(data: bytes, where: str = "<bytes>") -> np.ndarray:
    """Decode one JPEG -> (H, W, 3) uint8 RGB; a corrupt frame raises `DataError` naming `where`."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: corrupt JPEG frame ({exc})") from exc


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """Encode an (H, W, 3) uint8 RGB frame as a baseline JPEG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8), mode="RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_mjpeg(path: str | Path, frames: Iterable[np.ndarray], quality: int = 90) -> int:
    """Write (H, W, 3) uint8 RGB frames as a motion-JPEG stream; returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as fh:
        for frame in frames:
            fh.write(encode_jpeg(frame, quality))
            count += 1
    return count


def read_mjpeg(path: str | Path) -> Iterator[np.ndarray]:
    """Yield every frame of a motion-JPEG file as (H, W, 3) uint8 RGB."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read video ({exc.strerror or exc})") from exc
    for i, (start, end) in enumerate(index_mjpeg(path, data)):
        yield decode_jpeg(data[start:end], f"{path} frame {i}")


def read_mjpeg_frame(path: str | Path, span: tuple[int, int], index: int = -1) -> np.ndarray:
    """Decode the single frame at byte range `span` (from `index_mjpeg`) without reading the whole file."""
    path = Path(path)
    start, end = span
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
    except OSError as exc:
        raise DataError(f"{path}: cannot read video ({exc.strerror or exc})") from exc
    if len(data) != end - start:
        raise DataError(f"{path}: frame {index} is cut short (file changed since it was indexed?)")
    return decode_jpeg(data, f"{path} frame {index}")
