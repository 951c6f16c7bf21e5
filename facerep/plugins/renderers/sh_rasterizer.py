"""Renderer plugin ``sh_rasterizer``: a differentiable Lambertian SH renderer in pure PyTorch.

The module holds the face model's mesh (triangles, landmarks, UVs) and its options and runs the
functional `facerep.geometry.render.render`, which is a rasteriser stage followed by a replaceable
shader (CPU and GPU, no compiled extension):

1. Geometry (`facerep.geometry.render.rasterize_mesh`): canonical vertices (B, N, 3) mm are rotated by
   the pose's ``R = Rz(roll) Ry(yaw) Rx(pitch)`` and projected by weak perspective (paper eq. 3,
   `facerep.geometry.camera`): ``u = W/2 + tx W + f x_r``, ``v = H/2 + ty H - f y_r``,
   ``f = exp(log_scale) W / 200``, depth ``z_r`` (larger = nearer).
2. Rasterisation (`facerep.geometry.rasterize.rasterize`, no gradients): the front-most triangle
   at every pixel centre by a chunked, vectorised z-buffer. Back faces are culled by default (faces
   are counter-clockwise seen from +z).
3. Deferred shading (differentiable): barycentrics of each covered pixel centre are recomputed from
   the projected vertex positions; the shader's per-vertex values (here the rotated area-weighted vertex
   normals), the depth and the albedo (per-vertex, or a UV map sampled at interpolated UVs) are
   interpolated, and the shader makes the colour. The default shader ``sh``
   (`facerep.geometry.sh.SHShader`) renormalises the normal and returns ``albedo * E(n)`` with ``E`` the
   SH irradiance of `facerep.geometry.sh` (Deep3DFaceRecon constants, light (B, 27) channel-major 3 x 9,
   ``ambient`` added to each channel's DC term); the light lives in the camera frame. The recipe key
   ``shader`` names another registered shader (component kind ``shader``; docs/plugins.md) to change
   the material alone.

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

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel, Renderer
from facerep.core.registry import Component, build, hookimpl
from facerep.core.types import Rendering
from facerep.geometry.rasterize import triangle_neighbours
from facerep.geometry.render import Shader, render
from facerep.geometry.sh import DEFAULT_AMBIENT, SHADING_MODES, SHShader

#: The shader this renderer uses unless a recipe names another registered one (component kind "shader").
DEFAULT_SHADER = "sh"


class SHRasterizer(Renderer):
    """Differentiable SH renderer (see the module docstring for the pipeline and its gradients).

    Args:
        face_model: injected; only ``triangles`` (F, 3) is required; ``landmarks`` (68,) and ``uv``
            (N, 2) are used when present.
        image_size: injected; side of the square output images in pixels.
        ambient: the SH shader's ambient, added to each channel's DC SH coefficient (0.8: a zero light
            code renders lit).
        max_candidates: most (triangle, pixel) pairs the rasteriser tests at once (bounds memory;
            about 150 bytes each).
        cull_backfaces: skip triangles facing away from the camera.
        antialias: blend across silhouettes with a one-pixel ramp (gives silhouette gradients; about
            1.5-2x the cost of a hard render).
        shading: the SH shader's mode: "pixel" (interpolate normals, shade per pixel) or "vertex" (shade
            per vertex and interpolate colours, Gouraud; cheaper).
        clamp: clamp colours to [0, 1] (straight-through gradient).
        visibility_tolerance: a vertex counts as occluded when it lies more than this many pixel
            sizes (converted to mm) behind the front-most surface at its image position.
        shader: name of the registered shader (component kind ``shader``) that turns normals, albedo
            and light into colours: ``sh`` (`facerep.geometry.sh.SHShader`, with ``ambient`` and
            ``shading``) or a third party's, built by name with the face model and image size.
    """

    def __init__(
        self,
        face_model: FaceModel,
        image_size: int = 224,
        ambient: float = DEFAULT_AMBIENT,
        max_candidates: int = 1 << 20,
        cull_backfaces: bool = True,
        antialias: bool = False,
        shading: str = "pixel",
        clamp: bool = True,
        visibility_tolerance: float = 2.0,
        shader: str = DEFAULT_SHADER,
    ) -> None:
        super().__init__()
        if face_model is None or getattr(face_model, "triangles", None) is None:
            raise ValueError("sh_rasterizer needs a face model with triangles (F, 3)")
        if shading not in SHADING_MODES:
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
        self.shader = self._make_shader(shader, face_model)
        self.light_size = int(self.shader.light_size)
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

    def _make_shader(self, name: str, face_model: FaceModel) -> Shader:
        """The SH shader with this renderer's ``ambient`` and ``shading``, or a registered shader by name."""
        if name == DEFAULT_SHADER:
            return SHShader(self.ambient, self.shading)
        if self.ambient != DEFAULT_AMBIENT or self.shading != "pixel":
            raise ValueError(
                f"sh_rasterizer: ambient and shading are options of the {DEFAULT_SHADER!r} shader, "
                f"not of shader {name!r}"
            )
        made = build("shader", {"type": name}, {"face_model": face_model, "image_size": self.image_size})
        if not isinstance(made, Shader):
            raise TypeError(
                f"sh_rasterizer: shader {name!r} built a {type(made).__name__}, which lacks the Shader "
                "contract (light_size, vertex_attributes, shade; see facerep.geometry.render.Shader)"
            )
        return made

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
        """Render a batch (`facerep.geometry.render.render` with this module's mesh and options).

        Args:
            vertices: (B, N, 3) canonical vertices in mm.
            albedo: (B, N, 3) per-vertex albedo in [0, 1], or None when ``uv_map`` is given.
            pose: (B, 6) (pitch, yaw, roll, tx, ty, log_scale); see `facerep.geometry.camera`.
            light: (B, 27) channel-major SH coefficients (the shader's ``light_size`` values).
            uv_map: optional (B, 3, H_uv, W_uv) albedo texture, sampled bilinearly (u right, v up:
                row 0 of the map is v = 1); replaces ``albedo``.
            uvs: optional (N, 2) or (B, N, 2) texture coordinates in [0, 1]; default the face model's.

        Returns:
            `facerep.core.types.Rendering` of ``image_size`` pixels square.
        """
        batch, num_n = vertices.shape[0], vertices.shape[1]
        out = render(
            vertices,
            albedo,
            pose,
            light,
            self.triangles,
            self.image_size,
            self.shader,
            uv_map=uv_map,
            uvs=None if uv_map is None else self._vertex_uvs(uvs, batch, num_n),
            cull_backfaces=self.cull_backfaces,
            max_candidates=self.max_candidates,
            clamp=self.clamp,
            antialias=self.antialias,
            neighbours=self.neighbours,
            visibility_tolerance=self.visibility_tolerance,
            who="sh_rasterizer",
        )
        points = out.mesh.points
        landmarks_2d = points[:, self.landmarks] if self.landmarks.numel() else points.new_zeros(batch, 0, 2)
        return Rendering(
            image=out.image,
            mask=out.mask,
            depth=out.depth_map,
            triangle_ids=out.mesh.fragments.pix_to_face,
            vertices_2d=points,
            landmarks_2d=landmarks_2d,
            visibility=out.visibility,
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


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "renderer",
            "sh_rasterizer",
            SHRasterizer,
            "pure-PyTorch z-buffer rasteriser, Lambertian SH shading (Deep3DFaceRecon), weak perspective",
        ),
        Component(
            "shader",
            DEFAULT_SHADER,
            SHShader,
            "Lambertian shading under second-order SH light (27 values), per pixel or per vertex",
        ),
    ]


__all__ = ["SHRasterizer"]
