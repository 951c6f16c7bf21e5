"""Fresh synthetic faces without images: random identities, expressions and poses of a face model,
their 68 projected landmarks and their exact 3D shapes.

Landmark pre-training (`facerep.train.landmark_pretrain`, ``source: fresh``) draws a new batch of
these for every step, so it never sees a face twice and reads no file. The distribution follows the
synthetic 300W-LP set the world writes (`facerep.world.synth.write_300w_lp`):

- identity coefficients ~ N(0, id_std^2); expression ~ N(0, exp_std^2) times U(0, 1.3) per face;
- poses: yaw ~ N(0, 12 deg) clipped to 25, and for half of the faces turned further towards 90 deg
  (300W-LP's profiled views), pitch ~ N(0, 8 deg), roll ~ N(0, 6 deg), a shift of 2% of the frame,
  the face filling 0.45-0.95 of a ``frame``-pixel square (weak perspective, `facerep.geometry.camera`);
- landmarks: the face model's 68 landmark vertices of the face's exact shape, projected, plus
  Gaussian detector noise of U(0, ``noise``) times the landmarks' box size sqrt(w h) per face;
- shapes: `FaceModel.true_shape`, the exact faces (for the synthetic world's model the identities'
  detail beyond the linear span included, which a 3DMM fit such as 300W-LP's labels leaves out), with
  and without the expression.

The MICC-like subjects are drawn from the world's own seeded generator; these draws are independent of
it (a torch generator), so no evaluation identity is ever among them (continuous coefficients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel
from facerep.geometry.camera import project
from facerep.nn.landmark_input import landmark_box_size
from facerep.world.scene import DEG
from facerep.world.synth import EXPRESSION_SCALE, LABELLED_FACE_SHARE


@dataclass(frozen=True)
class FreshFaceBatch:
    """One draw of fresh faces.

    Attributes:
        landmarks: (B, 68, 2) noisy projected landmarks, pixels of a ``frame``-pixel square.
        shape: (B, N, 3) the exact shapes with their expressions, mm, canonical frame.
        neutral: (B, N, 3) the same identities with a neutral expression, mm.
        pose: (B, 6) the pose codes the landmarks were projected with.
    """

    landmarks: Tensor
    shape: Tensor
    neutral: Tensor
    pose: Tensor


def _normal(generator: torch.Generator, n: int, std: float, limit: float) -> Tensor:
    return (torch.randn(n, generator=generator) * std).clamp(-limit, limit)


def fresh_poses(n: int, generator: torch.Generator) -> Tensor:
    """(n, 6) pose codes (pitch, yaw, roll rad, tx, ty, log_scale) as described in the module docstring."""
    base = _normal(generator, n, 12.0, 25.0).abs()
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    profiled = (torch.rand(n, generator=generator) < 0.5).float()
    reach = torch.rand(n, generator=generator) * profiled
    pose = torch.zeros(n, 6)
    pose[:, 0] = _normal(generator, n, 8.0, 25.0) * DEG
    pose[:, 1] = sign * (base + (90.0 - base) * reach) * DEG
    pose[:, 2] = _normal(generator, n, 6.0, 20.0) * DEG
    pose[:, 3:5] = torch.randn(n, 2, generator=generator) * 0.02
    low, high = LABELLED_FACE_SHARE
    pose[:, 5] = torch.log(low + (high - low) * torch.rand(n, generator=generator))
    return pose


class FreshFaces:
    """Draws `FreshFaceBatch`es of a face model (see the module docstring).

    Args:
        face_model: the model whose prior, landmark vertices and `true_shape` the faces come from.
        noise: the largest landmark noise, a fraction of the landmarks' box size (each face draws its
            own level uniformly in [0, noise]); 0 for exact landmarks.
        frame: side of the square frame the landmarks are in, pixels.
    """

    def __init__(self, face_model: FaceModel, noise: float = 0.02, frame: int = 96) -> None:
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"fresh faces: noise must be a number >= 0, got {noise!r}")
        if frame < 8:
            raise ValueError(f"fresh faces: frame must be at least 8 pixels, got {frame!r}")
        self.face_model = face_model
        self.noise = float(noise)
        self.frame = int(frame)
        self._id_std = torch.as_tensor(np.asarray(face_model.id_std), dtype=torch.float32)
        self._exp_std = torch.as_tensor(np.asarray(face_model.exp_std), dtype=torch.float32)
        self._landmarks = torch.as_tensor(np.asarray(face_model.landmarks), dtype=torch.long)

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator) -> FreshFaceBatch:
        """`n` new faces (CPU tensors, float32), reproducible from `generator`."""
        fm = self.face_model
        alpha_id = torch.randn(n, fm.num_id, generator=generator) * self._id_std
        strength = torch.rand(n, 1, generator=generator) * EXPRESSION_SCALE
        alpha_exp = torch.randn(n, fm.num_exp, generator=generator) * self._exp_std * strength
        shape = fm.true_shape(alpha_id, alpha_exp).float()
        neutral = fm.true_shape(alpha_id, torch.zeros_like(alpha_exp)).float()
        pose = fresh_poses(n, generator)
        points, _ = project(shape[:, self._landmarks], pose, self.frame)
        if self.noise > 0:
            level = torch.rand(n, generator=generator) * self.noise * landmark_box_size(points)
            points = points + torch.randn(points.shape, generator=generator) * level[:, None, None]
        return FreshFaceBatch(landmarks=points, shape=shape, neutral=neutral, pose=pose)
