"""``facerep transfer SOURCE TARGET --run RUN``: the source's identity with the target's expression."""

from __future__ import annotations

from pathlib import Path

import typer


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
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
) -> None:
    """Expression transfer (paper section 5.3): render and write the source face with the target's
    expression (and, with --pose / --light, its pose and lighting). With --grid N, the first N photos of
    SOURCE give the rows (identities) and the first N of TARGET the columns (expressions)."""
    from rich.console import Console

    import facerep
    from facerep.apps.photos import find_photos, load_face_photos
    from facerep.apps.transfer import expression_grid, save_grid, stack_photos, write_transfer
    from facerep.apps.transfer import transfer as run_transfer
    from facerep.core.errors import FacerepError

    console = Console(stderr=True)
    model = facerep.load(run, device=device)
    if grid < 0:
        raise FacerepError(f"--grid must be positive, got {grid}")
    if grid:
        rows = load_face_photos(
            find_photos(source)[:grid], model.image_size, crop_scale=crop_scale, detect=detect
        )
        cols = load_face_photos(
            find_photos(target)[:grid], model.image_size, crop_scale=crop_scale, detect=detect
        )
        image = expression_grid(
            model,
            stack_photos([p.image for p in rows]),
            stack_photos([p.image for p in cols]),
            pose=pose,
            light=light,
        )
        path = save_grid(out / "grid.png", image)
        console.print(f"[green]{len(rows)} x {len(cols)} expression-transfer grid[/] written to {path}")
        return
    src, tgt = load_face_photos(
        [find_photos(source)[0], find_photos(target)[0]],
        model.image_size,
        crop_scale=crop_scale,
        detect=detect,
    )
    result = run_transfer(model, src.image[None], tgt.image[None], pose=pose, light=light)
    files = write_transfer(model, result, out, source=src.image[None], target=tgt.image[None])
    console.print(
        f"[green]transferred[/] {tgt.path.name}'s expression onto {src.path.name}: {files['mesh_obj']}"
    )
