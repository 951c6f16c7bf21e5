"""Writing reconstructed faces: meshes (OBJ with vertex colours, OBJ with a UV albedo texture, PLY),
UV albedo textures, images and overlays.

Every writer here goes through `facerep.common.safe_write`: a file is written to a temporary file in its
folder and renamed into place, so a full disk or a read-only folder leaves no half-written file (and raises
one `WriteError` naming the file), and `write_meshes` writes a mesh's files all or none.

Frames of the written meshes (millimetres):

- **canonical**: the decoder's output, x to the subject's left, y up, z towards the camera;
- **posed**: the canonical mesh rotated by the pose code and shifted by its image translation, in the
  camera's frame: with ``f = exp(log_scale) * W / 200`` px/mm, a posed vertex (x, y, z) projects to pixel
  ``(W/2 + f x, H/2 - f y)`` of the network's crop (depth z, larger = nearer), i.e. the weak-perspective
  camera of `facerep.geometry.camera` without its scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from facerep.common.safe_write import all_or_nothing, inside, output_folder, write_atomic
from facerep.core.interfaces import FaceModel
from facerep.geometry import mesh_io
from facerep.geometry.camera import REFERENCE_SPAN_MM, rotate


def posed_vertices(vertices: Tensor, pose: Tensor, image_size: int) -> Tensor:
    """(B, N, 3) canonical mm, (B, 6) pose -> (B, N, 3) posed mm (camera frame, see module docstring)."""
    rotated = rotate(vertices, pose)
    f = torch.exp(pose[:, 5]) * image_size / REFERENCE_SPAN_MM  # px per mm
    shift = torch.stack([pose[:, 3] * image_size / f, -pose[:, 4] * image_size / f, torch.zeros_like(f)], -1)
    return rotated + shift[:, None, :]


def bake_uv_texture(face_model: FaceModel, albedo: Tensor, size: int = 256, fill: bool = True) -> np.ndarray:
    """Rasterise per-vertex albedo (N, 3) into the face model's UV layout: (size, size, 3) in [0, 1].

    Row 0 is the top of the texture (v = 1), as OBJ viewers expect. Texels outside every UV triangle
    take the colour of the nearest covered texel when `fill` (no dark seams under bilinear filtering).
    """
    from facerep.geometry.rasterize import fragments, interpolate, rasterize, to_image

    uv = torch.as_tensor(np.asarray(face_model.uv), dtype=torch.float32)
    points = torch.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], -1)[None]
    triangles = torch.as_tensor(np.asarray(face_model.triangles), dtype=torch.long)
    pix = rasterize(points, torch.zeros(1, uv.shape[0]), triangles, size, cull_backfaces=False)
    frags = fragments(points, triangles, pix)
    colour = albedo.detach().float().cpu().reshape(1, -1, 3)
    image = to_image(interpolate(colour, frags), frags)[0].permute(1, 2, 0).numpy()
    covered = pix[0].numpy() >= 0
    if fill and covered.any() and not covered.all():
        from scipy.ndimage import distance_transform_edt

        _, (iy, ix) = distance_transform_edt(~covered, return_indices=True)
        image = image[iy, ix]
    return np.clip(image, 0.0, 1.0)


def uv_map_texture(uv_map: Tensor) -> np.ndarray:
    """A decoder's UV albedo map (3, S, S), row 0 = top (v = 1) -> (S, S, 3) in [0, 1]."""
    return uv_map.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def resample_uv_map(uv_map: Tensor, size: int) -> Tensor:
    """A UV map (C, S, S) resampled to (C, size, size) (returned as it is when S == size).

    Bilinear, with ``align_corners=False``: texel edges map to texel edges, so a texture coordinate u (v)
    falls on the same point of the face at any size, as the U-Net decoder's ``grid_sample`` reads its map
    (``align_corners=False``). Shrinking is antialiased (each texel averages the texels it covers).
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"a UV map's size must be positive, got {size}")
    if uv_map.shape[-2:] == (size, size):
        return uv_map
    return F.interpolate(
        uv_map[None].float(),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=size < uv_map.shape[-1],
    )[0]


def to_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) tensor or (H, W, 3) array in [0, 1] -> (H, W, 3) uint8 (a uint8 array is returned as is)."""
    if isinstance(image, Tensor):
        image = image.detach().float().cpu().permute(1, 2, 0).numpy()
    elif image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(
    path: str | Path, image: Tensor | np.ndarray | Image.Image, alpha: Tensor | None = None
) -> Path:
    """Write a (3, H, W) / (H, W, 3) image in [0, 1] (or (H, W, 3) uint8, or a PIL image) as PNG,
    atomically; RGBA when an alpha (1, H, W) in [0, 1] is given. The folder must exist
    (`facerep.common.safe_write.output_folder` makes it)."""
    if isinstance(image, Image.Image):
        picture = image
    else:
        rgb = to_uint8(image)
        if alpha is not None:
            a = (alpha.detach().float().cpu()[0].clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
            picture = Image.fromarray(np.dstack([rgb, a]), mode="RGBA")
        else:
            picture = Image.fromarray(rgb)
    return write_atomic(Path(path), lambda fh: picture.save(fh, format="PNG"))


def save_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """Write named arrays (tensors are detached to numpy) as an uncompressed ``.npz``, atomically."""
    plain = {
        k: (v.detach().cpu().numpy() if isinstance(v, Tensor) else np.asarray(v)) for k, v in arrays.items()
    }
    return write_atomic(Path(path), lambda fh: np.savez(fh, **plain))


def composite(background: Tensor, image: Tensor, mask: Tensor, opacity: float = 1.0) -> Tensor:
    """(3, H, W) rendering over (3, H, W) background where (1, H, W) mask covers it."""
    m = mask.float().clamp(0, 1) * float(opacity)
    return background * (1 - m) + image * m


def overlay_on_photo(
    photo: Image.Image, box: tuple[float, float, float], image: Tensor, mask: Tensor, opacity: float = 0.85
) -> Image.Image:
    """Paste a rendering of the crop `box` (x0, y0, side) back into the full photo, blended by its mask."""
    x0, y0, side = box
    side_px = max(1, round(side))
    render = Image.fromarray(to_uint8(image)).resize((side_px, side_px), Image.BILINEAR)
    alpha = (mask.detach().float().cpu()[0].clamp(0, 1).numpy() * 255.0 * opacity + 0.5).astype(np.uint8)
    alpha_img = Image.fromarray(alpha, mode="L").resize((side_px, side_px), Image.BILINEAR)
    out = photo.copy() if photo.mode == "RGB" else photo.convert("RGB")  # one full-size copy, not two
    out.paste(render, (round(x0), round(y0)), alpha_img)
    return out


def write_meshes(
    folder: Path,
    stem: str,
    vertices: Tensor | np.ndarray,
    face_model: FaceModel,
    albedo: Tensor | np.ndarray,
    texture: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write ``STEM.obj`` (vertex colours), ``STEM.ply`` (vertex colours, binary) and, when `texture`
    (H, W, 3) is given, ``STEM_textured.obj`` + ``.mtl`` + ``.png`` (UV albedo texture): all of them or,
    on an error, none. `folder` is created; a `stem` that would leave it (``..``, a path) is a `WriteError`.

    Returns the written paths (inside `folder` resolved) by role (obj, ply, textured_obj, mtl, texture).
    """
    v = vertices.detach().cpu().numpy() if isinstance(vertices, Tensor) else np.asarray(vertices)
    colours = albedo.detach().cpu().numpy() if isinstance(albedo, Tensor) else np.asarray(albedo)
    triangles = np.asarray(face_model.triangles)
    with all_or_nothing():
        folder = output_folder(folder)
        names = [f"{stem}.obj", f"{stem}.ply"] + ([f"{stem}_textured.obj"] if texture is not None else [])
        obj, ply, *textured = [inside(folder, name) for name in names]
        written = {
            "obj": mesh_io.write_obj(obj, v, triangles, colors=colours),
            "ply": mesh_io.write_ply(ply, v, triangles, colors=colours, binary=True),
        }
        if textured:
            path = textured[0]
            mesh_io.write_obj(path, v, triangles, uv=np.asarray(face_model.uv), texture=texture)
            written.update(textured_obj=path, mtl=path.with_suffix(".mtl"), texture=path.with_suffix(".png"))
    return written
