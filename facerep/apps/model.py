"""`FaceRep`: a trained run as an object for applications (``facerep.load(RUN)`` returns one).

A thin inference wrapper over `facerep.core.run.load_run`: everything runs without gradients, in eval
mode, on the run's device. Images are (B, 3, H, W) floats in [0, 1] (a single (3, H, W) image is
accepted too); images of another size are resized (antialiased bilinear) to the run's ``image_size``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from facerep.core.types import Codes, Reconstruction, Rendering


class FaceRep:
    """Encode photos into codes, decode codes into faces, render faces.

    Attributes:
        run: the `facerep.core.run.LoadedRun` (recipe, checkpoint path, ...).
        model: the composed `FaceRepModel` (eval mode).
        face_model: the run's face model (template topology, UVs, landmarks).
        image_size: input side in pixels.
        neutral_expression: (D_exp,) the expression code decoded as "neutral".
        device: where the model runs.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.model = run.model.eval()
        self.face_model = run.face_model
        self.image_size = int(run.image_size)
        self.neutral_expression = run.neutral_expression
        self.device = next(iter(self.model.parameters())).device

    def __repr__(self) -> str:
        return (
            f"FaceRep(run={str(self.run.path)!r}, image_size={self.image_size}, "
            f"vertices={self.face_model.num_vertices}, checkpoint={self.run.checkpoint.name!r})"
        )

    @property
    def triangles(self) -> Tensor:
        """(F, 3) long triangle indices of the template."""
        return torch.as_tensor(self.face_model.triangles, dtype=torch.long)

    # -- inputs ---------------------------------------------------------------------------------------

    def prepare(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) or (3, H, W) in [0, 1] -> (B, 3, S, S) on the model's device, S = image_size."""
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a tensor (B, 3, H, W) in [0, 1], got {type(images).__name__}")
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        if images.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
        return images.clamp(0.0, 1.0)

    # -- the model ------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, images: Tensor) -> Codes:
        """Images -> `Codes` (identity, expression, pose, light, encoder skips)."""
        return self.model.encode(self.prepare(images))

    @torch.no_grad()
    def decode(self, codes: Codes, *, neutral: bool = False) -> Reconstruction:
        """Codes -> `Reconstruction` with canonical vertices (B, N, 3) mm and albedo (B, N, 3), not rendered.

        With ``neutral`` the run's neutral expression code replaces ``codes.expression``.
        """
        expression = codes.expression
        if neutral:
            expression = self.neutral_expression.to(expression).expand_as(expression)
        vertices = self.model.decode_shape(codes.identity, expression)
        albedo = self.model.decode_albedo(codes)
        return Reconstruction(codes=codes, vertices=vertices, albedo=albedo, extras=self._uv_extras())

    @torch.no_grad()
    def render(self, vertices: Tensor, albedo: Tensor, pose: Tensor, light: Tensor) -> Rendering:
        """(B, N, 3) mm, (B, N, 3) albedo, (B, 6) pose, (B, 27) light -> `Rendering` at image_size."""
        dev = self.device
        return self.model.render(vertices.to(dev), albedo.to(dev), pose.to(dev), light.to(dev))

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Reconstruction:
        """Images -> `Reconstruction` (codes, vertices, albedo, rendering; ``extras["albedo_uv"]`` when the
        albedo decoder produces a UV map)."""
        recon = self.model(self.prepare(images))
        recon.extras.update(self._uv_extras())
        return recon

    def _uv_extras(self) -> dict[str, Tensor]:
        uv_map = getattr(self.model.albedo_decoder, "last_uv_map", None)
        return {"albedo_uv": uv_map.detach()} if isinstance(uv_map, Tensor) else {}


def load(run: str | Path, *, device: str = "cpu", checkpoint: str | Path | None = None) -> FaceRep:
    """Load a trained run directory (its newest checkpoint, or `checkpoint`) as a `FaceRep`."""
    from facerep.core.run import load_run

    return FaceRep(load_run(run, checkpoint=checkpoint, device=device))
