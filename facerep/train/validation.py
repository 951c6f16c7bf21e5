"""Validation during training: held-out shape error (mm) and landmark NME on identities never trained on.

A `Validator` holds the images and 3DMM labels of a held-out labelled set (`facerep.data.holdout`) and
scores a model on them:

- ``val/shape_mm``: mean over images and vertices of the Euclidean distance (mm) between the decoded
  shape (the image's identity and expression codes) and the 3DMM shape of its labels, canonical frame,
  no alignment (the same frame the shape loss compares in);
- ``val/mean_face_mm``: the same for the face model's mean shape, the score of a model that learnt no
  shape; ``val/ratio`` is their quotient (below 1: better than the mean face);
- ``val/landmark_nme``: mean distance between the 68 projected model landmarks and the labelled 2D
  landmarks, in % of the labelled landmarks' box size sqrt(w h) (the AFLW2000-3D normalisation);
- ``val/identity_mm`` / ``val/identity_mean_face_mm``: the identity part alone, as the MICC protocol
  scores it: the shape decoded from each image's identity code with a neutral expression code (the mean
  code of the held-out quarter with the smallest expression labels, as the trainer picks one) against
  the labels' identity shape with zero expression, and the mean face's error on the same targets;
- ``val/spread_mm``: RMS distance of the decoded shapes from their average; 0 means every image decodes
  to the same face (a collapse), ``val/true_spread_mm`` is the labels' own;
- ``val/readout_mm`` (when training samples are given): the shape error of a ridge regression from the
  true 2D landmarks (similarity-normalised) to the shape, fitted on training identities: what a linear
  read-out of perfect landmark geometry gives, a reference line for the curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel
from facerep.geometry.camera import project
from facerep.nn.landmark_input import landmark_box_size, landmark_features

#: Images encoded per forward pass.
CHUNK = 64
#: Labelled training samples the landmark read-out reference is fitted on (at most).
READOUT_SAMPLES = 1000


def _stack(samples: Sequence[dict[str, Any]], key: str) -> Tensor:
    return torch.stack([torch.as_tensor(s[key]).float() for s in samples])


@dataclass(frozen=True)
class RidgeFit:
    """A ridge regression on standardised features (see `fit`).

    Attributes:
        mean, std: (F,) the training features' mean and standard deviation (clamped at 1e-6).
        weights: (F + 1, D) the coefficients, the intercept last.
    """

    mean: Tensor
    std: Tensor
    weights: Tensor

    @classmethod
    def fit(cls, features: Tensor, targets: Tensor, ridge: float) -> RidgeFit:
        """(M, F) features, (M, D) targets -> the solution of (Z^T Z + ridge I) W = Z^T Y, where Z holds
        the standardised features and a column of ones (the intercept is penalised too)."""
        mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
        z = _with_intercept((features - mean) / std)
        gram = z.T @ z + ridge * torch.eye(z.shape[1], dtype=features.dtype)
        return cls(mean, std, torch.linalg.solve(gram, z.T @ targets))

    def __call__(self, features: Tensor) -> Tensor:
        """(M, F) features -> (M, D) predictions."""
        return _with_intercept((features - self.mean) / self.std) @ self.weights


def _with_intercept(z: Tensor) -> Tensor:
    return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)


class Validator:
    """Scores a model on held-out labelled images (see the module docstring).

    Args:
        samples: held-out samples (dicts with ``image`` (3, H, W), ``landmarks`` (68, 2) px,
            ``id_params``, ``exp_params``), as a labelled `FaceDataset` yields them.
        face_model: the run's face model (``shape``, ``mean``, ``landmarks``).
        training_samples: optional labelled training samples for the landmark read-out reference.
        ridge: regularisation of that read-out (on standardised features).
    """

    def __init__(
        self,
        samples: Sequence[dict[str, Any]],
        face_model: FaceModel,
        training_samples: Sequence[dict[str, Any]] | None = None,
        ridge: float = 1.0,
    ) -> None:
        if not samples:
            raise ValueError("a validator needs at least one held-out sample")
        self.images = _stack(samples, "image")
        self.landmarks = _stack(samples, "landmarks")
        self.face_model = face_model
        id_params, exp_params = _stack(samples, "id_params"), _stack(samples, "exp_params")
        self.truth = self._shapes(id_params, exp_params)
        self.identity_truth = self._shapes(id_params, torch.zeros_like(exp_params))
        quarter = max(1, len(samples) // 4)
        self.neutral_rows = exp_params.norm(dim=1).argsort()[:quarter]
        self.mean = torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32)
        self.landmark_index = torch.as_tensor(np.asarray(face_model.landmarks), dtype=torch.long)
        self.box = landmark_box_size(self.landmarks)
        self.mean_face_mm = float((self.truth - self.mean).norm(dim=-1).mean())
        self.identity_mean_face_mm = float((self.identity_truth - self.mean).norm(dim=-1).mean())
        self.true_spread_mm = _spread(self.truth)
        self.readout_mm: float | None = None
        if training_samples:
            self.readout_mm = self._readout(training_samples, ridge)

    @property
    def size(self) -> int:
        return int(self.images.shape[0])

    def _shapes(self, id_params: Tensor, exp_params: Tensor) -> Tensor:
        """(M, K_id), (M, K_exp) 3DMM coefficients -> (M, N, 3) mm."""
        with torch.no_grad():
            return torch.as_tensor(self.face_model.shape(id_params, exp_params)).float()

    def _readout(self, training: Sequence[dict[str, Any]], ridge: float) -> float:
        x = landmark_features(_stack(training, "landmarks")).double()
        shapes = self._shapes(_stack(training, "id_params"), _stack(training, "exp_params"))
        fit = RidgeFit.fit(x, (shapes - self.mean).flatten(1).double(), ridge)
        pred = fit(landmark_features(self.landmarks).double()).float().view_as(self.truth) + self.mean
        return float((pred - self.truth).norm(dim=-1).mean())

    @torch.no_grad()
    def evaluate(self, model: Any, device: torch.device | str = "cpu") -> dict[str, float]:
        """Score `model` (a `FaceRepModel`) -> the ``val/*`` metrics (floats). Leaves the model in eval mode
        for the call and restores its previous mode."""
        was_training = model.training
        model.eval()
        shapes, marks, identities, expressions = [], [], [], []
        try:
            for lo in range(0, self.size, CHUNK):
                images = self.images[lo : lo + CHUNK].to(device)
                codes = model.encode(images, self.landmarks[lo : lo + CHUNK].to(device))
                vertices = model.decode_shape(codes.identity, codes.expression).float()
                points, _ = project(vertices[:, self.landmark_index.to(vertices.device)], codes.pose.float(),
                                    images.shape[-1])  # fmt: skip
                shapes.append(vertices.cpu())
                marks.append(points.cpu())
                identities.append(codes.identity)
                expressions.append(codes.expression)
            identity = torch.cat(identities)
            neutral = torch.cat(expressions)[self.neutral_rows.to(identity.device)].mean(0, keepdim=True)
            neutral_shapes = [
                model.decode_shape(chunk, neutral.expand(len(chunk), -1)).float().cpu()
                for chunk in identity.split(CHUNK)
            ]
        finally:
            model.train(was_training)
        decoded = torch.cat(shapes)
        projected = torch.cat(marks)
        identity_mm = float((torch.cat(neutral_shapes) - self.identity_truth).norm(dim=-1).mean())
        shape_mm = float((decoded - self.truth).norm(dim=-1).mean())
        nme = (projected - self.landmarks).norm(dim=-1).mean(-1) / self.box
        metrics = {
            "val/shape_mm": shape_mm,
            "val/mean_face_mm": self.mean_face_mm,
            "val/ratio": shape_mm / self.mean_face_mm if self.mean_face_mm > 0 else math.nan,
            "val/landmark_nme": 100.0 * float(nme.mean()),
            "val/identity_mm": identity_mm,
            "val/identity_mean_face_mm": self.identity_mean_face_mm,
            "val/identity_ratio": identity_mm / self.identity_mean_face_mm
            if self.identity_mean_face_mm > 0
            else math.nan,
            "val/spread_mm": _spread(decoded),
            "val/true_spread_mm": self.true_spread_mm,
        }
        if self.readout_mm is not None:
            metrics["val/readout_mm"] = self.readout_mm
        return metrics


def _spread(shapes: Tensor) -> float:
    """(M, N, 3) -> RMS distance (mm) of the shapes from their average."""
    return float((shapes - shapes.mean(0, keepdim=True)).pow(2).sum(-1).mean().sqrt())


def held_out_validator(
    heldout: Sequence[dict[str, Any]], trained: Sequence[dict[str, Any]], face_model: FaceModel
) -> Validator:
    """The validator of a stage's held-out samples (``train.validate``), its read-out reference fitted on
    the first `READOUT_SAMPLES` samples of the source they were split from (`trained`)."""
    reference = [trained[i] for i in range(min(len(trained), READOUT_SAMPLES))]
    return Validator([heldout[i] for i in range(len(heldout))], face_model, reference)
