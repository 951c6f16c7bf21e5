"""A tiny hand-made MICC world for the bench tests: a small linear face model, three subjects whose
scans (in their own rigid frame, with a nonlinear residual and landmarks) and videos are written in
MICC's on-disk layout, and hand-made models that read identity and yaw codes back from the pixels.

Frames are 64 px: the top half's colour encodes the subject's 3 identity coefficients
(0.5 + 0.12 * alpha / std per channel), the bottom half's red the frame's yaw (0.5 + 0.3 * yaw).
The per-frame landmark files make the MICC loader's crop the whole frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facerep.core.types import Codes
from facerep.data.linear_face_model import LinearFaceModel
from facerep.data.meta import write_meta
from facerep.data.mjpeg import write_mjpeg
from facerep.data.objfile import write_obj
from facerep.data.sidecars import video_landmarks_path, write_video_landmarks

SIZE = 64
CONDITIONS = ("Indoor-Cooperative", "PTZ-Indoor", "PTZ-Outdoor")


def grid_face(n: int = 24, size: float = 160.0) -> tuple[np.ndarray, np.ndarray]:
    """A face-sized smooth surface (mm) on an n x n grid, with a nose-like bump at the centre."""
    x, y = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(size / 2, -size / 2, n))
    z = 60.0 * np.sqrt(np.clip(1 - (x / 110) ** 2 - (y / 130) ** 2, 0.05, None))
    z = z + 25.0 * np.exp(-(x**2 + (y + 10) ** 2) / (2 * 12.0**2))
    v = np.stack([x, y, z], -1).reshape(-1, 3)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # CCW seen from +z: with y decreasing down the rows, (a, c, b) and (b, c, d)
    return v, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]).astype(np.int64)


def tiny_face_model(seed: int = 0) -> LinearFaceModel:
    mean, tri = grid_face()
    rng = np.random.default_rng(seed)
    x, y = mean[:, 0] / 80.0, mean[:, 1] / 80.0
    fields = [
        np.stack([x * 0.0, y * 0.0, np.exp(-(x**2 + y**2) * 2)], 1),  # face depth
        np.stack([x, 0 * y, 0 * x], 1),  # width
        np.stack([0 * x, y, np.cos(np.pi * y) * 0.3], 1),  # height
    ]
    id_basis = np.stack([f / np.linalg.norm(f) * np.sqrt(len(mean)) for f in fields]).astype(np.float32)
    exp_basis = np.stack(
        [np.stack([0 * x, -np.clip(-y, 0, None), 0 * x], 1), np.stack([0 * x, 0 * x, np.sin(np.pi * x)], 1)]
    ).astype(np.float32)
    near = np.flatnonzero(np.linalg.norm(mean[:, :2], axis=1) < 70)
    landmarks = rng.choice(near, 68, replace=False)
    landmarks[30] = int(np.argmax(mean[:, 2]))
    return LinearFaceModel(
        "tiny",
        mean.astype(np.float32),
        tri,
        id_basis,
        np.array([4.0, 3.0, 2.0], dtype=np.float32),
        exp_basis,
        np.array([2.0, 1.0], dtype=np.float32),
        landmarks=landmarks.astype(np.int64),
    )


def _frame_landmarks() -> np.ndarray:
    """68 points whose crop box (1.5 x extent, raised by 10 %) is exactly the 64 px frame."""
    ext = SIZE / 1.5
    cx, cy = SIZE / 2, SIZE / 2 + 0.1 * SIZE
    t = np.linspace(0, 1, 68)
    pts = np.stack([cx - ext / 2 + ext * t, cy - ext / 2 + ext * ((t * 7) % 1)], 1)
    pts[0] = (cx - ext / 2, cy - ext / 2)
    pts[-1] = (cx + ext / 2, cy + ext / 2)
    return pts


def write_tiny_micc(root: Path, face_model: LinearFaceModel, *, subjects: int = 3, seed: int = 0) -> dict:
    """Write the world; returns {subject: true identity coefficients (3,)}."""
    rng = np.random.default_rng(seed)
    truth = {}
    lms2d = _frame_landmarks()
    for s in range(subjects):
        name = f"subject_{s + 1:02d}"
        alpha = rng.normal(size=3) * face_model.id_std * 1.5
        truth[name] = alpha
        shape = face_model.shape(torch.tensor(alpha[None], dtype=torch.float32))[0].double().numpy()
        residual = 0.4 * np.sin(shape[:, 0] / 9.0) * np.cos(shape[:, 1] / 11.0)  # not in the model's span
        true = shape + residual[:, None] * np.array([0.0, 0.0, 1.0])
        angle = np.deg2rad(8.0 * (s + 1))
        rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        offset = np.array([3.0 * s, -5.0, 20.0])
        scan = true @ rot.T + offset
        folder = root / name / "Model" / "frontal1" / "obj"
        write_obj(folder / "scan.obj", scan + rng.normal(scale=0.02, size=scan.shape), face_model.triangles)
        lms3d = scan[face_model.landmarks]
        (folder / "scan.landmarks68.csv").write_text(
            "x,y,z\n" + "\n".join(f"{a:.4f},{b:.4f},{c:.4f}" for a, b, c in lms3d) + "\n"
        )
        for c, condition in enumerate(CONDITIONS):
            frames, marks = [], {}
            yaws = np.linspace(-0.6, 0.6, 7)
            for f, yaw in enumerate(yaws):
                noise = rng.normal(scale=0.15 * (c + 1), size=3)
                img = np.zeros((SIZE, SIZE, 3))
                img[: SIZE // 2] = 0.5 + 0.12 * (alpha / face_model.id_std + noise)
                img[SIZE // 2 :, :, 0] = 0.5 + 0.3 * yaw
                img[SIZE // 2 :, :, 1:] = 0.5
                frames.append((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
                marks[f] = lms2d
            video = root / name / "Video" / f"{condition}.mjpg"
            video.parent.mkdir(parents=True, exist_ok=True)
            write_mjpeg(video, frames, quality=95)
            write_video_landmarks(video_landmarks_path(video), marks)
    write_meta(root, {"face_model": {"type": "tiny"}, "generator": {"preset": "test", "seed": seed}})
    return truth


class PixelModel:
    """A hand-made 'trained model': reads identity and yaw codes back from the frame's pixels.

    ``jitter`` adds per-frame noise to the identity codes (a model whose identity is inconsistent
    over a video, like the paper's model without the recognition loss); ``bias`` shifts them.
    """

    def __init__(
        self, face_model: LinearFaceModel, name: str, jitter: float = 0.0, bias: float = 0.0
    ) -> None:
        self.face_model = face_model
        self.name = name
        self.checkpoint = f"{name}-step-0.safetensors"
        self.image_size = SIZE
        self.neutral_expression = torch.zeros(face_model.num_exp)
        self.jitter = jitter
        self.bias = bias
        self._gen = torch.Generator().manual_seed(0)

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        b = images.shape[0]
        top = images[:, :, 6:26, 16:48].mean(dim=(2, 3))  # (B, 3)
        identity = (top - 0.5) / 0.12 * torch.as_tensor(self.face_model.id_std) + self.bias
        identity = identity + self.jitter * torch.randn(identity.shape, generator=self._gen)
        yaw = (images[:, 0, 40:60, 16:48].mean(dim=(1, 2)) - 0.5) / 0.3
        pose = torch.zeros(b, 6)
        pose[:, 1] = yaw
        return Codes(identity, torch.zeros(b, self.face_model.num_exp), pose, torch.zeros(b, 27))

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        return self.face_model.shape(identity.float(), expression.float())
