"""``facerep reconstruct IMAGE|DIR --run RUN``: meshes, albedo, renderings and codes for face photos."""

from __future__ import annotations

from pathlib import Path

import typer


def reconstruct(
    target: Path = typer.Argument(..., help="A photo, or a folder of photos (searched recursively)."),
    run: Path = typer.Option(..., "--run", help="Trained run directory (its newest checkpoint is used)."),
    out: Path = typer.Option(Path("reconstructions"), "--out", help="Output folder."),
    detect: bool = typer.Option(False, "--detect", help="Detect landmarks (needs facerep[detect])."),
    crop_scale: float = typer.Option(1.5, "--crop-scale", help="Crop side / landmark extent."),
    crop: str = typer.Option("auto", "--crop", help="auto (landmarks when known) | landmarks | center."),
    batch_size: int = typer.Option(8, "--batch-size", help="Photos per forward pass."),
    texture_size: int = typer.Option(256, "--texture-size", help="Side of baked UV textures, texels."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable photos instead of stopping."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Reconstruct face photos: canonical / posed / neutral meshes (.obj, textured .obj, .ply), albedo,
    re-rendering, overlay and codes, one folder per photo.

    Photos with a NAME.pts landmark file are cropped around the landmarks; others are taken as aligned
    face crops (or detected with --detect).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import facerep
    from facerep.apps.photos import find_photos
    from facerep.apps.reconstruct import reconstruct_photos

    console = Console(stderr=True)
    model = facerep.load(run, device=device)
    photos = find_photos(target)
    with Progress(
        TextColumn("[bold]reconstruct"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=len(photos) < 2,
    ) as bar:
        task = bar.add_task("photos", total=len(photos))
        results = reconstruct_photos(
            model,
            photos,
            out,
            detect=detect,
            crop_scale=crop_scale,
            crop=crop,
            batch_size=batch_size,
            texture_size=texture_size,
            on_error="skip" if skip_bad else "raise",
            progress=lambda done: bar.update(task, completed=done),
        )
    crops = {}
    for r in results:
        crops[r.crop] = crops.get(r.crop, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(crops.items()))
    console.print(f"[green]reconstructed {len(results)} photo(s)[/] ({summary}) into {out}")
    skipped = len(photos) - len(results)
    if skipped:
        console.print(f"[yellow]skipped {skipped} photo(s); see {out / 'index.json'}[/]")
