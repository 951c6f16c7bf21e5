"""``facerep transfer SOURCE TARGET --run RUN``: the source's identity with the target's expression."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from facerep.cli.options import device_option

if TYPE_CHECKING:
    from torch import Tensor


def transfer(
    source: Path = typer.Argument(..., help="Identity photo (with --grid: a photo or a folder of them)."),
    target: Path = typer.Argument(..., help="Expression photo (with --grid: a photo or a folder of them)."),
    run: Path = typer.Option(..., "--run", help="Trained run directory."),
    out: Path = typer.Option(Path("transfer"), "--out", help="Output folder."),
    pose: bool = typer.Option(False, "--pose", help="Also take the target's pose."),
    light: bool = typer.Option(False, "--light", help="Also take the target's lighting."),
    grid: int = typer.Option(0, "--grid", help="N: an N x N expression-transfer grid (paper Figure 9)."),
    detect: bool = typer.Option(False, "--detect", help="Detect landmarks (needs facerep[detect])."),
    crop_scale: float = typer.Option(1.5, "--crop-scale", help="Crop side / landmark extent."),
    device: str = device_option(),
) -> None:
    """Expression transfer (paper section 5.3): render and write the source face with the target's
    expression (and, with --pose / --light, its pose and lighting). With --grid N, the first N photos of
    SOURCE give the rows (identities) and the first N of TARGET the columns (expressions)."""
    from rich.console import Console

    import facerep
    from facerep.apps.transfer import expression_grid, save_grid, write_transfer
    from facerep.apps.transfer import transfer as run_transfer
    from facerep.common.errors import literal
    from facerep.data.photos import find_photos

    check_options(grid=grid, crop_scale=crop_scale)
    sources, targets = find_photos(source), find_photos(target)
    console = Console(stderr=True)
    from facerep.cli.options import start_device

    model = facerep.load(run, device=str(start_device(device, console)))
    crops = _CropReader(model.image_size, crop_scale=crop_scale, detect=detect)
    if grid:
        (rows, row_marks), (cols, col_marks) = crops(sources[:grid]), crops(targets[:grid])
        image = expression_grid(
            model,
            rows,
            cols,
            pose=pose,
            light=light,
            identity_landmarks=row_marks,
            expression_landmarks=col_marks,
        )
        path = save_grid(out / "grid.png", image)
        console.print(
            f"[green]{len(rows)} x {len(cols)} expression-transfer grid[/] written to {literal(path)}",
            highlight=False,
            soft_wrap=True,
        )
        return
    (src, src_marks), (tgt, tgt_marks) = crops([sources[0]]), crops([targets[0]])
    result = run_transfer(
        model, src, tgt, pose=pose, light=light, source_landmarks=src_marks, target_landmarks=tgt_marks
    )
    files = write_transfer(model, result, out, source=src, target=tgt)
    console.print(
        f"[green]transferred[/] {literal(targets[0].name)}'s expression onto {literal(sources[0].name)}: "
        f"{literal(files['mesh_obj'])}",
        highlight=False,
        soft_wrap=True,
    )


def check_options(*, grid: int, crop_scale: float) -> None:
    """Refuse out-of-range ``transfer`` options before the run is loaded (one `FacerepError`)."""
    import math

    from facerep.common.errors import FacerepError

    if grid < 0:
        raise FacerepError(f"--grid must be 0 (one transfer) or a number of photos per side, got {grid}")
    if not (math.isfinite(crop_scale) and crop_scale > 0):
        raise FacerepError(
            f"--crop-scale must be a positive number (crop side / landmark extent), got {crop_scale}"
        )


class _CropReader:
    """Photos -> their network crops (B, 3, S, S) and the crops' (B, 68, 2) landmarks in crop pixels (NaN
    rows for centre crops), one photo at a time: a full-size photo is dropped as soon as its crop is cut,
    so a grid of large photos holds one of them in memory, not all."""

    def __init__(self, image_size: int, *, crop_scale: float, detect: bool) -> None:
        from facerep.data.photos import LandmarkDetector

        self.image_size, self.crop_scale = image_size, crop_scale
        self.detector = LandmarkDetector() if detect else None

    def __call__(self, paths: list[Path]) -> tuple[Tensor, Tensor]:
        import torch

        from facerep.data.photos import crops_landmarks, load_face_photo

        crops, marks = [], []
        for p in paths:  # keep the crop and its landmarks, not the FacePhoto (it holds the full photo)
            photo = load_face_photo(p, self.image_size, crop_scale=self.crop_scale, detector=self.detector)
            crops.append(photo.image)
            marks.append(crops_landmarks([photo])[0])
        return torch.stack(crops), torch.stack(marks)
