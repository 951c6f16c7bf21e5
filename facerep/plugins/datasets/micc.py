"""MICC Florence layout: ground-truth neutral scans and three videos per subject (evaluation).

Under `root`: ``subject_XX/Model/frontal1/obj/*.obj`` (the scan, mm) and ``subject_XX/Video/
{Indoor-Cooperative,PTZ-Indoor,PTZ-Outdoor}.mjpg`` (raw motion-JPEG streams; ``.mjpeg`` / ``.mpg``
copies are accepted), each with its per-frame landmark file ``VIDEO.landmarks68.csv``
(`facerep.data.sidecars`). Faces in the frames are not cropped: every sample is cut from its frame by a
square around its landmarks. Frames without landmarks (no face found) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facerep.core.errors import DataError
from facerep.core.registry import Component, hookimpl
from facerep.data.base import ImageFaceDataset
from facerep.data.mjpeg import index_mjpeg, read_mjpeg_frame
from facerep.data.objfile import read_obj
from facerep.data.sidecars import read_video_landmarks, video_landmarks_path

#: Video conditions in rising difficulty, with the short names used in tables.
CONDITIONS: dict[str, str] = {
    "Indoor-Cooperative": "cooperative",
    "PTZ-Indoor": "indoor",
    "PTZ-Outdoor": "outdoor",
}
VIDEO_SUFFIXES = (".mjpg", ".mjpeg", ".mpg")


def find_video(subject_dir: Path, condition: str) -> Path | None:
    """The video file of `condition` in ``subject_dir/Video``, whichever accepted suffix it has."""
    for suffix in VIDEO_SUFFIXES:
        path = subject_dir / "Video" / f"{condition}{suffix}"
        if path.is_file():
            return path
    return None


class MICC(ImageFaceDataset):
    """Frames of the MICC Florence videos (identity = subject), plus access to the ground-truth scans.

    Args:
        root: folder holding ``subject_XX`` folders.
        image_size: side of the square output images (px).
        conditions: video names to read (default: all three, see `CONDITIONS`).
        frame_step: keep every `frame_step`-th frame with landmarks.
        on_bad_sample: "error" or "skip" (a missing/corrupt video or landmark file, a corrupt frame).
        crop_scale: side of the landmark crop relative to the landmarks' extent (1.7 frames faces as
            the training photos of the synthetic world are framed).
    Samples: image, mask (landmark hull), landmarks, identity (subject position), sample_id
    ("subject_01/Video/PTZ-Indoor.mjpg#12"), subject ("subject_01"), condition ("PTZ-Indoor"), frame (int).
    """

    labelled = False

    def __init__(
        self,
        root: str | Path,
        image_size: int = 64,
        conditions: Sequence[str] = tuple(CONDITIONS),
        frame_step: int = 1,
        on_bad_sample: str = "error",
        crop_scale: float = 1.7,
    ) -> None:
        super().__init__(root, image_size, on_bad_sample, "landmarks", crop_scale)
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown:
            raise DataError(f"unknown MICC condition(s) {unknown}; choose from {list(CONDITIONS)}")
        self.conditions = list(conditions)
        self.subjects = sorted(p.name for p in self.root.glob("subject_*") if p.is_dir())
        if not self.subjects:
            raise DataError(f"{self.root}: no subject_XX folder (not a MICC root)")
        self.frames: list[tuple[Path, tuple[int, int], int, str, int]] = []  # video, span, frame, cond, subj
        self.frame_landmarks: list[np.ndarray] = []
        for s, subject in enumerate(self.subjects):
            for condition in self.conditions:
                video = find_video(self.root / subject, condition)
                if video is None:
                    self.bad(f"{self.root / subject / 'Video' / (condition + '.mjpg')}: video not found")
                    continue
                marks_path = video_landmarks_path(video)
                if not marks_path.is_file():
                    self.bad(
                        f"{marks_path}: per-frame landmarks not found "
                        f"(run `facerep data landmarks {self.root}`)"
                    )
                    continue
                try:
                    spans = index_mjpeg(video)
                    marks = read_video_landmarks(marks_path)
                except DataError as exc:
                    self.bad(exc)
                    continue
                kept = [f for f in sorted(marks) if f < len(spans)][:: max(1, int(frame_step))]
                for f in kept:
                    self.frames.append((video, spans[f], f, condition, s))
                    self.frame_landmarks.append(marks[f])
                    self.identities.append(s)
        if not self.frames:
            raise DataError(f"{self.root}: no MICC frame with landmarks found")

    def _load(self, index: int) -> dict[str, Any]:
        video, span, frame, condition, s = self.frames[index]
        pixels = read_mjpeg_frame(video, span, frame)
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
        return [i for i, f in enumerate(self.frames) if f[4] == s and f[3] == condition]

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


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("dataset", "micc", MICC, "MICC Florence layout: GT scans + MJPEG videos + landmarks")]
