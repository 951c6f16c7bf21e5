"""Expression transfer (paper section 5.3): one face's identity with another face's expression.

`transfer_codes` keeps the source's identity (and so its albedo), takes the target's expression and,
optionally, the target's pose and lighting; `transfer` decodes and renders the result. `expression_grid`
makes the paper's Figure 9: row i keeps identity i, column j takes expression j (the diagonal is each
source's own reconstruction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facerep.apps.export import save_image, save_npz, to_uint8, write_meshes
from facerep.apps.model import FaceRep
from facerep.common.safe_write import all_or_nothing, output_folder
from facerep.core.types import Codes, Reconstruction


@dataclass
class TransferResult:
    """A transferred face.

    Attributes:
        codes: source identity, target expression, the chosen pose and light (B rows).
        reconstruction: decoded vertices (B, N, 3) mm (canonical), albedo (B, N, 3) and the rendering.
    """

    codes: Codes
    reconstruction: Reconstruction


def transfer_codes(source: Codes, target: Codes, *, pose: bool = False, light: bool = False) -> Codes:
    """Source identity (and skips: the albedo follows the identity), target expression, pose / light from
    the target when asked, else from the source. Rows pair up (or one row broadcasts)."""
    rows = max(source.identity.shape[0], target.identity.shape[0])

    def expand(t: Tensor) -> Tensor:
        return t.expand(rows, *t.shape[1:]) if t.shape[0] == 1 else t

    return Codes(
        identity=expand(source.identity),
        expression=expand(target.expression),
        pose=expand(target.pose if pose else source.pose),
        light=expand(target.light if light else source.light),
        skips=[expand(s) for s in source.skips],
    )


@torch.no_grad()
def transfer(
    model: FaceRep,
    source: Tensor,
    target: Tensor,
    *,
    pose: bool = False,
    light: bool = False,
    source_landmarks: Tensor | None = None,
    target_landmarks: Tensor | None = None,
) -> TransferResult:
    """Images (B, 3, H, W) of sources and targets -> the transferred faces, rendered.

    `source_landmarks` / `target_landmarks`: (B, 68, 2) in pixels of those images, for a run whose encoder
    reads them (NaN rows, or None: found on the crops, `FaceRep.input_landmarks`); ignored by other runs."""
    codes = transfer_codes(
        model.encode(source, source_landmarks), model.encode(target, target_landmarks), pose=pose, light=light
    )
    recon = model.decode(codes)
    rendering = model.render(recon.vertices, recon.albedo, codes.pose, codes.light)
    return TransferResult(codes, replace(recon, rendering=rendering))


def write_transfer(
    model: FaceRep, result: TransferResult, out: str | Path, *, source: Tensor, target: Tensor
) -> dict[str, Path]:
    """Write ``transfer.obj`` / ``transfer.ply`` (canonical mm, vertex colours), ``transfer.png`` (RGBA
    rendering), ``panel.png`` (source crop | target crop | result over the source) and ``codes.npz`` into
    `out` (created): all of them or, on an error (a read-only folder, a full disk: `WriteError`), none.
    Returns the written paths (inside `out` resolved) by role."""
    recon = result.reconstruction
    rendering = recon.rendering
    src, tgt = model.prepare(source)[0].cpu(), model.prepare(target)[0].cpu()
    mask = rendering.mask[0].cpu()
    result_image = src * (1 - mask) + rendering.image[0].cpu() * mask
    panel = np.concatenate([to_uint8(src), to_uint8(tgt), to_uint8(result_image)], axis=1)
    codes = result.codes
    arrays = {
        "identity": codes.identity[0],
        "expression": codes.expression[0],
        "pose": codes.pose[0],
        "light": codes.light[0],
        "vertices": recon.vertices[0],
    }
    with all_or_nothing():
        folder = output_folder(out)
        meshes = write_meshes(folder, "transfer", recon.vertices[0], model.face_model, recon.albedo[0])
        files = {f"mesh_{k}": p for k, p in meshes.items()}
        files["render"] = save_image(folder / "transfer.png", rendering.image[0], rendering.mask[0])
        files["panel"] = save_image(folder / "panel.png", panel)
        files["codes"] = save_npz(folder / "codes.npz", arrays)
    return files


@torch.no_grad()
def expression_grid(
    model: FaceRep,
    identities: Tensor,
    expressions: Tensor,
    *,
    pose: bool = False,
    light: bool = False,
    background: float = 1.0,
    identity_landmarks: Tensor | None = None,
    expression_landmarks: Tensor | None = None,
) -> np.ndarray:
    """Figure 9: an (R + 1) x (C + 1) image grid (H, W, 3) uint8.

    The top row shows the C expression photos, the left column the R identity photos; cell (i, j)
    renders identity i with expression j (pose and light of identity i unless `pose` / `light`), over a
    plain background of grey level `background`. `identity_landmarks` / `expression_landmarks`: (R | C,
    68, 2) in pixels of the photos as given, for a run whose encoder reads them (see `transfer`).
    """
    id_marks = model.input_landmarks(identities, identity_landmarks)
    exp_marks = model.input_landmarks(expressions, expression_landmarks)
    id_images, exp_images = model.prepare(identities), model.prepare(expressions)
    id_codes, exp_codes = model.model.encode(id_images, id_marks), model.model.encode(exp_images, exp_marks)
    rows, cols, size = id_images.shape[0], exp_images.shape[0], model.image_size
    blank = torch.full((3, size, size), float(background))
    tiles = [[blank] + [exp_images[j].cpu() for j in range(cols)]]
    for i in range(rows):
        source = Codes(
            id_codes.identity[i : i + 1],
            id_codes.expression[i : i + 1],
            id_codes.pose[i : i + 1],
            id_codes.light[i : i + 1],
            [s[i : i + 1] for s in id_codes.skips],
        )
        codes = transfer_codes(source, exp_codes, pose=pose, light=light)
        recon = model.decode(codes)
        rendering = model.render(recon.vertices, recon.albedo, codes.pose, codes.light)
        mask = rendering.mask.cpu()
        cells = rendering.image.cpu() * mask + float(background) * (1 - mask)
        tiles.append([id_images[i].cpu()] + [cells[j] for j in range(cols)])
    grid = torch.cat([torch.cat(row, dim=2) for row in tiles], dim=1)
    return to_uint8(grid)


def save_grid(path: str | Path, grid: np.ndarray) -> Path:
    """Write an `expression_grid` image (H, W, 3) uint8 as PNG, atomically; its folder is created."""
    path = Path(path)
    return save_image(output_folder(path.parent) / path.name, grid)


def stack_photos(images: Sequence[Tensor]) -> Tensor:
    """(3, S, S) crops -> (B, 3, S, S)."""
    return torch.stack(list(images))
