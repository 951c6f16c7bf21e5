"""Training augmentation of the paper (section 5): random horizontal flip and random scale in [0.8, 1.0].

Works on sample dicts (see `facerep.core.interfaces.FaceDataset`): ``image`` (3, H, W), ``mask``
(1, H, W), ``landmarks`` (68, 2) px. A flip mirrors the image and mask, maps x -> W - x and permutes the
landmarks with the iBUG mirror permutation, so each index keeps naming the same feature: after a flip,
iBUG point 36 (outer corner of the eye on the image's left) is again at the outer corner of the eye on
the image's left.
Labelled samples (``id_params`` / ``exp_params``) get their 3DMM coefficients mirrored too, through the
face model's vertex mirror map (the least-squares coefficients of the mirrored shape; see `MirrorParams`);
without a face model, labelled samples are never flipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facerep.core.interfaces import FaceModel
from facerep.geometry.ibug_layout import IBUG_MIRROR


class MirrorParams:
    """Maps 3DMM coefficients to those of the left-right mirrored face, for a linear face model.

    With s = mean + B a (B = [id_basis, exp_basis] flattened), the mirror M s (x -> -x, vertex i ->
    mirror[i]) is fitted back by least squares: a' = B+ (M mean - mean) + B+ M B a. The matrix and offset
    are computed once (float64).
    """

    def __init__(self, face_model: FaceModel) -> None:
        fm = face_model
        basis = np.concatenate([fm.id_basis, fm.exp_basis], axis=0).astype(np.float64)  # (K, N, 3)
        k = basis.shape[0]
        flat = basis.reshape(k, -1).T  # (3N, K)
        mirror = np.asarray(fm.mirror, dtype=np.int64)
        sign = np.array([-1.0, 1.0, 1.0])

        def _mirror(v: np.ndarray) -> np.ndarray:  # (..., N, 3)
            return v[..., mirror, :] * sign

        mean = np.asarray(fm.mean, dtype=np.float64)
        gram = flat.T @ flat  # normal equations: (K, K), cheap even for 37k-vertex models
        rhs = np.concatenate(
            [flat.T @ _mirror(basis).reshape(k, -1).T, flat.T @ (_mirror(mean) - mean).reshape(-1, 1)], 1
        )
        solved = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        self.matrix = solved[:, :k].astype(np.float32)  # (K, K)
        self.offset = solved[:, k].astype(np.float32)  # (K,)
        self.num_id = int(fm.id_basis.shape[0])

    def __call__(self, id_params: Tensor, exp_params: Tensor) -> tuple[Tensor, Tensor]:
        """(K_id,), (K_exp,) -> mirrored (K_id,), (K_exp,)."""
        a = torch.cat([id_params, exp_params]).float()
        out = torch.from_numpy(self.matrix) @ a + torch.from_numpy(self.offset)
        return out[: self.num_id].to(id_params.dtype), out[self.num_id :].to(exp_params.dtype)


def mirror_landmarks(landmarks: torch.Tensor, width: int) -> torch.Tensor:
    """(..., 68, 2) pixels of images `width` wide -> the landmarks of the mirrored images (``flip(-1)``).

    Pixel centres sit at integer + 0.5 (`facerep.core.types`), so pixel column i -> W - 1 - i is x -> W - x;
    the points are re-ordered by the iBUG mirror permutation so each index keeps naming the same feature.
    """
    mirrored = landmarks[..., IBUG_MIRROR.tolist(), :].clone()
    mirrored[..., 0] = width - mirrored[..., 0]
    return mirrored


def hflip(sample: dict[str, Any], mirror_params: MirrorParams | None = None) -> dict[str, Any]:
    """The horizontally mirrored sample (a new dict; tensors are new)."""
    out = dict(sample)
    width = sample["image"].shape[-1]
    out["image"] = torch.flip(sample["image"], dims=[-1])
    if sample.get("mask") is not None:
        out["mask"] = torch.flip(sample["mask"], dims=[-1])
    out["landmarks"] = mirror_landmarks(sample["landmarks"], width)
    if sample.get("id_params") is not None and mirror_params is not None:
        out["id_params"], out["exp_params"] = mirror_params(sample["id_params"], sample["exp_params"])
    out["flipped"] = not bool(sample.get("flipped", False))
    return out


def rescale(sample: dict[str, Any], factor: float) -> dict[str, Any]:
    """Shrink the content by `factor` (<= 1) about the image centre; the border repeats the edge pixels.

    The content is resized to n = round(factor x H) px (bilinear), placed at offset
    (H - n) // 2, so landmarks map exactly to p' = p n / H + offset. The mask is padded with zeros.
    """
    image = sample["image"]
    _, h, w = image.shape
    n_h, n_w = max(1, round(factor * h)), max(1, round(factor * w))
    if (n_h, n_w) == (h, w):
        return dict(sample)
    top, left = (h - n_h) // 2, (w - n_w) // 2
    pad = (left, w - n_w - left, top, h - n_h - top)
    # a shrink by at most 1/0.8: plain bilinear barely aliases and is several times cheaper than antialiased
    small = F.interpolate(image[None], size=(n_h, n_w), mode="bilinear", align_corners=False)
    out = dict(sample)
    out["image"] = F.pad(small, pad, mode="replicate")[0]
    if sample.get("mask") is not None:
        m = F.interpolate(sample["mask"][None], size=(n_h, n_w), mode="bilinear", align_corners=False)
        out["mask"] = F.pad(m, pad, mode="constant", value=0.0)[0]
    lm = sample["landmarks"].clone()
    lm[:, 0] = lm[:, 0] * (n_w / w) + left
    lm[:, 1] = lm[:, 1] * (n_h / h) + top
    out["landmarks"] = lm
    return out


class Augment:
    """Random horizontal flip (probability 0.5) and random scale uniform in `scale`, per sample.

    Args:
        flip: enable the random flip.
        scale: (low, high) range of the scale factor; (1, 1) disables scaling.
        face_model: the run's face model, needed to flip labelled samples (their 3DMM params); without
            it labelled samples are not flipped.
    Call ``augment(sample, generator)`` with a `torch.Generator` for reproducible draws (the hybrid
    dataset seeds one per sample from the sampler's per-sample seed); without it the global torch RNG is
    used (DataLoader workers seed it per worker).
    """

    def __init__(
        self, flip: bool = True, scale: Sequence[float] = (0.8, 1.0), face_model: FaceModel | None = None
    ) -> None:
        low, high = float(scale[0]), float(scale[1])
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"augment scale must satisfy 0 < low <= high <= 1, got {list(scale)}")
        self.flip = bool(flip)
        self.scale = (low, high)
        self.mirror_params = MirrorParams(face_model) if face_model is not None and flip else None

    def __call__(self, sample: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        u = torch.rand(2, generator=generator)
        out = sample
        labelled = sample.get("id_params") is not None
        if self.flip and u[0].item() < 0.5 and (not labelled or self.mirror_params is not None):
            out = hflip(out, self.mirror_params)
        low, high = self.scale
        if high > low or low < 1.0:
            out = rescale(out, low + (high - low) * u[1].item())
        return out

    @classmethod
    def from_config(
        cls, config: dict[str, Any] | None, face_model: FaceModel | None = None
    ) -> Augment | None:
        """From a recipe's ``data.augment`` node ({flip: bool, scale: [lo, hi]}); None when it is empty."""
        if not config:
            return None
        return cls(
            flip=bool(config.get("flip", False)),
            scale=tuple(config.get("scale", (1.0, 1.0))),
            face_model=face_model,
        )
