"""``facerep data``: write the synthetic world to disk, detect 68 landmarks on real photos and videos."""

from __future__ import annotations

from pathlib import Path

import typer

from facerep.cli.options import device_option
from facerep.common.errors import FacerepError

data_app = typer.Typer(
    help="Datasets: the synthetic world, and preprocessing of real photos.", no_args_is_help=True
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
LAYOUTS = ("auto", "celeba", "micc", "photos")


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Destination folder (celeba/, 300w_lp/, micc/, ... inside)."),
    preset: str = typer.Option("demo", "--preset", help="tiny | demo | standard | paper."),
    seed: int = typer.Option(0, "--seed", help="World seed (also the synthetic face model's seed)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
) -> None:
    """Render the synthetic face world into the real datasets' on-disk layouts."""
    from rich.console import Console

    from facerep.common.errors import literal
    from facerep.world.cache import write_world
    from facerep.world.synth import get_preset

    spec = get_preset(preset)
    path = write_world(out, spec.name, seed, force=force, progress=True)
    console = Console()
    console.print(
        f"[bold green]synthetic world[/] {literal(spec.name)} (seed {seed}) in {literal(path)}",
        highlight=False,
        soft_wrap=True,
    )
    folders = (("celeba", "photo collection"), ("300w_lp", "3DMM-labelled"), ("micc", "evaluation"),
               ("aflw2000", "landmark evaluation"), ("verification", "face verification"))  # fmt: skip
    for sub, what in folders:
        console.print(f"  {literal(path / sub)}  ({what})", highlight=False, soft_wrap=True)


def find_layout(root: Path) -> str:
    """A dataset root's layout: celeba (``img_align_celeba/``), micc (``subject_XX/`` folders) or photos."""
    if (root / "img_align_celeba").is_dir():
        return "celeba"
    if any(p.is_dir() for p in root.glob("subject_*")):
        return "micc"
    return "photos"


def layout_files(root: Path, layout: str) -> list[Path]:
    """The images (celeba, photos) or videos (micc) of a dataset root that get landmarks, relative to it."""
    from facerep.data.sidecars import LANDMARK_DIR, MASK_DIR
    from facerep.data.video import VIDEO_SUFFIXES

    if layout == "micc":
        found = [p for p in sorted(root.glob("subject_*/Video/*")) if p.suffix.lower() in VIDEO_SUFFIXES]
    elif layout == "celeba":
        found = [
            p for p in sorted((root / "img_align_celeba").glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
        ]
    else:
        skip = {root / LANDMARK_DIR, root / MASK_DIR}
        found = [
            p
            for p in sorted(root.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and not any(d in p.parents for d in skip)
        ]
    return [p.relative_to(root) for p in found if p.is_file()]


@data_app.command("landmarks")
def landmarks(
    directory: Path = typer.Argument(..., help="Dataset root (only read)."),
    layout: str = typer.Option(
        "auto", "--layout", help="auto | celeba | micc (videos) | photos (every image)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder for the landmark files, mirroring ROOT's layout (default: the cache mirror).",
    ),
    detector: str = typer.Option(
        "dlib", "--detector", help="Registered face_detector (dlib, face_alignment)."
    ),
    device: str = device_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo files that already have landmarks."),
) -> None:
    """Detect 68 landmarks (iBUG order) of the largest face in every image or video frame, resumably.

    Nothing is written inside ROOT: the landmark files go to a mirror of its layout, the cache mirror the
    loaders and the bench also search (or --out DIR; give the loaders `landmarks_dir: DIR`). Images:
    MIRROR/landmarks68/REL.pts; videos: MIRROR/REL.landmarks68.csv (frames with a face) and
    MIRROR/REL.noface.txt (frames without). A rerun skips what is done. Face masks are not computed here:
    write them from any segmentation tool as 8-bit PNGs under ROOT/masks/REL.png (>= 128 = visible skin);
    without one the landmark hull is used.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from facerep.cli.options import start_device
    from facerep.common.errors import literal
    from facerep.data.landmark_store import LandmarkStore, build_detector, fill_images, fill_video
    from facerep.data.video import VideoReader

    root = directory.expanduser()
    if not root.is_dir():
        raise FacerepError(f"{root}: folder not found")
    if layout not in LAYOUTS:
        raise FacerepError(f"--layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    layout = find_layout(root) if layout == "auto" else layout
    files = layout_files(root, layout)
    if not files:
        what = "video (subject_XX/Video/*)" if layout == "micc" else "image"
        raise FacerepError(f"{root}: no {what} found for layout {layout!r}")
    console = Console(stderr=True)
    resolved = start_device(device, console)
    face_detector = build_detector(detector, resolved)  # a missing package fails before any work
    store = LandmarkStore(root, out)
    console.print(
        f"{layout} layout: {len(files)} {'video' if layout == 'micc' else 'image'}(s); landmarks go to "
        f"{literal(store.out)}",
        highlight=False,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    found = existing = 0
    missed: list[str] = []
    with Progress(*columns, console=console) as bar:
        if layout == "micc":
            counts = {rel: len(VideoReader(root / rel)) for rel in files}
            task = bar.add_task("detecting faces in frames", total=sum(counts.values()))
            done = 0
            for rel in files:
                report = fill_video(
                    store,
                    rel,
                    face_detector,
                    overwrite=overwrite,
                    progress=lambda n, base=done: bar.update(task, completed=base + n),
                )
                done += counts[rel]
                found += len(report.found)
                existing += len(report.existing)
                missed += [f"{rel}#{f}" for f in report.noface]
        else:
            task = bar.add_task("detecting faces", total=len(files))
            report = fill_images(
                store,
                files,
                face_detector,
                overwrite=overwrite,
                progress=lambda n: bar.update(task, completed=n),
            )
            found, existing = len(report.found), len(report.existing)
            missed = [str(r) for r in report.noface]
    unit = "frame" if layout == "micc" else "image"
    console.print(
        f"landmarks for {found} {unit}(s) written, {existing} already done, in {literal(store.out)}",
        highlight=False,
    )
    if missed:
        head = ", ".join(missed[:10]) + (" ..." if len(missed) > 10 else "")
        console.print(
            f"[yellow]no face found in {len(missed)} {unit}(s):[/] {literal(head)}", highlight=False
        )
