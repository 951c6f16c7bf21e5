"""MICC Florence subjects for the bench: cropped ground-truth scans and per-video frame tensors.

Reads any MICC-layout root with the ``micc`` dataset's reader (`facerep.data.micc.MICC`):
real MICC Florence, or the synthetic world's ``micc/`` folder (which has a ``meta.json``). Video
conditions map to the paper's column names: Indoor-Cooperative -> Cooperative, PTZ-Indoor -> Indoor,
PTZ-Outdoor -> Outdoor.

Frames: the landmark files of the root (or of a landmark mirror, `facerep.data.landmark_store`) on the
synthetic world; on real MICC Florence (no ``meta.json``), as downloaded, faces are detected in the frames
on the fly (cached in the mirror, outside the dataset) and frames without a face are skipped and counted.
A missing or unreadable video skips that subject's condition with a warning (``strict``: an error).

Scan landmarks (for the landmark-initialised alignment) are read, when present, from a sidecar next
to the scan OBJ: ``NAME.landmarks68.csv`` / ``NAME.landmarks68.txt`` (68 lines ``x y z`` or ``x,y,z``,
mm, iBUG order, an optional header line), or ``NAME.pts3`` / ``NAME.npy`` with the same (68, 3) array.
The nose tip is iBUG landmark 30 when landmarks exist; otherwise the scan vertex nearest the camera
(largest z) among those within 60 mm of the scan's centroid in x and y (MICC scans face +z).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facerep.common.errors import DataError
from facerep.data.meta import META_FILE
from facerep.data.micc import MICC
from facerep.geometry.surface_distance import SCAN_CROP_RADIUS_MM, CroppedScan, crop_scan

#: Dataset video names -> the paper's column names.
CONDITION_TITLES: dict[str, str] = {
    "Indoor-Cooperative": "Cooperative",
    "PTZ-Indoor": "Indoor",
    "PTZ-Outdoor": "Outdoor",
}
IBUG_NOSE_TIP = 30
#: How a subject's prediction is first aligned to its scan (before ICP), as the tables name it.
ALIGN_LANDMARKS = "scan landmarks"
ALIGN_NOSE_TIP = "estimated nose tip"
LANDMARK_SIDECARS: tuple[str, ...] = (".landmarks68.csv", ".landmarks68.txt", ".pts3", ".npy")


def read_scan_landmarks(scan_path: Path) -> np.ndarray | None:
    """(68, 3) landmarks of a scan from its sidecar (see the module docstring), or None when absent."""
    stem = scan_path.with_suffix("")
    for suffix in LANDMARK_SIDECARS:
        path = Path(f"{stem}{suffix}")
        if not path.is_file():
            continue
        try:
            if suffix == ".npy":
                arr = np.load(path)
            else:
                rows = []
                for line in path.read_text(encoding="utf-8").splitlines():
                    parts = line.replace(",", " ").split()
                    try:
                        rows.append([float(p) for p in parts])
                    except ValueError:
                        continue  # header or comment
                arr = np.asarray([r[-3:] for r in rows if len(r) >= 3])
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read scan landmarks ({exc})") from exc
        arr = np.asarray(arr, dtype=np.float64).reshape(-1, 3) if np.size(arr) else np.zeros((0, 3))
        if arr.shape != (68, 3):
            raise DataError(f"{path}: expected 68 3D landmarks, found {arr.shape[0]}")
        return arr
    return None


def estimate_nose_tip(vertices: np.ndarray) -> np.ndarray:
    """(3,) the most frontal vertex (largest z) near the scan's centre in x and y (no landmarks)."""
    v = np.asarray(vertices, dtype=np.float64)
    centre = np.median(v[:, :2], axis=0)
    near = np.linalg.norm(v[:, :2] - centre, axis=1) <= 60.0
    pool = v[near] if near.any() else v
    return pool[np.argmax(pool[:, 2])]


class MiccSource:
    """The subjects of a MICC root.

    Args:
        root: a MICC-layout folder.
        image_size: side of the face crops in pixels (the runs' input size).
        frame_step: keep every `frame_step`-th frame with landmarks.
        max_frames: at most this many frames per video (evenly spaced), None for all.
        subjects: restrict to these subject folder names.
        conditions: dataset video names to read (default all three).
        radius: crop radius around the nose tip, mm.
        strict: a missing or unreadable video is an error (default: skipped, warned and counted).
        landmarks: "files" or "detect" (see `facerep.data.micc.MICC`); default: "files" on
            the synthetic world, "detect" on real MICC.
        progress: show a progress bar while detecting faces.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        *,
        frame_step: int = 1,
        max_frames: int | None = None,
        subjects: Sequence[str] | None = None,
        conditions: Sequence[str] = tuple(CONDITION_TITLES),
        radius: float = SCAN_CROP_RADIUS_MM,
        strict: bool = False,
        landmarks: str | None = None,
        progress: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: MICC data root not found")
        mode = landmarks or ("files" if self.synthetic else "detect")
        self.dataset = MICC(
            self.root,
            image_size=image_size,
            conditions=conditions,
            frame_step=frame_step,
            on_bad_sample="error" if strict else "skip",
            landmarks=mode,
            max_frames=max_frames,
            progress=progress,
        )
        #: "path: reason" of each missing or unreadable video (its subject's condition is not scored).
        self.skipped_videos: list[str] = list(self.dataset.skipped_videos)
        #: (subject, condition) -> frames skipped because no face was found in them.
        self.noface_frames: dict[tuple[str, str], int] = dict(self.dataset.noface_frames)
        #: subject -> how its prediction is first aligned (`ALIGN_LANDMARKS` or `ALIGN_NOSE_TIP`).
        self.alignment: dict[str, str] = {}
        self.max_frames = max_frames
        self.radius = float(radius)
        names = list(self.dataset.subjects)
        if subjects is not None:
            missing = [s for s in subjects if s not in names]
            if missing:
                raise DataError(f"{self.root}: no subject folder(s) {missing}; found {names[:5]}...")
            names = [s for s in names if s in set(subjects)]
        self.subjects = names
        self.conditions = [c for c in conditions if c in CONDITION_TITLES]

    @property
    def synthetic(self) -> bool:
        """True for the synthetic world's MICC (it has a meta.json); False for real MICC Florence."""
        return (self.root / META_FILE).is_file()

    def frame_indices(self, subject: str, condition: str) -> list[int]:
        idx = self.dataset.indices(subject, condition)
        if self.max_frames is not None and len(idx) > self.max_frames:
            pick = np.linspace(0, len(idx) - 1, self.max_frames).round().astype(int)
            idx = [idx[i] for i in pick]
        return idx

    def frames(self, subject: str, condition: str) -> Tensor | None:
        """(T, 3, S, S) float face crops of one video, or None when it has no usable frame."""
        video = self.frames_with_landmarks(subject, condition)
        return None if video is None else video[0]

    def frames_with_landmarks(self, subject: str, condition: str) -> tuple[Tensor, Tensor] | None:
        """(T, 3, S, S) float face crops of one video and their (T, 68, 2) landmarks in pixels of those
        crops (the frame's landmark file or detection, mapped by the crop), or None when it has no
        usable frame."""
        idx = self.frame_indices(subject, condition)
        if not idx:
            return None
        samples = [self.dataset[i] for i in idx]
        images = torch.stack([s["image"] for s in samples])
        landmarks = torch.stack([torch.as_tensor(s["landmarks"]).float() for s in samples])
        return images, landmarks

    def scan(self, subject: str) -> CroppedScan:
        """The subject's ground-truth scan cropped to `radius` mm around its nose tip."""
        path = self.dataset.scan_path(subject)
        vertices, triangles = self.dataset.load_scan(subject)
        if len(triangles) == 0:
            raise DataError(f"{path}: the scan has no faces (a point cloud cannot be measured against)")
        landmarks = read_scan_landmarks(path)
        nose = landmarks[IBUG_NOSE_TIP] if landmarks is not None else estimate_nose_tip(vertices)
        self.alignment[subject] = ALIGN_LANDMARKS if landmarks is not None else ALIGN_NOSE_TIP
        try:
            return crop_scan(vertices, triangles, nose, radius=self.radius, landmarks=landmarks)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from exc

    def notes(self) -> list[str]:
        """Lines for the tables: skipped videos and frames without a face (empty when nothing was skipped)."""
        lines = []
        if self.skipped_videos:
            head = "; ".join(self.skipped_videos[:5]) + (" ..." if len(self.skipped_videos) > 5 else "")
            lines.append(f"{len(self.skipped_videos)} video(s) missing or unreadable, not scored: {head}")
        noface = sum(self.noface_frames.values())
        if noface:
            videos = sum(1 for n in self.noface_frames.values() if n)
            lines.append(f"{noface} frame(s) without a detected face skipped, in {videos} video(s)")
        return lines
