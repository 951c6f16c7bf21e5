"""The paper's two MICC protocols (section 5.1), on any object that encodes images and decodes shapes.

A *model* here is anything with (see `EvalModel`):

- ``encode(images (B, 3, H, W) in [0, 1], landmarks (B, 68, 2) | None = None) -> Codes`` (identity
  (B, D_id), expression (B, D_exp), pose (B, 6) = pitch, yaw, roll, tx, ty, log_scale); the landmarks
  are the images' iBUG-68 points in pixels of those images (`facerep.core.interfaces.Encoder`), passed
  to a model whose ``reads_landmarks`` is True (it needs them);
- ``decode_shape(identity (B, D_id), expression (B, D_exp)) -> (B, N, 3)`` vertices in mm;
- ``neutral_expression``: (D_exp,) tensor, the expression code of a neutral face (stored with the run);
- ``face_model`` (the run's `FaceModel`: triangles, landmarks) and ``image_size`` (int, pixels).

Protocols:

- **average over identity** (Genova et al. 2018): encode every frame of a video, average the identity
  codes, decode once with the neutral expression code: one shape per video.
- **average over three views** (MVF-Net's setting): pick the left, frontal and right frames of a video
  by the estimated yaw (the pose code's yaw), reconstruct each frame's shape from its own identity and
  expression codes, and average the three shapes vertex by vertex. "Left" is the frame with the
  largest positive yaw (face turned towards the subject's left), "right" the most negative, "frontal"
  the smallest |yaw|. The paper reports this protocol on the Cooperative and Indoor videos (and its
  own row on Outdoor too); facerep computes it on every video.

Both protocols share one encoding pass per video (`encode_video`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facerep.bench.runs import model_device, reads_landmarks
from facerep.core.interfaces import FaceModel

PROTOCOLS: tuple[str, ...] = ("identity", "three_views")
PROTOCOL_TITLES: dict[str, str] = {
    "identity": "Average over identity",
    "three_views": "Average over three views",
}


class EvalModel(Protocol):
    """What the protocols need from a trained model (a loaded run or a hand-made object)."""

    face_model: FaceModel
    image_size: int
    neutral_expression: Tensor

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Any: ...

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor: ...


@dataclass
class VideoCodes:
    """The codes of one video's frames.

    Attributes:
        identity: (T, D_id) identity codes.
        expression: (T, D_exp) expression codes.
        yaw: (T,) estimated yaw in radians (the pose code's second entry).
    """

    identity: Tensor
    expression: Tensor
    yaw: Tensor

    @property
    def num_frames(self) -> int:
        return int(self.identity.shape[0])


def prepare_images(images: Tensor, image_size: int) -> Tensor:
    """(B, 3, H, W) float in [0, 1] (or uint8) -> (B, 3, S, S) float in [0, 1] at the model's size."""
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    images = images.float()
    if images.shape[-2:] != (image_size, image_size):
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.clamp(0.0, 1.0)


def prepare_landmarks(landmarks: Tensor, height: int, width: int, image_size: int) -> Tensor:
    """(B, 68, 2) pixels in (H, W) images -> float pixels in the (S, S) images `prepare_images` makes.

    With the corner origin (`facerep.core.types`) a resize scales coordinates exactly: x S / W, y S / H.
    """
    scale = torch.tensor([image_size / width, image_size / height], dtype=torch.float32)
    return landmarks.float() * scale.to(landmarks.device)


@torch.no_grad()
def encode_video(
    model: EvalModel,
    frames: Tensor | Iterable[Tensor],
    landmarks: Tensor | Iterable[Tensor] | None = None,
    *,
    batch_size: int = 32,
) -> VideoCodes:
    """Encode a video's frames in batches.

    Args:
        model: see `EvalModel`.
        frames: (T, 3, H, W) tensor, or an iterable of (B_i, 3, H, W) chunks (streamed from disk).
        landmarks: the frames' (T, 68, 2) landmarks in pixels of `frames` (iBUG order), chunked like
            `frames`; for a model that reads them (``reads_landmarks``, `facerep.bench.runs.reads_landmarks`)
            they are scaled with the frames to the model's size and passed to ``model.encode``; any other
            model is called with the images alone.
        batch_size: frames per forward pass.

    Returns:
        `VideoCodes` (on the CPU).
    """
    chunks = [frames] if isinstance(frames, Tensor) else frames
    if landmarks is None:
        mark_chunks: Iterable[Tensor | None] = itertools.repeat(None)
    else:
        mark_chunks = [landmarks] if isinstance(landmarks, Tensor) else landmarks
    device = model_device(model)
    size = int(model.image_size)
    reads = reads_landmarks(model)
    ids, exps, yaws = [], [], []
    for chunk, marks in zip(chunks, mark_chunks, strict=landmarks is not None):
        if marks is not None and tuple(marks.shape) != (int(chunk.shape[0]), 68, 2):
            raise ValueError(
                f"{int(chunk.shape[0])} frames need ({int(chunk.shape[0])}, 68, 2) landmarks, "
                f"got {tuple(marks.shape)}"
            )
        for start in range(0, int(chunk.shape[0]), batch_size):
            batch = prepare_images(chunk[start : start + batch_size], size).to(device)
            if marks is None or not reads:
                codes = model.encode(batch)
            else:
                height, width = (int(n) for n in chunk.shape[-2:])
                points = prepare_landmarks(marks[start : start + batch_size], height, width, size)
                codes = model.encode(batch, points.to(device))
            ids.append(codes.identity.detach().float().cpu())
            exps.append(codes.expression.detach().float().cpu())
            yaws.append(codes.pose[:, 1].detach().float().cpu())
    if not ids:
        raise ValueError("the video has no frames to encode")
    return VideoCodes(torch.cat(ids), torch.cat(exps), torch.cat(yaws))


def pick_three_views(yaw: Tensor | np.ndarray) -> tuple[int, int, int]:
    """Indices of the (left, frontal, right) frames by yaw: max yaw, min |yaw|, min yaw.

    With fewer than three distinct frames some indices coincide (a one-frame video gives three times
    the same frame).
    """
    y = np.asarray(yaw, dtype=np.float64).reshape(-1)
    if y.size == 0:
        raise ValueError("no frames to pick views from")
    return int(np.argmax(y)), int(np.argmin(np.abs(y))), int(np.argmin(y))


@torch.no_grad()
def _decode(model: EvalModel, identity: Tensor, expression: Tensor) -> np.ndarray:
    device = model_device(model)
    out = model.decode_shape(identity.to(device), expression.to(device))
    return out.detach().double().cpu().numpy()


def average_over_identity(model: EvalModel, codes: VideoCodes) -> np.ndarray:
    """One (N, 3) mm shape: the mean identity code decoded with the neutral expression code."""
    identity = codes.identity.mean(dim=0, keepdim=True)
    neutral = torch.as_tensor(model.neutral_expression, dtype=identity.dtype).reshape(1, -1)
    return _decode(model, identity, neutral)[0]


def average_over_three_views(model: EvalModel, codes: VideoCodes) -> np.ndarray:
    """One (N, 3) mm shape: the mean of the left, frontal and right frames' reconstructions."""
    picks = list(pick_three_views(codes.yaw))
    shapes = _decode(model, codes.identity[picks], codes.expression[picks])
    return shapes.mean(axis=0)


def run_protocols(model: EvalModel, codes: VideoCodes, protocols: Iterable[str]) -> dict[str, np.ndarray]:
    """{protocol: (N, 3) shape} for the requested protocols (names from `PROTOCOLS`)."""
    out: dict[str, np.ndarray] = {}
    for name in protocols:
        if name == "identity":
            out[name] = average_over_identity(model, codes)
        elif name == "three_views":
            out[name] = average_over_three_views(model, codes)
        else:
            raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return out


@torch.no_grad()
def identity_spread(model: EvalModel, codes: VideoCodes, *, max_frames: int = 64) -> float:
    """Mean per-vertex spread (mm) of a video's per-frame neutral shapes around their average.

    Each frame's identity code is decoded with the neutral expression (up to `max_frames` evenly
    spaced frames); the spread is the mean over vertices of the RMS distance of the frames' vertex
    to the vertex's average position. 0 for a perfectly consistent identity; the paper's Table 2
    attributes the large std of the model without the recognition loss to this inconsistency.
    """
    t = codes.num_frames
    if t < 2:
        return 0.0
    pick = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    identity = codes.identity[pick]
    neutral = torch.as_tensor(model.neutral_expression, dtype=identity.dtype).reshape(1, -1)
    shapes = _decode(model, identity, neutral.expand(len(pick), -1))  # (T', N, 3)
    dev = np.sqrt(((shapes - shapes.mean(axis=0, keepdims=True)) ** 2).sum(-1).mean(axis=0))
    return float(dev.mean())
