"""Landmark error pictures: ground truth (green) against each method's landmarks (red), drawn with Pillow.

One row per sample, one column per method; each panel is the sample's image cut around its ground-truth
face box and resized to `panel` pixels, with a line from every ground-truth point to its prediction and
the method's NME (percent of the box size) written in the corner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facerep.data.imagefile import crop_resize, landmark_box

TRUTH_RGB = (40, 220, 60)
PREDICTION_RGB = (235, 40, 40)
HEADER = 16


@dataclass
class LandmarkPanel:
    """One panel: a method's (68, 2) landmarks (pixels of the sample's image) and its NME (fraction)."""

    method: str
    landmarks: np.ndarray
    nme: float


@dataclass
class LandmarkRow:
    """One sample: its image, (68, 2) ground truth (pixels), a caption, and a panel per method."""

    image: Image.Image
    truth: np.ndarray
    caption: str
    panels: list[LandmarkPanel]


def _panel(row: LandmarkRow, panel: LandmarkPanel, size: int) -> Image.Image:
    box = landmark_box(row.truth, 1.4)
    crop, _, _ = crop_resize(row.image, box, size)
    canvas = Image.fromarray((crop.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    x0, y0, side = box
    scale = size / side

    def to_panel(points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - (x0, y0)) * scale

    truth, pred = to_panel(row.truth), to_panel(panel.landmarks)
    for (tx, ty), (px, py) in zip(truth, pred, strict=True):
        draw.line([(tx, ty), (px, py)], fill=(255, 230, 60), width=1)
    for points, colour in ((truth, TRUTH_RGB), (pred, PREDICTION_RGB)):
        for x, y in points:
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=colour)
    draw.rectangle([0, 0, size, 12], fill=(0, 0, 0))
    draw.text((2, 0), f"{panel.method[:18]} {panel.nme * 100:.1f}%", fill=(255, 255, 255))
    return canvas


def render_landmark_errors(rows: Sequence[LandmarkRow], path: str | Path, *, panel: int = 192) -> Path:
    """Draw `rows` (see the module docstring) into one PNG at `path`; returns the path."""
    if not rows:
        raise ValueError("no samples to draw")
    columns = max(len(r.panels) for r in rows)
    sheet = Image.new("RGB", (columns * panel, len(rows) * (panel + HEADER)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        top = i * (panel + HEADER)
        draw.text((4, top + 2), row.caption, fill=(0, 0, 0))
        for j, p in enumerate(row.panels):
            sheet.paste(_panel(row, p, panel), (j * panel, top + HEADER))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
