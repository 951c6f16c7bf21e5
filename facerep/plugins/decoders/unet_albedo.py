"""Albedo decoder ``unet``: a CNN decoder bridged to the encoder's feature maps (paper, section 4.1, stage 2).

The paper replaces the GCN albedo decoder, once lighting is learnt, by "a CNN network that has skip
connections with the encoder network ... similar to U-Net" to recover texture detail.

Choice: the decoder predicts a **UV albedo map** (B, 3, uv_size, uv_size) and samples it at the face
model's per-vertex texture coordinates (bilinear ``grid_sample``) -> per-vertex albedo (B, N, 3). Why a
UV map rather than per-pixel albedo aligned with the input image:

- the decoder contract is ``forward(identity, skips)``: it does not see the pose, and an image-aligned
  albedo would need the pose (and the shape) to be assigned to vertices;
- every vertex gets an albedo, including those hidden in the image, so the albedo-symmetry loss
  (mirror vertices) and rendering from new viewpoints stay defined;
- a UV map is a pose-free texture that exports with the mesh (``last_uv_map``).

The price is that the encoder's features are image-aligned, not UV-aligned: the skip bridges are
resized to the decoder's resolution and the convolutions learn the correspondence (for frontal-ish
crops the two layouts are close: the template's UVs are a frontal projection of the face).

Architecture (n = number of encoder skips, 5 for ResNets; widths w_j = min(width * 2^(n-j), max_channels)):
the deepest skip (1x1 conv to w_0) resized to uv_size / 2^n, plus an FC of the identity code broadcast
over it, then n stages of [bilinear x2 up, concat the next finer skip (1x1 conv to w_j, resized), two
3x3 conv + LeakyReLU] (the last stage, at full UV resolution, has no skip), and a 1x1 conv to 3 logits
(zero-initialised) added to the logit of the face model's mean albedo splatted into UV space
(nearest vertex per texel). So the untrained decoder returns (a UV-resampled copy of) the mean albedo.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facerep.core.interfaces import AlbedoDecoder, Encoder, FaceModel
from facerep.core.registry import Component, hookimpl
from facerep.core.types import CodeSizes


def mean_albedo_uv_logits(face_model: FaceModel, uv_size: int) -> Tensor:
    """(1, 3, S, S) logit of the mean albedo of the nearest vertex (in UV space) of every texel.

    Row 0 of the map is v = 1 (the top), column 0 is u = 0.
    """
    from scipy.spatial import cKDTree

    uv = np.asarray(face_model.uv, dtype=np.float64)
    centres = (np.arange(uv_size) + 0.5) / uv_size
    u, v = np.meshgrid(centres, 1.0 - centres)  # (S, S): row i -> v = 1 - (i + 0.5) / S
    _, nearest = cKDTree(uv).query(np.stack([u.ravel(), v.ravel()], axis=1))
    albedo = np.clip(np.asarray(face_model.albedo_mean, dtype=np.float64)[nearest], 1e-3, 1 - 1e-3)
    logits = np.log(albedo / (1 - albedo)).reshape(uv_size, uv_size, 3).transpose(2, 0, 1)
    return torch.as_tensor(logits[None], dtype=torch.float32)


class _Stage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class UNetAlbedoDecoder(AlbedoDecoder):
    """identity code + encoder skips -> UV albedo map -> per-vertex albedo (B, N, 3) in (0, 1).

    Args:
        face_model: injected; per-vertex UVs and the mean albedo.
        encoder: injected; its ``skip_channels`` (finest first) size the bridges.
        code_sizes: injected; the encoder's identity size.
        uv_size: side of the UV albedo map in texels.
        width: channels of the full-resolution stage; coarser stages double it.
        max_channels: cap on any stage's channels.

    ``forward(identity (B, D_id), skips list[(B, C_i, H_i, W_i)] finest first) -> (B, N, 3)``; the UV
    map of the last call is kept in ``last_uv_map`` (B, 3, uv_size, uv_size), row 0 = top (v = 1).
    """

    uses_skips = True

    def __init__(
        self,
        face_model: FaceModel,
        encoder: Encoder,
        code_sizes: CodeSizes,
        uv_size: int = 64,
        width: int = 16,
        max_channels: int = 256,
    ) -> None:
        super().__init__()
        skip_channels = [int(c) for c in getattr(encoder, "skip_channels", [])]
        if not skip_channels:
            raise ValueError(
                f"the unet albedo decoder needs an encoder with skip feature maps; {type(encoder).__name__} "
                "has no skip_channels"
            )
        n = len(skip_channels)
        self.uv_size = int(uv_size)
        self.id_dim = CodeSizes.of(code_sizes).identity
        self.skip_channels = skip_channels
        widths = [min(width * 2 ** (n - j), max_channels) for j in range(n + 1)]
        self.sizes = [max(1, round(self.uv_size / 2 ** (n - j))) for j in range(n + 1)]
        self.sizes[-1] = self.uv_size
        self.bottleneck = nn.Conv2d(skip_channels[-1], widths[0], 1)
        self.identity_fc = nn.Linear(self.id_dim, widths[0])
        # bridge j (j = 1..n-1) feeds stage j with skip n-1-j; stage n (full resolution) has no bridge
        self.bridges = nn.ModuleList([nn.Conv2d(skip_channels[n - 1 - j], widths[j], 1) for j in range(1, n)])
        self.stages = nn.ModuleList(
            [_Stage(widths[j - 1] + (widths[j] if j < n else 0), widths[j]) for j in range(1, n + 1)]
        )
        self.to_rgb = nn.Conv2d(widths[n], 3, 1)
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)
        self.register_buffer("base_logits", mean_albedo_uv_logits(face_model, self.uv_size), persistent=False)
        uv = torch.as_tensor(np.asarray(face_model.uv), dtype=torch.float32)
        grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], dim=1)  # grid_sample's (x, y) in [-1, 1]
        self.register_buffer("grid", grid.view(1, 1, -1, 2), persistent=False)
        self.last_uv_map: Tensor | None = None

    def uv_map(self, identity: Tensor, skips: list[Tensor]) -> Tensor:
        """(B, D_id), skips finest first -> (B, 3, S, S) albedo map in (0, 1)."""
        if skips is None or len(skips) != len(self.skip_channels):
            raise ValueError(
                f"the unet albedo decoder needs the encoder's {len(self.skip_channels)} skip feature maps "
                f"(channels {self.skip_channels}), got {0 if skips is None else len(skips)}"
            )
        for i, (s, c) in enumerate(zip(skips, self.skip_channels, strict=True)):
            if s.dim() != 4 or s.shape[1] != c:
                raise ValueError(f"skip {i} should be (B, {c}, H, W), got {tuple(s.shape)}")
        n = len(skips)
        size = self.sizes[0]
        x = F.interpolate(self.bottleneck(skips[-1]), size=(size, size), mode="bilinear", align_corners=False)
        x = x + self.identity_fc(identity)[:, :, None, None]
        for j in range(1, n + 1):
            size = self.sizes[j]
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            if j < n:
                bridge = self.bridges[j - 1](skips[n - 1 - j])
                bridge = F.interpolate(bridge, size=(size, size), mode="bilinear", align_corners=False)
                x = torch.cat([x, bridge], dim=1)
            x = self.stages[j - 1](x)
        return torch.sigmoid(self.base_logits + self.to_rgb(x))

    def forward(self, identity: Tensor, skips: list[Tensor] | None = None) -> Tensor:
        """(B, D_id), skips -> (B, N, 3) per-vertex albedo sampled from the UV map."""
        if skips is None:
            raise ValueError("the unet albedo decoder uses the encoder's skips (uses_skips = True); got none")
        uv_map = self.uv_map(identity, skips)
        self.last_uv_map = uv_map
        grid = self.grid.expand(uv_map.shape[0], -1, -1, -1)
        sampled = F.grid_sample(uv_map, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return sampled[:, :, 0, :].transpose(1, 2)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "albedo_decoder",
            "unet",
            UNetAlbedoDecoder,
            "U-Net-like CNN bridged to the encoder's skips -> UV albedo map sampled at vertex UVs",
        )
    ]
