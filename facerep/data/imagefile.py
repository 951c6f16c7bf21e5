"""Reading images and cutting square, resized crops with their landmarks and masks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from facerep.core.errors import DataError


def load_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image as RGB; a missing, truncated or corrupt file raises `DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from exc


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
