"""Where the 68-landmark sidecars of a dataset live, and filling in the missing ones with a face detector.

A dataset root is never written to unless asked: landmarks that facerep detects go to a **mirror** of the
root's layout, by default in the cache (``cache_dir()/landmarks/NAME-HASH/``, one per resolved root), or in
any folder given as ``out``. The loaders look in the root first, then in the mirrors:

- a photo ``ROOT/REL.jpg``: ``ROOT/landmarks68/REL.pts`` or ``ROOT/REL.pts`` (as the dataset ships it),
  then ``MIRROR/landmarks68/REL.pts``; a photo in which the detector found no face gets an empty
  ``MIRROR/landmarks68/REL.noface`` marker, so that it is not searched again;
- a video ``ROOT/REL.mjpg``: ``ROOT/REL.landmarks68.csv``, then ``MIRROR/REL.landmarks68.csv``; the frames
  the detector looked at without finding a face are listed (one index a line) in
  ``MIRROR/REL.noface.txt``. Frames in neither file have not been looked at yet.

Files are written whole or not at all (`facerep.common.safe_write`), so an interrupted run resumes where it
stopped, and reruns skip what exists.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facerep.common.errors import DataError
from facerep.common.safe_write import write_text
from facerep.core.interfaces import DetectedFace, FaceDetector
from facerep.data.sidecars import (
    LANDMARK_DIR,
    pts_text,
    read_video_landmarks,
    video_landmarks_path,
    video_landmarks_text,
)

#: Sub-folder of the cache holding the mirrors.
CACHE_FOLDER = "landmarks"
NOFACE_SUFFIX = ".noface"
VIDEO_NOFACE_SUFFIX = ".noface.txt"
#: What the ``landmarks`` argument of the loaders accepts.
LANDMARK_MODES = ("files", "detect")


def mirror_root(root: str | Path) -> Path:
    """The cache mirror of a dataset root: ``cache_dir()/landmarks/NAME-HASH`` (hash of the resolved path)."""
    from facerep.common.paths import cache_dir

    resolved = Path(root).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.name) or "root"
    return cache_dir() / CACHE_FOLDER / f"{name}-{digest}"


def build_detector(name: str = "dlib", device: Any = "cpu", **options: Any) -> FaceDetector:
    """The registered ``face_detector`` `name` built for `device` (a missing optional package is a
    `facerep.common.errors.FacerepError` naming the ``pip install`` line)."""
    import torch

    from facerep.core.registry import get_registry

    node = {"type": name, **options}
    return get_registry().build(
        "face_detector", node, {"device": torch.device(str(device))}, address="detector"
    )


def largest_face(detector: FaceDetector, image: np.ndarray) -> DetectedFace | None:
    """The face with the largest box in an (H, W, 3) uint8 image, or None."""
    faces = detector.detect(image)
    return max(faces, key=lambda f: f.area) if faces else None


def _video_noface_path(video: Path) -> Path:
    return video.with_name(video.stem + VIDEO_NOFACE_SUFFIX)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


class LandmarkStore:
    """The landmark sidecars of one dataset root: lookup in the root and its mirrors, writes to one mirror.

    Args:
        root: the dataset root (only read).
        out: the folder new sidecars are written to, mirroring the root's layout (default: the cache mirror,
            `mirror_root`). It may be the root itself only when asked for explicitly.
    """

    def __init__(self, root: str | Path, out: str | Path | None = None) -> None:
        self.root = Path(root).expanduser()
        self.out = Path(out).expanduser() if out is not None else mirror_root(self.root)
        bases = [self.root, self.out, mirror_root(self.root)]
        self.bases: list[Path] = []
        for base in bases:
            if base not in self.bases:
                self.bases.append(base)

    # -- photos -------------------------------------------------------------------------------------------

    def image_landmarks(self, rel: str | Path) -> Path | None:
        """The ``.pts`` file of photo ``root/rel`` wherever it is (see the module docstring), or None."""
        rel = Path(rel)
        candidates = [
            self.root / LANDMARK_DIR / rel.with_suffix(".pts"),
            (self.root / rel).with_suffix(".pts"),
        ]
        candidates += [base / LANDMARK_DIR / rel.with_suffix(".pts") for base in self.bases[1:]]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return None

    def image_target(self, rel: str | Path) -> Path:
        """Where a detected ``.pts`` of photo ``root/rel`` is written."""
        return self.out / LANDMARK_DIR / Path(rel).with_suffix(".pts")

    def image_noface(self, rel: str | Path) -> bool:
        """True when an earlier run found no face in photo ``root/rel``."""
        rel = Path(rel)
        return any((base / LANDMARK_DIR / rel).with_suffix(NOFACE_SUFFIX).is_file() for base in self.bases)

    def write_image(self, rel: str | Path, face: DetectedFace | None) -> Path:
        """Record a detection of photo ``root/rel``: its ``.pts``, or a no-face marker; returns the file."""
        target = self.image_target(rel)
        if face is None:
            target = target.with_suffix(NOFACE_SUFFIX)
        self._check_writable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text(target, "" if face is None else pts_text(face.landmarks))

    # -- videos -------------------------------------------------------------------------------------------

    def video_landmarks(self, video_rel: str | Path) -> dict[int, np.ndarray]:
        """{frame: (68, 2) px} of video ``root/video_rel`` merged over the root and the mirrors."""
        marks: dict[int, np.ndarray] = {}
        for base in reversed(self.bases):  # the root wins
            path = video_landmarks_path(base / video_rel)
            if path.is_file():
                marks.update(read_video_landmarks(path))
        return marks

    def video_noface(self, video_rel: str | Path) -> set[int]:
        """Frames of video ``root/video_rel`` in which an earlier run found no face."""
        frames: set[int] = set()
        for base in self.bases:
            path = _video_noface_path(base / video_rel)
            if not path.is_file():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        frames.add(int(line))
                    except ValueError:
                        raise DataError(f"{path}:{number}: not a frame index: {line!r}") from None
        return frames

    def video_target(self, video_rel: str | Path) -> Path:
        """Where the landmark CSV of video ``root/video_rel`` is written."""
        return video_landmarks_path(self.out / video_rel)

    def write_video(self, video_rel: str | Path, found: dict[int, np.ndarray], noface: Iterable[int]) -> Path:
        """Add detections of video ``root/video_rel`` to its mirror files (landmark CSV + no-face list)."""
        target = self.video_target(video_rel)
        self._check_writable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        marks = read_video_landmarks(target) if target.is_file() else {}
        marks.update(found)
        write_text(target, video_landmarks_text(marks))
        missing = _video_noface_path(self.out / video_rel)
        known = set()
        if missing.is_file():
            known = {int(v) for v in missing.read_text(encoding="utf-8").split()}
        known |= set(int(f) for f in noface)
        write_text(missing, "".join(f"{f}\n" for f in sorted(known - set(marks))))
        return target

    def _check_writable(self, target: Path) -> None:
        if self.out != self.root and _inside(target, self.root):
            raise DataError(
                f"{target}: refusing to write inside the dataset folder {self.root}; give another --out"
            )


@dataclass
class FillReport:
    """What `fill_images` / `fill_video` did.

    Attributes:
        found: items (photo paths relative to the root, or frame indices) given landmarks by this call.
        noface: items in which the detector found no face (by this call or an earlier one).
        existing: items skipped because they already had landmarks or a no-face record.
    """

    found: list[Any] = field(default_factory=list)
    noface: list[Any] = field(default_factory=list)
    existing: list[Any] = field(default_factory=list)


Progress = Callable[[int], None]


def fill_images(
    store: LandmarkStore,
    rels: Sequence[str | Path],
    detector: FaceDetector | Callable[[], FaceDetector],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> FillReport:
    """Detect the largest face of every photo ``root/rel`` that has no landmarks yet and record it.

    `detector` may be a factory: it is only called when some photo needs detecting. `progress` is called
    with the number of photos done after each one.
    """
    from facerep.data.imagefile import load_image

    report = FillReport()
    built: FaceDetector | None = detector if isinstance(detector, FaceDetector) else None
    for k, rel in enumerate(rels, start=1):
        if not overwrite and (store.image_landmarks(rel) is not None or store.image_noface(rel)):
            report.existing.append(rel)
        else:
            if built is None:
                built = detector()  # type: ignore[operator]
            face = largest_face(built, np.asarray(load_image(store.root / rel)))
            store.write_image(rel, face)
            (report.found if face is not None else report.noface).append(rel)
        if progress is not None:
            progress(k)
    return report


def fill_video(
    store: LandmarkStore,
    video_rel: str | Path,
    detector: FaceDetector | Callable[[], FaceDetector],
    frames: Iterable[int] | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    flush_every: int = 100,
) -> FillReport:
    """Detect the largest face in frames of video ``root/video_rel`` (all, or `frames`) not looked at yet.

    Results are written every `flush_every` frames (so an interrupted run keeps its work) and at the end.
    """
    from facerep.data.video import VideoReader

    report = FillReport()
    with VideoReader(store.root / video_rel) as reader:
        wanted = sorted(set(range(len(reader)) if frames is None else (int(f) for f in frames)))
        wanted = [f for f in wanted if 0 <= f < len(reader)]
        done: set[int] = set()
        if not overwrite:
            done = set(store.video_landmarks(video_rel)) | store.video_noface(video_rel)
        todo = [f for f in wanted if f not in done]
        report.existing = [f for f in wanted if f in done]
        report.noface = [f for f in report.existing if f in store.video_noface(video_rel)]
        built: FaceDetector | None = detector if isinstance(detector, FaceDetector) else None
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for k, (index, frame) in enumerate(reader.frames(todo), start=1):
            if built is None:
                built = detector()  # type: ignore[operator]
            face = largest_face(built, frame)
            if face is None:
                missing.append(index)
            else:
                found[index] = face.landmarks
            if k % flush_every == 0:
                store.write_video(video_rel, found, missing)
                report.found += list(found)
                report.noface += missing
                found, missing = {}, []
            if progress is not None:
                progress(len(report.existing) + k)
        if todo:
            store.write_video(video_rel, found, missing)
            report.found += list(found)
            report.noface += missing
    return report


def detect_missing(
    store: LandmarkStore, rels: Sequence[str | Path], detector: str = "dlib", label: str = "photos"
) -> FillReport:
    """For a loader's ``landmarks: detect``: detect the photos among `rels` that have no landmarks and no
    no-face record yet, with a progress bar (on stderr) when there are any; the detector is only built
    then. Returns the `FillReport` of those photos."""
    todo = [rel for rel in rels if store.image_landmarks(rel) is None and not store.image_noface(rel)]
    if not todo:
        return FillReport(existing=list(rels))
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{label}: detecting 68 landmarks", total=len(todo))
        report = fill_images(
            store, todo, lambda: build_detector(detector), progress=lambda n: bar.update(task, completed=n)
        )
    console.print(
        f"{label}: landmarks detected for {len(report.found)} photo(s), no face in {len(report.noface)}; "
        f"cached in {store.out}",
        highlight=False,
        markup=False,
    )
    return report
