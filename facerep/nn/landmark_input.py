"""A face crop's 68 2D landmarks as an encoder input: similarity-invariant features and zero-started heads.

The landmarks hold much of a face's identity geometry (on the synthetic MICC a ridge read-out from them
alone reaches 0.87-0.90x the mean face's error: benchmarks/landmark_readout.py), and reading them is
cheap next to learning the same geometry from pixels on a CPU budget. `LandmarkHeads` maps them to
offsets that an encoder adds to its image codes:

- features (`landmark_features`): the landmarks centred on their centroid and divided by their RMS
  radius, so a crop's translation and scale (and so the crop box and the resize) do not matter;
  then standardised by a `BatchNorm1d` without affine parameters (running statistics at eval time);
- training-time jitter: Gaussian noise of ``noise`` times the landmarks' box size sqrt(w h) added to
  the pixels before the features, so that a head fitted on clean labelled landmarks also reads a
  detector's noisy ones (the MICC videos' detector is off by 0.4-0.8% of the frame);
- one head per code: a linear layer, or with ``hidden`` one hidden ReLU layer of that width. The
  last layer of each head starts at zero, so an untrained branch adds nothing and the encoder starts
  exactly where it would without it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

#: Landmarks read (iBUG 68) and the feature size (x and y of each).
NUM_LANDMARKS = 68
FEATURE_SIZE = 2 * NUM_LANDMARKS


def landmark_features(landmarks: Tensor) -> Tensor:
    """(M, 68, 2) px -> (M, 136) landmarks centred on their centroid and divided by their RMS radius."""
    centred = landmarks - landmarks.mean(dim=1, keepdim=True)
    radius = centred.pow(2).sum(-1).mean(-1).sqrt().clamp_min(1e-6)
    return (centred / radius[:, None, None]).flatten(1)


def landmark_box_size(landmarks: Tensor) -> Tensor:
    """(M, 68, 2) -> (M,) sqrt(w h) of the landmarks' bounding box (px)."""
    extent = landmarks.amax(dim=1) - landmarks.amin(dim=1)
    return (extent[:, 0] * extent[:, 1]).clamp_min(1e-6).sqrt()


def _head(out_size: int, hidden: int) -> nn.Module:
    """A zero-started head: FEATURE_SIZE -> out_size, linear or through one hidden ReLU layer."""
    if hidden:
        head = nn.Sequential(nn.Linear(FEATURE_SIZE, hidden), nn.ReLU(), nn.Linear(hidden, out_size))
        last = head[-1]
    else:
        head = last = nn.Linear(FEATURE_SIZE, out_size)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return head


class LandmarkHeads(nn.Module):
    """(B, 68, 2) landmarks (pixels of any frame) -> one (B, D) offset per code named in ``sizes``.

    Args:
        sizes: code name -> size (e.g. ``{"identity": 128, "expression": 64, "pose": 6}``).
        hidden: width of each head's hidden layer; 0 for linear heads.
        noise: training-time jitter of the landmarks, as a fraction of their box size sqrt(w h).
    """

    def __init__(self, sizes: Mapping[str, int], hidden: int = 0, noise: float = 0.02) -> None:
        super().__init__()
        if hidden < 0:
            raise ValueError(f"landmark heads' hidden width must be >= 0, got {hidden}")
        if noise < 0:
            raise ValueError(f"landmark jitter must be >= 0 (a fraction of the box size), got {noise}")
        self.noise = float(noise)
        self.norm = nn.BatchNorm1d(FEATURE_SIZE, affine=False)
        self.heads = nn.ModuleDict({name: _head(int(size), int(hidden)) for name, size in sizes.items()})

    def start_small(self, names: list[str], std: float = 0.01) -> None:
        """Re-draw the last layer's weights of the heads in `names` from N(0, `std`) (biases stay zero):
        a head that must move while what it feeds starts at zero too (two zero layers in a row never
        do)."""
        with torch.no_grad():
            for name in names:
                head = self.heads[name]
                last = head if isinstance(head, nn.Linear) else head[-1]
                last.weight.normal_(0.0, std)

    def forward(self, landmarks: Tensor) -> dict[str, Tensor]:
        """(B, 68, 2) float px -> {code name: (B, D) offset}; jittered in training mode."""
        landmarks = landmarks.float()
        if self.training and self.noise > 0:
            box = landmark_box_size(landmarks)
            landmarks = landmarks + torch.randn_like(landmarks) * (self.noise * box)[:, None, None]
        features = self.norm(landmark_features(landmarks))
        return {name: head(features) for name, head in self.heads.items()}
