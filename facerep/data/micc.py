"""MICC Florence layout: ground-truth neutral scans and three videos per subject (evaluation).

Under `root`: ``subject_XX/Model/frontal1/obj/*.obj`` (the scan, mm) and ``subject_XX/Video/
{Indoor-Cooperative,PTZ-Indoor,PTZ-Outdoor}.mjpg`` (raw motion-JPEG streams; ``.mjpeg`` copies are read the
same way, ``.mpg`` / ``.avi`` / ``.mp4`` through PyAV, `facerep.data.video`). Faces in the frames are not
cropped: every sample is cut from its frame by a square around its 68 landmarks, which come from
``VIDEO.landmarks68.csv`` (`facerep.data.sidecars`) in the root or in a landmark mirror
(`facerep.data.landmark_store`), or, with ``landmarks: detect``, from a face detector run on the frames
that have none yet (cached in the mirror, never in the dataset folder). Frames without a face are left
out and counted in ``noface_frames``; a missing or unreadable video is a bad sample (``on_bad_sample``)
and is listed in ``skipped_videos``.

The reader lives here, below the plugins, because the MICC benchmark reads the same layout
(`facerep.bench.micc_source`); the ``micc`` dataset plugin (`facerep.plugins.datasets.micc`) registers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facerep.common.errors import DataError
from facerep.core.types import DEFAULT_IMAGE_SIZE
from facerep.data.base import ImageFaceDataset
from facerep.data.landmark_store import LANDMARK_MODES, LandmarkStore, build_detector, fill_video
from facerep.data.objfile import read_obj
from facerep.data.sidecars import video_landmarks_path
from facerep.data.video import VideoReader

#: Video conditions in rising difficulty, with the short names used in tables.
CONDITIONS: dict[str, str] = {
    "Indoor-Cooperative": "cooperative",
    "PTZ-Indoor": "indoor",
    "PTZ-Outdoor": "outdoor",
}
VIDEO_SUFFIXES = (".mjpg", ".mjpeg", ".mpg", ".mpeg", ".avi", ".mp4", ".mkv", ".mov")


def find_video(subject_dir: Path, condition: str) -> Path | None:
    """The video file of `condition` in ``subject_dir/Video``, whichever accepted suffix it has."""
    for suffix in VIDEO_SUFFIXES:
        for name in (f"{condition}{suffix}", f"{condition}{suffix.upper()}"):
            path = subject_dir / "Video" / name
            if path.is_file():
                return path
    return None


def pick_frames(count: int, frame_step: int = 1, max_frames: int | None = None) -> list[int]:
    """Every `frame_step`-th frame of `count`, then at most `max_frames` of them evenly spaced."""
    frames = list(range(0, int(count), max(1, int(frame_step))))
    if max_frames is not None and len(frames) > max_frames:
        pick = np.linspace(0, len(frames) - 1, int(max_frames)).round().astype(int)
        frames = [frames[i] for i in pick]
    return frames


class MICC(ImageFaceDataset):
    """Frames of the MICC Florence videos (identity = subject), plus access to the ground-truth scans.

    Args:
        root: folder holding ``subject_XX`` folders.
        image_size: side of the square output images (px).
        conditions: video names to read (default: all three, see `CONDITIONS`).
        frame_step: keep every `frame_step`-th frame (with landmarks).
        on_bad_sample: "error" or "skip" (a missing/corrupt video or landmark file, a corrupt frame).
        crop_scale: side of the landmark crop relative to the landmarks' extent (1.7 frames faces as
            the training photos of the synthetic world are framed).
        landmarks: "files" (landmark CSVs only) or "detect" (detect faces in frames without landmarks; a
            video whose CSV ships in the root is read as it is).
        max_frames: at most this many frames per video, evenly spaced (with ``detect``: the only frames
            the detector looks at), None for all.
        detector: the ``face_detector`` used by ``landmarks: detect``.
        landmarks_dir: a landmark mirror written by ``facerep data landmarks --out`` (the cache mirror of
            the root is always searched).
        progress: show a progress bar while detecting.
    Samples: image, mask (landmark hull), landmarks, identity (subject position), sample_id
    ("subject_01/Video/PTZ-Indoor.mjpg#12"), subject ("subject_01"), condition ("PTZ-Indoor"), frame (int).
    """

    labelled = False
    world_part = "micc"

    def __init__(
        self,
        root: str | Path,
        image_size: int = DEFAULT_IMAGE_SIZE,
        conditions: Sequence[str] = tuple(CONDITIONS),
        frame_step: int = 1,
        on_bad_sample: str = "error",
        crop_scale: float = 1.7,
        landmarks: str = "files",
        max_frames: int | None = None,
        detector: str = "dlib",
        landmarks_dir: str | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(root, image_size, on_bad_sample, "landmarks", crop_scale)
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown:
            raise DataError(f"unknown MICC condition(s) {unknown}; choose from {list(CONDITIONS)}")
        if landmarks not in LANDMARK_MODES:
            raise DataError(f"micc landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
        self.conditions = list(conditions)
        self.landmark_mode = landmarks
        self.store = LandmarkStore(self.root, landmarks_dir)
        self.subjects = sorted(p.name for p in self.root.glob("subject_*") if p.is_dir())
        if not self.subjects:
            raise DataError(f"{self.root}: no subject_XX folder (not a MICC root)")
        self.frames: list[tuple[Path, int, str, int]] = []  # video, frame, condition, subject
        self.frame_landmarks: list[np.ndarray] = []
        #: "path: reason" of every video that was missing or unreadable (skipped under on_bad_sample=skip).
        self.skipped_videos: list[str] = []
        #: (subject, condition) -> frames looked at in which the detector found no face.
        self.noface_frames: dict[tuple[str, str], int] = {}
        self._readers: dict[Path, VideoReader] = {}
        self._detector: Any = None
        self._detector_name = detector
        self.progress = bool(progress)
        for s, subject in enumerate(self.subjects):
            for condition in self.conditions:
                self._index_video(s, subject, condition, int(frame_step), max_frames)
        if not self.frames:
            raise DataError(f"{self.root}: no MICC frame with landmarks found")

    def _skip_video(self, message: str) -> None:
        self.skipped_videos.append(message)
        self.bad(message)

    def _make_detector(self) -> Any:
        if self._detector is None:
            self._detector = build_detector(self._detector_name)
        return self._detector

    def _index_video(
        self, s: int, subject: str, condition: str, frame_step: int, max_frames: int | None
    ) -> None:
        video = find_video(self.root / subject, condition)
        if video is None:
            self._skip_video(f"{self.root / subject / 'Video' / (condition + '.mjpg')}: video not found")
            return
        try:
            reader = VideoReader(video)
        except DataError as exc:
            self._skip_video(str(exc))
            return
        rel = video.relative_to(self.root)
        shipped = video_landmarks_path(video).is_file()
        try:
            if self.landmark_mode == "detect" and not shipped:
                wanted = pick_frames(len(reader), frame_step, max_frames)
                report = self._detect(rel, wanted, f"{subject} {condition}")
                marks = self.store.video_landmarks(rel)
                kept = [f for f in wanted if f in marks]
                self.noface_frames[(subject, condition)] = len(set(report.noface))
            else:
                marks = self.store.video_landmarks(rel)
                if not marks:
                    self._skip_video(
                        f"{video_landmarks_path(video)}: per-frame landmarks not found (run `facerep data "
                        f"landmarks {self.root} --layout micc`, or give the source `landmarks: detect`)"
                    )
                    return
                kept = [f for f in sorted(marks) if f < len(reader)][:: max(1, frame_step)]
                if max_frames is not None and len(kept) > max_frames:
                    pick = np.linspace(0, len(kept) - 1, int(max_frames)).round().astype(int)
                    kept = [kept[i] for i in pick]
        except DataError as exc:
            self._skip_video(str(exc))
            return
        self._readers[video] = reader
        for f in kept:
            self.frames.append((video, f, condition, s))
            self.frame_landmarks.append(marks[f])
            self.identities.append(s)

    def _detect(self, rel: Path, wanted: list[int], label: str) -> Any:
        if not self.progress:
            return fill_video(self.store, rel, self._make_detector, wanted)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("detecting faces {task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(label, total=len(wanted))
            return fill_video(
                self.store, rel, self._make_detector, wanted, progress=lambda n: bar.update(task, completed=n)
            )

    def _load(self, index: int) -> dict[str, Any]:
        video, frame, condition, s = self.frames[index]
        reader = self._readers.get(video)
        if reader is None:
            reader = self._readers[video] = VideoReader(video)
        pixels = reader.frame(frame)
        rel = video.relative_to(self.root).as_posix()
        return {
            "image": Image.fromarray(pixels),
            "landmarks": self.frame_landmarks[index],
            "identity": s,
            "sample_id": f"{rel}#{frame}",
            "subject": self.subjects[s],
            "condition": condition,
            "frame": frame,
        }

    def indices(self, subject: str, condition: str) -> list[int]:
        """Sample indices of one subject's video, in frame order."""
        s = self.subjects.index(subject)
        return [i for i, f in enumerate(self.frames) if f[3] == s and f[2] == condition]

    def scan_path(self, subject: str) -> Path:
        """The ground-truth neutral scan of `subject` (the first ``Model/frontal1/obj/*.obj``)."""
        folder = self.root / subject / "Model" / "frontal1" / "obj"
        found = sorted(folder.glob("*.obj"))
        if not found:
            raise DataError(f"{folder}: no ground-truth scan (*.obj) found")
        return found[0]

    def load_scan(self, subject: str) -> tuple[np.ndarray, np.ndarray]:
        """(vertices (N, 3) mm, triangles (F, 3)) of `subject`'s ground-truth scan."""
        return read_obj(self.scan_path(subject))
