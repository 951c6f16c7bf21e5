"""Rendering a posed, lit mesh as a function: a rasteriser stage, then a replaceable shader.

As pytorch3d composes a renderer from a rasteriser and a shader, `render` runs two halves:

1. `rasterize_mesh`, the camera and the rasteriser (no choice of material or light in it): the
   canonical vertices are rotated by the pose and projected by weak perspective
   (`facerep.geometry.camera`), vertex normals are rotated into the camera frame, the z-buffer
   (`facerep.geometry.rasterize.rasterize`, no gradients) finds the front-most triangle at every pixel
   centre and `facerep.geometry.rasterize.fragments` gives the differentiable barycentrics of every
   covered pixel. Result: a `RasterizedMesh`.
2. a `Shader`, the material and the light: it names the per-vertex values it needs at each covered
   pixel (`Shader.vertex_attributes`, e.g. normals), and turns their blend, the surface colour there
   (albedo) and the light code into the pixel's colour (`Shader.shade`). The default is
   `facerep.geometry.sh.SHShader` (Lambertian, second-order spherical harmonics).

Between the two, the shader's per-vertex values, the vertex depth and the surface colour (per-vertex
albedo, or texture coordinates when a UV albedo map is given) are blended in one `interpolate` call.
`render` then scatters colours into images, optionally blends across silhouettes
(`facerep.geometry.rasterize_antialias`) and tests which vertices the camera sees (`vertex_visibility`).

Conventions are the camera's: points in pixels (x right, y down, origin at the image's top-left
corner), depth in mm (larger = nearer), vertices (B, N, 3) mm in the canonical frame, pose (B, 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from facerep.geometry.camera import POSE_SIZE, euler_to_rotation, focal, project_rotated
from facerep.geometry.normals import vertex_normals
from facerep.geometry.rasterize import Fragments, fragments, interpolate, rasterize, to_image
from facerep.geometry.rasterize_antialias import antialias as antialias_silhouettes


@dataclass
class RasterizedMesh:
    """What the rasteriser stage hands a shader.

    Attributes:
        points: (B, N, 2) projected vertices in pixels (differentiable).
        depth: (B, N) vertex depth in mm, larger = nearer (differentiable).
        normals: (B, N, 3) area-weighted vertex normals rotated into the camera frame (not unit length;
            differentiable).
        triangles: (F, 3) long vertex indices.
        image_size: side of the square images in pixels.
        fragments: the covered pixels (P of them), their triangles and barycentrics; ``pix_to_face``
            (B, H, W) is the z-buffer's triangle per pixel, -1 where uncovered.
    """

    points: Tensor
    depth: Tensor
    normals: Tensor
    triangles: Tensor
    image_size: int
    fragments: Fragments


@runtime_checkable
class Shader(Protocol):
    """The material and light half of `render`: what replaces the SH shading alone.

    Attributes:
        light_size: the length L of the light codes (B, L) it reads (27 for SH; the encoder's light code
            must have this size).

    ``vertex_attributes(mesh, light) -> (B, N, C)``: per-vertex values to blend at each covered pixel
    (C >= 0; e.g. the normals ``mesh.normals``). ``shade(attributes, surface, mesh, light) -> (P, 3)``:
    the colour of each of the P covered pixels (``mesh.fragments``) from ``attributes`` (P, C) (the blend
    of the per-vertex values), ``surface`` (P, 3) (the albedo there, in [0, 1]) and ``light`` (B, L);
    row p belongs to batch row ``mesh.fragments.batch[p]``. Both must be differentiable; a shader that is
    an ``nn.Module`` (learnable material) becomes part of the renderer that holds it.
    """

    light_size: int

    def vertex_attributes(self, mesh: RasterizedMesh, light: Tensor) -> Tensor: ...

    def shade(self, attributes: Tensor, surface: Tensor, mesh: RasterizedMesh, light: Tensor) -> Tensor: ...


@dataclass
class RenderedMesh:
    """What `render` returns.

    Attributes:
        image: (B, 3, H, W) colour where covered, 0 elsewhere (blended across silhouettes with antialias).
        mask: (B, 1, H, W) coverage in {0, 1} (soft at silhouettes with antialias).
        depth_map: (B, 1, H, W) depth of the front-most surface in mm, 0 where uncovered.
        visibility: (B, N) bool, the vertex faces the camera, projects into the image and is not occluded.
        mesh: the rasteriser stage's `RasterizedMesh` (projected points, z-buffer, fragments).
    """

    image: Tensor
    mask: Tensor
    depth_map: Tensor
    visibility: Tensor
    mesh: RasterizedMesh


def rasterize_mesh(
    vertices: Tensor,
    pose: Tensor,
    triangles: Tensor,
    image_size: int,
    cull_backfaces: bool = True,
    max_candidates: int = 1 << 20,
) -> RasterizedMesh:
    """The rasteriser stage: pose, project, rotate the normals, z-buffer and fragments.

    Args:
        vertices: (B, N, 3) canonical vertices in mm.
        pose: (B, 6) (pitch, yaw, roll, tx, ty, log_scale).
        triangles: (F, 3) long, counter-clockwise seen from +z.
        image_size: side of the square images in pixels.
        cull_backfaces: skip triangles facing away from the camera.
        max_candidates: most (triangle, pixel) pairs the z-buffer tests at once (bounds memory).
    """
    rotation = euler_to_rotation(pose[:, :3])
    rotated = vertices @ rotation.transpose(-1, -2)
    points, depth = project_rotated(rotated, pose, image_size)
    normals = vertex_normals(vertices, triangles) @ rotation.transpose(-1, -2)
    pix_to_face = rasterize(points, depth, triangles, image_size, cull_backfaces, max_candidates)
    frags = fragments(points, triangles, pix_to_face)
    return RasterizedMesh(points, depth, normals, triangles, int(image_size), frags)


def sample_uv_map(uv_map: Tensor, uv: Tensor, frags: Fragments) -> Tensor:
    """Bilinear samples (P, C) of UV maps (B, C, H_uv, W_uv) at per-pixel texture coordinates (P, 2).

    u runs right and v up: row 0 of a map is v = 1; coordinates outside [0, 1] take the border texel.
    """
    grid = to_image(torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1).to(uv_map.dtype), frags)
    sampled = torch.nn.functional.grid_sample(
        uv_map, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False
    )  # (B, C, H, W)
    return sampled.permute(0, 2, 3, 1).reshape(-1, uv_map.shape[1]).index_select(0, frags.pixels)


def vertex_visibility(mesh: RasterizedMesh, depth_map: Tensor, pose: Tensor, tolerance: float) -> Tensor:
    """(B, N) bool: the vertex faces the camera, projects into the image and is not occluded.

    Occlusion test against the z-buffer depth at the centre of the vertex's pixel: the vertex is occluded
    when it lies behind it by more than ``tolerance`` pixel sizes (in mm) plus the depth change of its own
    surface over the up to 0.75 px between the vertex and the pixel centre (from the rotated vertex
    normal's slope, capped at 10), so steep but unoccluded surfaces stay visible while occluders (tens of
    mm nearer) still hide what is behind them. No gradients.
    """
    with torch.no_grad():
        batch, _, height, width = depth_map.shape
        pts = mesh.points.detach()
        col = torch.floor(pts[..., 0]).long()
        row = torch.floor(pts[..., 1]).long()
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        flat = row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
        zbuf = depth_map.detach().reshape(batch, -1).gather(1, flat)
        n = mesh.normals.detach()
        facing = n[..., 2] > 0
        slope = (n[..., :2].norm(dim=-1) / n[..., 2].clamp_min(1e-3)).clamp(max=10.0)
        mm_per_px = 1.0 / focal(pose.detach(), mesh.image_size)[:, None]
        tol = mm_per_px * (tolerance + 0.75 * slope)
        covered = (mesh.fragments.pix_to_face.reshape(batch, -1) >= 0).gather(1, flat)
        return inside & facing & (~covered | (mesh.depth.detach() >= zbuf - tol))


def _straight_through_clamp(x: Tensor) -> Tensor:
    return x + (x.clamp(0.0, 1.0) - x).detach()


def check_render_inputs(
    vertices: Tensor,
    albedo: Tensor | None,
    pose: Tensor,
    light: Tensor,
    triangles: Tensor,
    light_size: int,
    uv_map: Tensor | None = None,
    who: str = "render",
) -> None:
    """A ``ValueError`` starting with ``who`` for inputs `render` cannot use (shapes as `render`'s)."""
    batch, num_n = vertices.shape[0], vertices.shape[1]
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"{who}: vertices must be (B, N, 3), got {tuple(vertices.shape)}")
    if pose.shape != (batch, POSE_SIZE):
        raise ValueError(f"{who}: pose must be ({batch}, {POSE_SIZE}), got {tuple(pose.shape)}")
    if light.shape != (batch, light_size):
        raise ValueError(f"{who}: light must be ({batch}, {light_size}), got {tuple(light.shape)}")
    if uv_map is None and (albedo is None or albedo.shape != vertices.shape):
        got = None if albedo is None else tuple(albedo.shape)
        raise ValueError(f"{who}: albedo must be {tuple(vertices.shape)} (or pass uv_map), got {got}")
    if triangles.numel() and int(triangles.max()) >= num_n:
        raise ValueError(f"{who}: triangles index {int(triangles.max())} but vertices have N={num_n}")


def render(
    vertices: Tensor,
    albedo: Tensor | None,
    pose: Tensor,
    light: Tensor,
    triangles: Tensor,
    image_size: int,
    shader: Shader,
    *,
    uv_map: Tensor | None = None,
    uvs: Tensor | None = None,
    cull_backfaces: bool = True,
    max_candidates: int = 1 << 20,
    clamp: bool = True,
    antialias: bool = False,
    neighbours: Tensor | None = None,
    visibility_tolerance: float = 2.0,
    who: str = "render",
) -> RenderedMesh:
    """Render a batch of posed, lit meshes (differentiable; see the module docstring).

    Args:
        vertices: (B, N, 3) canonical vertices in mm.
        albedo: (B, N, 3) per-vertex albedo in [0, 1], or None when ``uv_map`` is given.
        pose: (B, 6) (pitch, yaw, roll, tx, ty, log_scale); see `facerep.geometry.camera`.
        light: (B, shader.light_size) light codes, read by the shader alone.
        triangles: (F, 3) long vertex indices, counter-clockwise seen from +z.
        image_size: side of the square output images in pixels.
        shader: the `Shader` (e.g. `facerep.geometry.sh.SHShader()`).
        uv_map: optional (B, 3, H_uv, W_uv) albedo texture sampled bilinearly at the blended ``uvs``
            (row 0 is v = 1); replaces ``albedo``.
        uvs: (B, N, 2) texture coordinates in [0, 1]; required with ``uv_map``.
        cull_backfaces, max_candidates: as `rasterize_mesh`'s.
        clamp: clamp colours to [0, 1] in the forward pass with a straight-through (identity) gradient.
        antialias: blend colours and coverage across silhouettes with a one-pixel ramp (gives them
            gradients); needs ``neighbours`` ((F, 3) long, `facerep.geometry.rasterize.triangle_neighbours`).
        visibility_tolerance: pixel sizes behind the front-most surface a vertex may lie and still count
            as visible; also the occlusion tolerance of the antialiasing.
        who: the name error messages start with.
    """
    check_render_inputs(vertices, albedo, pose, light, triangles, shader.light_size, uv_map, who)
    mesh = rasterize_mesh(vertices, pose, triangles, image_size, cull_backfaces, max_candidates)
    frags = mesh.fragments
    # Deferred shading: one gather + blend for the shader's values, the depth and the surface.
    shader_values = shader.vertex_attributes(mesh, light)
    channels = shader_values.shape[-1]
    if uv_map is not None and (uvs is None or uvs.shape != (*vertices.shape[:2], 2)):
        got = None if uvs is None else tuple(uvs.shape)
        raise ValueError(f"{who}: uv_map needs uvs {(*vertices.shape[:2], 2)}, got {got}")
    surface_values = albedo.to(vertices.dtype) if uv_map is None else uvs.to(vertices.dtype)
    values = interpolate(torch.cat([shader_values, mesh.depth[..., None], surface_values], -1), frags)
    attributes = values[:, :channels]
    depth_px = values[:, channels : channels + 1]
    surface = values[:, channels + 1 :]
    if uv_map is not None:
        surface = sample_uv_map(uv_map, surface, frags)
    colour = shader.shade(attributes, surface, mesh, light)
    if clamp:
        colour = _straight_through_clamp(colour)

    image = to_image(colour, frags)
    mask = (frags.pix_to_face >= 0)[:, None].to(vertices.dtype)
    depth_map = to_image(depth_px, frags)  # (B, 1, H, W), 0 where uncovered
    if antialias:
        if neighbours is None:
            raise ValueError(f"{who}: antialias needs the triangles' neighbours (triangle_neighbours)")
        tol = visibility_tolerance / focal(pose.detach(), image_size)
        image, mask = antialias_silhouettes(
            image,
            mask,
            depth_map,
            mesh.points,
            mesh.depth,
            triangles,
            neighbours,
            frags.pix_to_face,
            occlusion_tolerance=tol,
        )
    visibility = vertex_visibility(mesh, depth_map, pose, visibility_tolerance)
    return RenderedMesh(image=image, mask=mask, depth_map=depth_map, visibility=visibility, mesh=mesh)


__all__ = [
    "RasterizedMesh",
    "RenderedMesh",
    "Shader",
    "check_render_inputs",
    "rasterize_mesh",
    "render",
    "sample_uv_map",
    "vertex_visibility",
]
