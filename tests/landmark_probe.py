"""A landmark-reading encoder for tests: its identity code is a linear map of the landmarks (normalised by
the image size), and it records what every call received (`CALLS`), so tests can check that each caller
hands an encoder that reads landmarks the landmarks of exactly the images it encodes, in their frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from facerep.core.interfaces import Encoder, encoder_landmarks
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Codes, CodeSizes

#: Registry name of `LandmarkProbeEncoder` once `ProbePlugin` is registered.
PROBE_NAME = "landmark_probe"


@dataclass
class ProbeCall:
    """One forward call: the (B, 3, H, W) images and the (B, 68, 2) landmarks it received (CPU copies)."""

    images: Tensor
    landmarks: Tensor


#: Every call of every `LandmarkProbeEncoder`, oldest first (tests clear it).
CALLS: list[ProbeCall] = []


class LandmarkProbeEncoder(Encoder):
    """identity = a linear map of the landmarks divided by the image size; expression, pose and light = small
    linear maps of the mean colour (pose and light start at zero: a frontal, ambient-lit face)."""

    reads_landmarks = True

    def __init__(self, identity: int = 128, expression: int = 64, light: int = 27) -> None:
        super().__init__()
        self.code_sizes = CodeSizes(identity=identity, expression=expression, pose=6, light=light)
        self.skip_channels: list[int] = []
        generator = torch.Generator().manual_seed(0)
        self.identity_map = nn.Parameter(torch.randn(136, identity, generator=generator) / 136**0.5)
        self.colour_map = nn.Linear(3, expression + 6 + light)
        nn.init.zeros_(self.colour_map.weight)
        nn.init.zeros_(self.colour_map.bias)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        landmarks = encoder_landmarks(self, images, landmarks)
        assert landmarks is not None
        CALLS.append(
            ProbeCall(images.detach().float().cpu().clone(), landmarks.detach().float().cpu().clone())
        )
        height, width = images.shape[-2:]
        size = torch.tensor([float(width), float(height)], device=landmarks.device)
        normalised = (landmarks.float() / size - 0.5).flatten(1)
        rest = self.colour_map(images.float().mean(dim=(2, 3)))
        sizes = self.code_sizes
        expression, pose, light = rest.split([sizes["expression"], 6, sizes["light"]], dim=1)
        return Codes(normalised @ self.identity_map, expression, pose, light, [])


class ProbePlugin:
    """Registers `LandmarkProbeEncoder` as the encoder ``landmark_probe``."""

    @hookimpl
    def facerep_components(self) -> list[Component]:
        return [Component("encoder", PROBE_NAME, LandmarkProbeEncoder, "test: reads the crop's landmarks")]
