"""Training sample sheets: one row per image: input | render | albedo | shaded shape | landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from facerep.core.model import FaceRepModel
from facerep.core.types import Batch


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def write_sample_sheet(path: Path, model: FaceRepModel, batch: Batch, rows: int = 6) -> Path:
    """Render the first `rows` images of `batch` and save the sheet as PNG.

    Columns: the input; the full rendering pasted over the input; the albedo rendered under the
    ambient light only; the shape rendered grey under a frontal light; the input with detected
    landmarks (green) and the model's projected landmarks (red).
    """
    images = batch.images[:rows]
    recon = model(images, batch.landmarks[:rows])
    codes, rendering = recon.codes, recon.rendering
    ambient = torch.zeros_like(codes.light)
    albedo_view = model.render(recon.vertices, recon.albedo, codes.pose, ambient)
    grey = torch.full_like(recon.albedo, 0.7)
    light = torch.zeros_like(codes.light)
    light.view(-1, 3, 9)[:, :, 2] = 0.4  # +z (towards the camera) band-1 term: a frontal key light
    shaded = model.render(
        recon.vertices, grey, torch.cat([codes.pose[:, :3] * 0, codes.pose[:, 3:]], 1), light
    )
    composite = rendering.image * rendering.mask + images * (1 - rendering.mask)
    size = images.shape[-1]
    sheet = Image.new("RGB", (5 * size, rows * size), "black")
    for r in range(images.shape[0]):
        tiles = [images[r], composite[r], albedo_view.image[r], shaded.image[r], images[r]]
        for c, tile in enumerate(tiles):
            sheet.paste(Image.fromarray(_to_uint8(tile)), (c * size, r * size))
        draw = ImageDraw.Draw(sheet)
        for points, colour in ((batch.landmarks[r], (0, 255, 0)), (rendering.landmarks_2d[r], (255, 0, 0))):
            for x, y in points.detach().cpu().tolist():
                cx, cy = 4 * size + x, r * size + y
                draw.point((cx, cy), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def write_step_sample_sheet(out: Path, model: FaceRepModel, batch: Batch, stage: str, step: int) -> Path:
    """``<out>/samples/<stage>-step-<step>.png`` from the first 6 images of `batch`, the model in eval
    mode without gradients (put back in training mode after)."""
    model.eval()
    with torch.no_grad():
        path = out / "samples" / f"{stage}-step-{step:08d}.png"
        write_sample_sheet(path, model, batch, rows=min(6, batch.size))
    model.train()
    return path
