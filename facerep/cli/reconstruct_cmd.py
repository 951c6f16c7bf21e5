"""``facerep reconstruct IMAGE|DIR --run RUN``: meshes, albedo, renderings and codes of photos' faces."""

from __future__ import annotations

from pathlib import Path

import typer

from facerep.cli.options import device_option

NO_DETECT_WARNING = (
    "--no-detect: every photo is taken as an aligned face crop (its centred square); on an uncropped photo "
    "the face is rendered wherever the centre is"
)


def reconstruct(
    target: Path = typer.Argument(..., help="A photo, or a folder of photos (searched recursively)."),
    run: Path = typer.Option(..., "--run", help="Trained run directory (its newest checkpoint is used)."),
    out: Path = typer.Option(Path("reconstructions"), "--out", help="Output folder."),
    faces: str = typer.Option("all", "--faces", help="all (one output folder per face) | largest."),
    detect: bool = typer.Option(
        True, "--detect/--no-detect", help="Find faces with the detector (default), or take centred squares."
    ),
    detector: str = typer.Option(
        "dlib", "--detector", help="Registered face_detector (dlib, face_alignment)."
    ),
    crop_scale: float = typer.Option(1.5, "--crop-scale", help="Crop side / landmark extent."),
    batch_size: int = typer.Option(8, "--batch-size", help="Faces per forward pass."),
    texture_size: int = typer.Option(
        256,
        "--texture-size",
        help="Side of the UV albedo textures (albedo.png, the textured OBJ's), texels: 16 to 4096. A U-Net "
        "albedo map is resampled to it; per-vertex albedo is baked at it.",
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable photos instead of stopping."),
    device: str = device_option(),
) -> None:
    """Reconstruct the faces in photos: canonical / posed / neutral meshes (.obj, textured .obj, .ply),
    albedo, re-rendering, overlay and codes, one folder per face.

    Faces are found by a face detector (dlib by default, offline; needs facerep[detect]) unless a photo
    has a NAME.pts landmark file; a photo without a face is reported and skipped. --no-detect takes
    each photo as an aligned face crop (its centred square).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import facerep
    from facerep.apps.reconstruct import reconstruct_photos
    from facerep.cli.options import start_device
    from facerep.common.errors import literal
    from facerep.data.photos import find_photos

    check_options(faces=faces, crop_scale=crop_scale, batch_size=batch_size, texture_size=texture_size)
    console = Console(stderr=True)
    resolved = start_device(device, console)
    photos = find_photos(target)
    if detect:
        from facerep.data.landmark_store import build_detector

        face_detector = build_detector(
            detector, resolved
        )  # before loading the run: a missing package fails fast
    else:
        face_detector = None
        console.print(f"[yellow]warning:[/] {literal(NO_DETECT_WARNING)}", highlight=False)
    model = facerep.load(run, device=str(resolved))
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
            faces=faces,
            detector=face_detector or detector,
            crop_scale=crop_scale,
            batch_size=batch_size,
            texture_size=texture_size,
            on_error="skip" if skip_bad else "raise",
            progress=lambda done: bar.update(task, completed=done),
        )
    _summary(console, results, out)


def check_options(*, faces: str, crop_scale: float, batch_size: int, texture_size: int) -> None:
    """Refuse out-of-range ``reconstruct`` options before any photo or run is read (one `FacerepError`)."""
    import math

    from facerep.apps.reconstruct import TEXTURE_SIZES
    from facerep.common.errors import FacerepError
    from facerep.data.photos import FACES

    if faces not in FACES:
        raise FacerepError(f"--faces {faces!r}: choose {' or '.join(FACES)}")
    if not (math.isfinite(crop_scale) and crop_scale > 0):
        raise FacerepError(
            f"--crop-scale must be a positive number (crop side / landmark extent), got {crop_scale}"
        )
    if batch_size < 1:
        raise FacerepError(f"--batch-size must be at least 1 (faces per forward pass), got {batch_size}")
    low, high = TEXTURE_SIZES
    if not low <= texture_size <= high:
        raise FacerepError(f"--texture-size must be {low} to {high} texels, got {texture_size}")


def _summary(console: object, results: list, out: Path) -> None:
    import json

    from facerep.common.errors import literal

    crops: dict[str, int] = {}
    for r in results:
        crops[r.crop] = crops.get(r.crop, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(crops.items()))
    photos = len({str(r.photo) for r in results})
    console.print(  # type: ignore[attr-defined]
        f"[green]reconstructed {len(results)} face(s) of {photos} photo(s)[/] ({summary}) "
        f"into {literal(out)}",
        highlight=False,
    )
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    if index["no_face"]:
        shown = ", ".join(index["no_face"][:10]) + (" ..." if len(index["no_face"]) > 10 else "")
        console.print(  # type: ignore[attr-defined]
            f"[yellow]no face found in {len(index['no_face'])} photo(s), skipped:[/] {literal(shown)}",
            highlight=False,
        )
    if index["errors"]:
        console.print(  # type: ignore[attr-defined]
            f"[yellow]skipped {len(index['errors'])} unreadable photo(s)[/]; "
            f"see {literal(out / 'index.json')}",
            highlight=False,
        )
