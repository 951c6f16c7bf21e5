"""Renderer plugin ``sh_rasterizer``: a differentiable Lambertian SH renderer in pure PyTorch.

Pipeline (CPU and GPU, no compiled extension):

1. Geometry: canonical vertices (B, N, 3) mm are rotated by the pose's ``R = Rz(roll) Ry(yaw)
   Rx(pitch)`` and projected by weak perspective (paper eq. 3, `facerep.geometry.camera`):
   ``u = W/2 + tx W + f x_r``, ``v = H/2 + ty H - f y_r``, ``f = exp(log_scale) W / 200``, depth
   ``z_r`` (larger = nearer).
2. Rasterisation (`facerep.geometry.rasterize.rasterize`, no gradients): the front-most triangle
   at every pixel centre by a chunked, vectorised z-buffer. Back faces are culled by default (faces
   are counter-clockwise seen from +z).
3. Deferred shading (differentiable): barycentrics of each covered pixel centre are recomputed from
   the projected vertex positions; albedo (per-vertex, or a UV map sampled at interpolated UVs) and
   rotated area-weighted vertex normals are interpolated, the normal is renormalised, and the colour
   is ``albedo * E(n)`` with ``E`` the SH irradiance of `facerep.geometry.sh` (Deep3DFaceRecon
   constants, light (B, 27) channel-major 3 x 9, ``ambient`` added to each channel's DC term). The
   light lives in the camera frame.

Gradients that exist:
    - albedo (per-vertex or UV map), light: exact;
    - vertex positions: through the barycentrics (pixel positions within their triangle) and the
      interpolated depth, and through the vertex normals (shading);
    - pose: through the projection (all six entries) and through the rotated normals (angles);
    - landmarks_2d / vertices_2d: exact (pure projection).
Gradients that do NOT exist (piecewise-constant choices):
    - which triangle covers a pixel: coverage, silhouettes and self-occlusion boundaries move without
      gradient, unless ``antialias=True``: then `facerep.geometry.rasterize_antialias` blends the
      colours and coverage of 4-adjacent pixel pairs across every silhouette (mesh boundary, edges
      between front- and back-facing triangles, including where the nose occludes a cheek) with a
      one-pixel ramp whose position is differentiable in the silhouette-edge vertices, so image and
      mask losses do pull silhouettes (the soft area's derivative equals the true area's).
    - visibility (a boolean).
With ``clamp`` the colour is clamped to [0, 1] in the forward pass with a straight-through
(identity) gradient, so saturated pixels still pass gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import Renderer
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Rendering
from facerep.geometry.camera import euler_to_rotation, focal, project_rotated
from facerep.geometry.normals import vertex_normals
from facerep.geometry.rasterize import (
    fragments,
    interpolate,
    rasterize,
    to_image,
    triangle_neighbours,
)
from facerep.geometry.rasterize_antialias import antialias
from facerep.geometry.sh import DEFAULT_AMBIENT, light_coefficients, sh_basis


def _straight_through_clamp(x: Tensor) -> Tensor:
    return x + (x.clamp(0.0, 1.0) - x).detach()


class SHRasterizer(Renderer):
    """Differentiable SH renderer (see the module docstring for the pipeline and its gradients).

    Args:
        face_model: injected; only ``triangles`` (F, 3) is required; ``landmarks`` (68,) and ``uv``
            (N, 2) are used when present.
        image_size: injected; side of the square output images in pixels.
        ambient: added to each channel's DC SH coefficient (0.8: a zero light code renders lit).
        max_candidates: most (triangle, pixel) pairs the rasteriser tests at once (bounds memory;
            about 150 bytes each).
        cull_backfaces: skip triangles facing away from the camera.
        antialias: blend across silhouettes with a one-pixel ramp (gives silhouette gradients; about
            1.5-2x the cost of a hard render).
        shading: "pixel" (interpolate normals, shade per pixel) or "vertex" (shade per vertex and
            interpolate colours, Gouraud; cheaper).
        clamp: clamp colours to [0, 1] (straight-through gradient).
        visibility_tolerance: a vertex counts as occluded when it lies more than this many pixel
            sizes (converted to mm) behind the front-most surface at its image position.
    """

    def __init__(
        self,
        face_model: Any,
        image_size: int = 224,
        ambient: float = DEFAULT_AMBIENT,
        max_candidates: int = 1 << 20,
        cull_backfaces: bool = True,
        antialias: bool = False,
        shading: str = "pixel",
        clamp: bool = True,
        visibility_tolerance: float = 2.0,
    ) -> None:
        super().__init__()
        if face_model is None or getattr(face_model, "triangles", None) is None:
            raise ValueError("sh_rasterizer needs a face model with triangles (F, 3)")
        if shading not in ("pixel", "vertex"):
            raise ValueError(f"sh_rasterizer: shading must be 'pixel' or 'vertex', got {shading!r}")
        if int(image_size) <= 0:
            raise ValueError(f"sh_rasterizer: image_size must be positive, got {image_size}")
        triangles = np.asarray(face_model.triangles, dtype=np.int64)
        self.image_size = int(image_size)
        self.ambient = float(ambient)
        self.max_candidates = int(max_candidates)
        self.cull_backfaces = bool(cull_backfaces)
        self.antialias = bool(antialias)
        self.shading = shading
        self.clamp = bool(clamp)
        self.visibility_tolerance = float(visibility_tolerance)
        landmarks = getattr(face_model, "landmarks", None)
        uv = getattr(face_model, "uv", None)
        self.register_buffer("triangles", torch.from_numpy(triangles), persistent=False)
        self.register_buffer(
            "landmarks",
            torch.as_tensor(np.asarray(landmarks if landmarks is not None else [], dtype=np.int64)),
            persistent=False,
        )
        self.register_buffer(
            "uv",
            torch.as_tensor(np.asarray(uv, dtype=np.float32)) if uv is not None else torch.zeros(0, 2),
            persistent=False,
        )
        self.register_buffer("neighbours", torch.from_numpy(triangle_neighbours(triangles)), persistent=False)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, triangles={self.triangles.shape[0]}, ambient={self.ambient}, "
            f"antialias={self.antialias}, shading={self.shading!r}"
        )

    def forward(
        self,
        vertices: Tensor,
        albedo: Tensor | None,
        pose: Tensor,
        light: Tensor,
        uv_map: Tensor | None = None,
        uvs: Tensor | None = None,
    ) -> Rendering:
        """Render a batch.

        Args:
            vertices: (B, N, 3) canonical vertices in mm.
            albedo: (B, N, 3) per-vertex albedo in [0, 1], or None when ``uv_map`` is given.
            pose: (B, 6) (pitch, yaw, roll, tx, ty, log_scale); see `facerep.geometry.camera`.
            light: (B, 27) channel-major SH coefficients.
            uv_map: optional (B, 3, H_uv, W_uv) albedo texture, sampled bilinearly (u right, v up:
                row 0 of the map is v = 1); replaces ``albedo``.
            uvs: optional (N, 2) or (B, N, 2) texture coordinates in [0, 1]; default the face model's.

        Returns:
            `facerep.core.types.Rendering` of ``image_size`` pixels square.
        """
        batch, num_n = vertices.shape[0], vertices.shape[1]
        if vertices.ndim != 3 or vertices.shape[-1] != 3:
            raise ValueError(f"sh_rasterizer: vertices must be (B, N, 3), got {tuple(vertices.shape)}")
        if pose.shape != (batch, 6):
            raise ValueError(f"sh_rasterizer: pose must be ({batch}, 6), got {tuple(pose.shape)}")
        if light.shape != (batch, 27):
            raise ValueError(f"sh_rasterizer: light must be ({batch}, 27), got {tuple(light.shape)}")
        if uv_map is None and (albedo is None or albedo.shape != vertices.shape):
            got = None if albedo is None else tuple(albedo.shape)
            raise ValueError(
                f"sh_rasterizer: albedo must be {tuple(vertices.shape)} (or pass uv_map), got {got}"
            )
        size = self.image_size
        tri = self.triangles
        if tri.numel() and int(tri.max()) >= num_n:
            raise ValueError(f"sh_rasterizer: triangles index {int(tri.max())} but vertices have N={num_n}")

        rotation = euler_to_rotation(pose[:, :3])
        rotated = vertices @ rotation.transpose(-1, -2)
        points, depth = project_rotated(rotated, pose, size)
        normals = vertex_normals(vertices, tri) @ rotation.transpose(-1, -2)

        pix_to_face = rasterize(points, depth, tri, size, self.cull_backfaces, self.max_candidates)
        frags = fragments(points, tri, pix_to_face)

        # Deferred shading: one gather + blend for every per-vertex attribute.
        gamma = light_coefficients(light, self.ambient)  # (B, 3, 9)
        # "pixel": interpolate normals; "vertex": interpolate the per-vertex irradiance (B, N, 3).
        vertex_shading = self.shading == "vertex"
        shading_attr = sh_basis(normals) @ gamma.transpose(-1, -2) if vertex_shading else normals
        attrs = [shading_attr, depth[..., None]]
        if uv_map is None:
            attrs.append(albedo.to(vertices.dtype))
        else:
            attrs.append(self._vertex_uvs(uvs, batch, num_n).to(vertices.dtype))
        values = interpolate(torch.cat(attrs, -1), frags)  # (P, 3 + 1 + 3|2)
        shade_in, depth_px, surface = values[:, :3], values[:, 3:4], values[:, 4:]
        if self.shading == "pixel":
            n = shade_in / shade_in.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            g = gamma.reshape(batch, 27).index_select(0, frags.batch).reshape(-1, 3, 9)
            shade = (g * sh_basis(n)[:, None, :]).sum(-1)  # (P, 3)
        else:
            shade = shade_in
        if uv_map is not None:
            surface = self._sample_uv_map(uv_map, surface, frags)
        colour = surface * shade
        if self.clamp:
            colour = _straight_through_clamp(colour)

        image = to_image(colour, frags)
        mask = (pix_to_face >= 0)[:, None].to(vertices.dtype)
        depth_map = to_image(depth_px, frags)  # (B, 1, H, W), 0 where uncovered
        if self.antialias:
            tol = self.visibility_tolerance / focal(pose.detach(), size)
            image, mask = antialias(
                image,
                mask,
                depth_map,
                points,
                depth,
                tri,
                self.neighbours,
                pix_to_face,
                occlusion_tolerance=tol,
            )
        visibility = self._visibility(points, depth, normals, depth_map, pose, pix_to_face)
        landmarks_2d = points[:, self.landmarks] if self.landmarks.numel() else points.new_zeros(batch, 0, 2)
        return Rendering(
            image=image,
            mask=mask,
            depth=depth_map,
            triangle_ids=pix_to_face,
            vertices_2d=points,
            landmarks_2d=landmarks_2d,
            visibility=visibility,
        )

    def _vertex_uvs(self, uvs: Tensor | None, batch: int, num_n: int) -> Tensor:
        """(B, N, 2) texture coordinates: ``uvs`` (N, 2) / (B, N, 2), or the face model's."""
        if uvs is None:
            if self.uv.shape[0] != num_n:
                raise ValueError(
                    "sh_rasterizer: uv_map given but the face model has no per-vertex uv; pass uvs"
                )
            uvs = self.uv
        if uvs.shape[-2:] != (num_n, 2):
            raise ValueError(
                f"sh_rasterizer: uvs must be (N, 2) or (B, N, 2) with N={num_n}, got {tuple(uvs.shape)}"
            )
        return uvs.expand(batch, num_n, 2) if uvs.ndim == 2 else uvs

    def _sample_uv_map(self, uv_map: Tensor, uv: Tensor, frags: Any) -> Tensor:
        """Bilinear samples (P, C) of the UV albedo map (B, C, H_uv, W_uv) at per-sample UVs (P, 2)."""
        grid = to_image(torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1).to(uv_map.dtype), frags)
        sampled = torch.nn.functional.grid_sample(
            uv_map, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False
        )  # (B, C, H, W)
        return sampled.permute(0, 2, 3, 1).reshape(-1, uv_map.shape[1]).index_select(0, frags.pixels)

    def _visibility(
        self,
        points: Tensor,
        depth: Tensor,
        normals: Tensor,
        depth_map: Tensor,
        pose: Tensor,
        pix_to_face: Tensor,
    ) -> Tensor:
        """(B, N) bool: the vertex faces the camera, projects into the image and is not occluded.

        Occlusion test against the z-buffer depth at the centre of the vertex's pixel: the vertex is
        occluded when it lies behind it by more than ``visibility_tolerance`` pixel sizes (in mm) plus
        the depth change of its own surface over the up to 0.75 px between the vertex and the pixel
        centre (from the rotated vertex normal's slope, capped at 10), so steep but unoccluded surfaces
        stay visible while occluders (tens of mm nearer) still hide what is behind them.
        """
        with torch.no_grad():
            batch, _, height, width = depth_map.shape
            pts = points.detach()
            col = torch.floor(pts[..., 0]).long()
            row = torch.floor(pts[..., 1]).long()
            inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
            flat = row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
            zbuf = depth_map.detach().reshape(batch, -1).gather(1, flat)
            n = normals.detach()
            facing = n[..., 2] > 0
            slope = (n[..., :2].norm(dim=-1) / n[..., 2].clamp_min(1e-3)).clamp(max=10.0)
            mm_per_px = 1.0 / focal(pose.detach(), self.image_size)[:, None]
            tol = mm_per_px * (self.visibility_tolerance + 0.75 * slope)
            covered = (pix_to_face.reshape(batch, -1) >= 0).gather(1, flat)
            return inside & facing & (~covered | (depth.detach() >= zbuf - tol))


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "renderer",
            "sh_rasterizer",
            SHRasterizer,
            "pure-PyTorch z-buffer rasteriser, Lambertian SH shading (Deep3DFaceRecon), weak perspective",
        )
    ]


__all__ = ["SHRasterizer"]
