"""``facerep data``: write the synthetic world to disk, detect 68 landmarks on real photos and videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from facerep.core.errors import FacerepError

data_app = typer.Typer(
    help="Datasets: the synthetic world, and preprocessing of real photos.", no_args_is_help=True
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
VIDEO_SUFFIXES = (".mjpg", ".mjpeg")
DETECT_HINT = (
    "68-point landmark detection needs the optional `face-alignment` package: "
    "pip install face-alignment (facerep's `detect` extra; it downloads its network weights on first use). "
    "Alternatively write the landmarks with any tool as iBUG .pts files under DIR/landmarks68/ "
    "(see facerep.data.sidecars)."
)


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Destination folder (celeba/, 300w_lp/, micc/ inside)."),
    preset: str = typer.Option("demo", "--preset", help="tiny | demo | standard | paper."),
    seed: int = typer.Option(0, "--seed", help="World seed (also the synthetic face model's seed)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
) -> None:
    """Render the synthetic face world into the real datasets' on-disk layouts."""
    from rich.console import Console

    from facerep.data.synth import get_preset
    from facerep.data.world import write_world

    spec = get_preset(preset)
    path = write_world(out, spec.name, seed, force=force, progress=True)
    console = Console()
    console.print(f"[bold green]synthetic world[/] {spec.name} (seed {seed}) in {path}")
    for sub, what in (("celeba", "photo collection"), ("300w_lp", "3DMM-labelled"), ("micc", "evaluation")):
        console.print(f"  {path / sub}  ({what})")


class _Detector:
    """face-alignment's 2D 68-point detector, returning facerep pixel coordinates (centres at +0.5)."""

    def __init__(self, device: str) -> None:
        try:
            import face_alignment
        except ImportError:
            raise FacerepError(DETECT_HINT) from None
        kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self.fa = face_alignment.FaceAlignment(kind, device=device, flip_input=False)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self.fa.get_landmarks_from_image(rgb)
        if not found:
            return None
        # several faces: keep the largest (the photo's subject)
        best = max(found, key=lambda p: float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))
        return np.asarray(best[:, :2], dtype=np.float32) + 0.5  # face-alignment: pixel centres on integers


@data_app.command("landmarks")
def landmarks(
    directory: Path = typer.Argument(..., help="Dataset root: every image and .mjpg under it is processed."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the detector."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo files that already have landmarks."),
) -> None:
    """Detect 68 landmarks (iBUG order) and write the sidecars facerep reads.

    Images: DIR/landmarks68/REL.pts (iBUG .pts). Motion-JPEG videos: VIDEO.landmarks68.csv beside them.
    Face masks are not computed here: write them from any segmentation tool as 8-bit PNGs under
    DIR/masks/REL.png (>= 128 = visible skin); without one the landmark hull is used.
    """
    from rich.console import Console
    from rich.progress import track

    from facerep.data.imagefile import load_image
    from facerep.data.mjpeg import read_mjpeg
    from facerep.data.sidecars import (
        LANDMARK_DIR,
        MASK_DIR,
        landmark_sidecar,
        video_landmarks_path,
        write_pts,
        write_video_landmarks,
    )

    root = directory.expanduser()
    if not root.is_dir():
        raise FacerepError(f"{root}: folder not found")
    skip_dirs = {root / LANDMARK_DIR, root / MASK_DIR}
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES and not any(d in p.parents for d in skip_dirs)
    ]
    if not files:
        raise FacerepError(f"{root}: no image or .mjpg video found")
    detector = _Detector(device)
    console = Console()
    missed, written = [], 0
    for path in track(files, description="detecting landmarks", console=console):
        rel = path.relative_to(root)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            target = video_landmarks_path(path)
            if target.exists() and not overwrite:
                continue
            marks = {}
            for k, frame in enumerate(read_mjpeg(path)):
                found = detector(frame)
                if found is None:
                    missed.append(f"{rel}#{k}")
                else:
                    marks[k] = found
            write_video_landmarks(target, marks)
        else:
            target = landmark_sidecar(root, rel)
            if target.exists() and not overwrite:
                continue
            found = detector(np.asarray(load_image(path)))
            if found is None:
                missed.append(str(rel))
                continue
            write_pts(target, found)
        written += 1
    console.print(f"wrote landmarks for {written} file(s) under {root}")
    if missed:
        head = ", ".join(missed[:10]) + (" ..." if len(missed) > 10 else "")
        console.print(f"[yellow]no face found in {len(missed)} image(s)/frame(s):[/] {head}")
