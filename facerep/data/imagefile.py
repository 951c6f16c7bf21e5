"""Reading images and cutting square, resized crops with their landmarks and masks.

Reading (`load_image`, `load_image_within`) turns every image into 8-bit RGB: 16-bit greyscale (PNG, TIFF)
is scaled to 8 bits, not clipped to white; 32-bit integer and float greyscale are scaled from their
range. A missing, corrupt or truncated file, and an image larger than `max_image_pixels` (a
decompression bomb: a small file that decodes to gigapixels), are `DataError`s naming the file.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from facerep.common.errors import DataError

_ROWS_PER_BLOCK = 512  # rows converted at a time when scaling high-bit-depth images (bounded temporaries)


def max_image_pixels() -> int | None:
    """The largest image (width x height) read: PIL's decompression-bomb limit, ``2 * MAX_IMAGE_PIXELS``
    (about 179 Mpx by default), or None when that check is turned off."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _open(path: Path) -> Image.Image:
    """``Image.open`` with PIL's size warning silenced (the limit is enforced here instead); every failure
    to open is a `DataError` naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = _pixels(int(found.group(1))) if found else "too many pixels"
        raise DataError(
            f"{path}: image too large to read ({size}; the limit is {_pixels(max_image_pixels() or 0)}, "
            "a guard against decompression bombs): downscale it first"
        ) from None
    except Exception as exc:  # PIL's parsers raise many types on a damaged file
        raise DataError(f"{path}: corrupt or truncated image ({_cause(exc)})") from None


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """`_open`, closed on leaving unless the image was kept (`_keep`)."""
    image = _open(path)
    try:
        yield image
    finally:
        if not getattr(image, "_facerep_kept", False):
            image.close()


def _keep(image: Image.Image, result: Image.Image) -> Image.Image:
    """`result` to return from within `_opened`: the decoded `image` itself is handed out (not copied) when
    it no longer holds its file; otherwise a copy, and `image` is closed."""
    if result is image:
        if getattr(image, "fp", None) is None and getattr(image, "map", None) is None:
            image._facerep_kept = True  # type: ignore[attr-defined]
            return image
        return image.copy()
    return result


def _pixels(count: int) -> str:
    return f"{count / 1e6:.0f} Mpx" if count >= 10**6 else f"{count} px"


def _cause(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _check_size(path: Path, image: Image.Image) -> None:
    limit = max_image_pixels()
    width, height = image.size
    if width < 1 or height < 1:
        raise DataError(f"{path}: image has no pixels ({width} x {height})")
    if limit is not None and width * height > limit:
        raise DataError(
            f"{path}: image too large to read ({width} x {height} = {_pixels(width * height)}; the limit "
            f"is {_pixels(limit)}, a guard against decompression bombs): downscale it first"
        )


def _decode(path: Path, image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except MemoryError:
        raise DataError(
            f"{path}: not enough memory to decode the image ({image.size[0]} x {image.size[1]})"
        ) from None
    except Exception as exc:  # truncated data, bad checksums, broken headers ...
        raise DataError(f"{path}: corrupt or truncated image ({_cause(exc)})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """A decoded image as 8-bit RGB (returned as is when it already is), greyscale scaled by `eight_bit`;
    other modes convert as PIL converts them (alpha dropped)."""
    image = eight_bit(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def eight_bit(image: Image.Image) -> Image.Image:
    """High-bit-depth greyscale as 8-bit greyscale (``L``); any other image as it is.

    16-bit (``I;16*`` modes) is scaled by 255 / 65535; 32-bit integer (``I``) the same when its maximum is
    above 255 (else it holds 8-bit values); float (``F``) from [0, 1] when its maximum is at most 1, else
    from [0, 255]. Values are rounded and clipped; NaN becomes 0.
    """
    if not (image.mode.startswith("I") or image.mode == "F"):
        return image
    if image.mode in ("I", "F"):
        high = float(image.getextrema()[1])
        top = (1.0 if not high > 1.0 else 255.0) if image.mode == "F" else (65535.0 if high > 255 else 255.0)
    else:
        top = 65535.0
    width, height = image.size
    grey = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, _ROWS_PER_BLOCK):  # strips: no full-size copy of the wide pixels
        strip = np.asarray(image.crop((0, start, width, min(height, start + _ROWS_PER_BLOCK))))
        scaled = np.nan_to_num(strip.astype(np.float32)) * (255.0 / top) + 0.5
        grey[start : start + strip.shape[0]] = np.clip(scaled, 0, 255)
    return Image.fromarray(grey, mode="L")


def load_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image as 8-bit RGB at full resolution (see the module docstring); a missing,
    corrupt, truncated or too large file raises `DataError` naming it. Peak memory: about 3 bytes per pixel
    (RGB files are not copied once decoded)."""
    path = Path(path)
    with _opened(path) as image:
        _check_size(path, image)
        _decode(path, image)
        eight = eight_bit(image)
        if eight is not image:
            image.close()  # the wide pixels go before the RGB copy is made
        return _keep(image, eight if eight.mode == "RGB" else eight.convert("RGB"))


def load_image_within(path: str | Path, max_pixels: int) -> tuple[Image.Image, float]:
    """Open an image as 8-bit RGB reduced by an integer factor to at most `max_pixels` pixels, decoding no
    more than needed: JPEGs decode at 1/2, 1/4 or 1/8 scale directly (``draft``), other formats are
    reduced by box averaging (``reduce``) before the conversion to RGB.

    Returns:
        (image, scale): ``scale`` = output pixels per input pixel (1.0 when not reduced); a point p in the
        file's pixel coordinates is ``p * scale`` in the returned image's (pixel edges map to edges).
    """
    path = Path(path)
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    with _opened(path) as image:
        _check_size(path, image)
        width, height = image.size
        factor = _reduction(image.size, max_pixels)
        scale = 1.0
        if factor > 1 and image.format == "JPEG":
            target = (math.ceil(width / factor), math.ceil(height / factor))
            drafted = image.draft("RGB", target)  # decodes at 1/2, 1/4 or 1/8 of the size, not below target
            if drafted is not None:
                scale = drafted[1][2] / width
        _decode(path, image)
        rest = _reduction(image.size, max_pixels)
        reduced = image
        if rest > 1:
            wide = image.mode in ("I", "F")  # PIL reduces these as they are; I;16 it cannot
            reduced = _reduce(image if wide else eight_bit(image), rest)
            scale /= rest
        return _keep(image, to_rgb(reduced)), scale


def _reduction(size: tuple[int, int], max_pixels: int) -> int:
    """The smallest integer factor k with ceil(w / k) * ceil(h / k) <= max_pixels."""
    width, height = size
    k = max(1, math.ceil(math.sqrt(width * height / max_pixels)))
    while math.ceil(width / k) * math.ceil(height / k) > max_pixels:
        k += 1
    return k


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``image.reduce(factor)`` (box average); through RGB for the modes PIL cannot reduce (palette, ...)."""
    try:
        return image.reduce(factor)
    except (ValueError, NotImplementedError):
        return image.convert("RGB").reduce(factor)


def center_box(width: int, height: int) -> tuple[float, float, float]:
    """The largest centred square of a width x height image: (x0, y0, side) in pixels."""
    side = float(min(width, height))
    return (width - side) / 2.0, (height - side) / 2.0, side


def landmark_box(landmarks: np.ndarray, scale: float = 1.7) -> tuple[float, float, float]:
    """A square box around 68 landmarks: centred on their bounding box, side = scale x its longer side.

    The centre is moved up by 10% of the side (the landmarks stop at the brows, the forehead is above).
    The default scale 1.7 frames a face as the synthetic photos do (a face region about 0.65 of the width).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    side = float(max(hi - lo) * scale)
    side = max(side, 1.0)
    cx, cy = (lo + hi) / 2.0
    cy -= 0.1 * side
    return cx - side / 2.0, cy - side / 2.0, side


def crop_resize(
    image: Image.Image,
    box: tuple[float, float, float],
    size: int,
    landmarks: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Cut the square `box` (x0, y0, side) out of `image` (zero outside it) and resize to `size`.

    Resampling is antialiased bilinear; pixel centres map exactly (output pixel i samples the source at
    x0 + (i + 0.5) side / size), so landmarks follow with p' = (p - (x0, y0)) size / side.

    Returns:
        image (3, size, size) float in [0, 1]; landmarks (68, 2) px or None; mask (1, size, size) in [0, 1]
        or None.
    """
    x0, y0, side = box
    ix0, iy0 = math.floor(x0), math.floor(y0)
    ix1, iy1 = math.ceil(x0 + side), math.ceil(y0 + side)
    inner = (x0 - ix0, y0 - iy0, x0 - ix0 + side, y0 - iy0 + side)

    def _cut(im: Image.Image) -> Image.Image:
        if (ix0, iy0, ix1, iy1) != (0, 0, im.width, im.height):
            im = im.crop((ix0, iy0, ix1, iy1))
        return im.resize((size, size), Image.BILINEAR, box=inner)

    out = torch.from_numpy(np.asarray(_cut(image), dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    lm_out = None
    if landmarks is not None:
        lm = (np.asarray(landmarks, dtype=np.float64) - (x0, y0)) * (size / side)
        lm_out = torch.from_numpy(lm.astype(np.float32))
    mask_out = None
    if mask is not None:
        m = Image.fromarray((np.asarray(mask, dtype=np.float32) * 255.0).round().astype(np.uint8), mode="L")
        mask_out = torch.from_numpy(np.asarray(_cut(m), dtype=np.float32) / 255.0)[None]
    return out, lm_out, mask_out
