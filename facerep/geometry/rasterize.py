"""A vectorised z-buffer rasteriser in pure PyTorch, split into a discrete and a differentiable half.

1. `rasterize` (no gradients) finds, for every pixel centre (i + 0.5, j + 0.5), the front-most
   triangle covering it. Each triangle's bounding box of pixel centres is enumerated exactly (one
   candidate per (triangle, pixel centre) pair, built with ``repeat_interleave``, no Python loop over
   triangles or pixels); candidates are processed in chunks of at most ``max_candidates`` pairs to
   bound memory, tested with barycentric coordinates, and reduced into a z-buffer with one
   ``scatter_reduce(amax)`` per chunk on a 64-bit key packing (depth, triangle id) — so the result is
   deterministic and ties (equal depth) go to the larger triangle id.
2. `fragments` recomputes, differentiably from the projected 2D vertex positions, the barycentric
   coordinates of every covered pixel centre in its triangle; `interpolate` blends per-vertex
   attributes with them. Gradients therefore reach vertex positions (through the barycentrics),
   attributes, and everything upstream of them, but NOT the discrete choice of triangle per pixel:
   coverage and occlusion boundaries have no gradient (see `facerep.geometry.rasterize_antialias`
   for the optional remedy at silhouettes).

Image-space conventions are those of `facerep.geometry.camera`: points in pixels, x right, y down,
origin at the top-left corner of the image; depth larger = nearer the camera. Triangles are
counter-clockwise seen from +z (x right, y up), hence clockwise in pixel coordinates (y down): a
front-facing triangle has a negative signed pixel area ``(b - a) x (c - a)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Empty z-buffer key.
_EMPTY = torch.iinfo(torch.int64).min


def _cross(ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor) -> Tensor:
    return ax * by - ay * bx


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])


def signed_areas(points: Tensor, triangles: Tensor) -> Tensor:
    """Twice the signed pixel-space area of each triangle: (B, N, 2), (F, 3) -> (B, F).

    Negative for triangles that face the camera (counter-clockwise from +z, y flipped in the image).
    """
    a, b, c = points[:, triangles[:, 0]], points[:, triangles[:, 1]], points[:, triangles[:, 2]]
    return _cross(b[..., 0] - a[..., 0], b[..., 1] - a[..., 1], c[..., 0] - a[..., 0], c[..., 1] - a[..., 1])


def _depth_keys(depth: Tensor, ids: Tensor) -> Tensor:
    """Order-preserving int64 keys: float32 depth in the high 32 bits, non-negative id in the low 32."""
    bits = depth.to(torch.float32).contiguous().view(torch.int32)
    sortable = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
    return (sortable.to(torch.int64) << 32) + ids


@torch.no_grad()
def rasterize(
    points: Tensor,
    depth: Tensor,
    triangles: Tensor,
    image_size: int | tuple[int, int],
    cull_backfaces: bool = True,
    max_candidates: int = 1 << 20,
) -> Tensor:
    """Front-most triangle at every pixel centre (no gradients).

    Args:
        points: (B, N, 2) projected vertices in pixels.
        depth: (B, N) vertex depth in mm (larger = nearer).
        triangles: (F, 3) long vertex indices, counter-clockwise seen from +z.
        image_size: square side in pixels, or (H, W).
        cull_backfaces: drop triangles facing away from the camera (and degenerate ones); when False,
            both orientations are rasterised (only degenerate triangles are dropped).
        max_candidates: most (triangle, pixel centre) pairs tested at once (memory bound: about
            150 bytes each).

    Returns:
        (B, H, W) long triangle index per pixel (into ``triangles``), -1 where no triangle covers the
        pixel centre.
    """
    height, width = _size_hw(image_size)
    batch, _, _ = points.shape
    num_f = triangles.shape[0]
    device = points.device
    if batch * num_f >= 2**31:
        raise ValueError(f"rasterize supports at most 2^31 triangles per call, got {batch} x {num_f}")
    dtype = torch.float64 if points.dtype == torch.float64 else torch.float32
    p = points.detach().to(dtype)
    z = depth.detach().to(dtype)
    tri = triangles.to(device=device, dtype=torch.long)

    # Per-triangle corners (B*F, 3, 2), depths (B*F, 3) and doubled signed area.
    flat_tri = tri.reshape(-1)
    corners = p.index_select(1, flat_tri).reshape(batch * num_f, 3, 2)
    zs = z.index_select(1, flat_tri).reshape(batch * num_f, 3)
    a, b, c = corners.unbind(1)
    area = _cross(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1], c[:, 0] - a[:, 0], c[:, 1] - a[:, 1])
    valid = area < 0 if cull_backfaces else area != 0
    finite = torch.isfinite(p).all(-1) & torch.isfinite(z)  # (B, N); NaN areas already fail above
    valid &= finite.index_select(1, flat_tri).reshape(batch * num_f, 3).all(-1)

    # Bounding boxes in pixel-centre indices: centre i + 0.5 inside [min, max].
    lo = torch.minimum(torch.minimum(a, b), c)
    hi = torch.maximum(torch.maximum(a, b), c)
    ix0 = torch.ceil(lo[:, 0] - 0.5).clamp(min=0)
    iy0 = torch.ceil(lo[:, 1] - 0.5).clamp(min=0)
    ix1 = torch.floor(hi[:, 0] - 0.5).clamp(max=width - 1)
    iy1 = torch.floor(hi[:, 1] - 0.5).clamp(max=height - 1)
    valid &= (ix1 >= ix0) & (iy1 >= iy0)
    sel = valid.nonzero().squeeze(1)

    keys = torch.full((batch * height * width,), _EMPTY, dtype=torch.int64, device=device)
    if sel.numel() > 0:
        x0, y0 = ix0[sel], iy0[sel]
        bw = (ix1[sel] - x0).long() + 1
        counts = bw * ((iy1[sel] - y0).long() + 1)
        coef = _plane_coefficients(corners[sel], zs[sel], area[sel], x0 + 0.5, y0 + 0.5)
        base = torch.div(sel, num_f, rounding_mode="floor") * (height * width) + y0.long() * width + x0.long()
        ends_cpu = counts.cumsum(0).cpu()
        start = 0
        num_sel = sel.numel()
        while start < num_sel:
            done = int(ends_cpu[start - 1]) if start > 0 else 0
            stop = int(torch.searchsorted(ends_cpu, done + max_candidates, right=True))
            stop = min(max(stop, start + 1), num_sel)
            part = slice(start, stop)
            total = int(ends_cpu[stop - 1]) - done
            _rasterize_chunk(keys, sel[part], base[part], bw[part], counts[part], total, coef[part], width)
            start = stop
    hit = keys != _EMPTY
    face = torch.where(hit, (keys & 0xFFFFFFFF) % num_f, torch.full_like(keys, -1))
    return face.reshape(batch, height, width)


def _plane_coefficients(corners: Tensor, zs: Tensor, area: Tensor, ox: Tensor, oy: Tensor) -> Tensor:
    """Affine edge functions and depth over each triangle, in coordinates relative to (ox, oy).

    The edge functions are the unnormalised barycentrics ``E_k = w_k |area|`` (non-negative inside),
    computed without division so that pixel centres exactly on an edge are classified exactly for
    simple coordinates; the local origin keeps the constants small.

    Args:
        corners: (T, 3, 2) pixels; zs: (T, 3) depths; area: (T,) doubled signed area; ox, oy: (T,)
            local origins (the first pixel centre of each bounding box).

    Returns:
        (T, 4, 3): for E0, E1, E2 and depth, (q_x, q_y, q_0) with q(x, y) = q_x x + q_y y + q_0 for local
        x, y.
    """
    ax, ay = corners[:, 0, 0] - ox, corners[:, 0, 1] - oy
    bx, by = corners[:, 1, 0] - ox, corners[:, 1, 1] - oy
    cx, cy = corners[:, 2, 0] - ox, corners[:, 2, 1] - oy
    sign = torch.sign(area)[:, None]
    e0 = torch.stack([by - cy, cx - bx, bx * cy - by * cx], -1) * sign
    e1 = torch.stack([cy - ay, ax - cx, cx * ay - cy * ax], -1) * sign
    e2 = -e0 - e1
    e2[:, 2] += area.abs()
    depth = (e0 * zs[:, 0:1] + e1 * zs[:, 1:2] + e2 * zs[:, 2:3]) / area.abs()[:, None]
    return torch.stack([e0, e1, e2, depth], 1)


def _rasterize_chunk(
    keys: Tensor,
    gid: Tensor,
    base: Tensor,
    bw: Tensor,
    counts: Tensor,
    total: int,
    coef: Tensor,
    width: int,
) -> None:
    """Test one chunk of (triangle, pixel centre) candidates and reduce them into ``keys``.

    Args:
        keys: (B*H*W,) int64 z-buffer keys, updated in place.
        gid: (T,) global triangle ids ``b * F + f``; base: (T,) flat pixel index of each bounding box's
            first pixel; bw: (T,) box widths; counts: (T,) box sizes; total: counts.sum();
        coef: (T, 4, 3) from `_plane_coefficients`; width: image width.
    """
    device = keys.device
    local_tri = torch.repeat_interleave(torch.arange(gid.numel(), device=device), counts, output_size=total)
    first = counts.cumsum(0) - counts
    offset = torch.arange(total, device=device) - first.index_select(0, local_tri)
    w = bw.index_select(0, local_tri)
    oy = torch.div(offset, w, rounding_mode="floor")
    ox = offset - oy * w
    cf = coef.reshape(-1, 12).index_select(0, local_tri)
    fx, fy = ox.to(cf.dtype), oy.to(cf.dtype)
    inside = (cf[:, 0] * fx + cf[:, 1] * fy + cf[:, 2]) >= 0
    inside &= (cf[:, 3] * fx + cf[:, 4] * fy + cf[:, 5]) >= 0
    inside &= (cf[:, 6] * fx + cf[:, 7] * fy + cf[:, 8]) >= 0
    hit = inside.nonzero().squeeze(1)
    if hit.numel() == 0:
        return
    cf, fx, fy = cf[hit], fx[hit], fy[hit]
    zc = cf[:, 9] * fx + cf[:, 10] * fy + cf[:, 11]
    local = local_tri[hit]
    pix = base.index_select(0, local) + oy[hit] * width + ox[hit]
    keys.scatter_reduce_(0, pix, _depth_keys(zc, gid.index_select(0, local)), reduce="amax")


@dataclass
class Fragments:
    """Per-pixel samples of a rasterised batch, in flat form (P samples).

    Attributes:
        pix_to_face: (B, H, W) long triangle index, -1 where uncovered (from `rasterize`).
        pixels: (P,) long flat pixel index ``b * H * W + y * W + x`` of each sample.
        batch: (P,) long batch row of each sample.
        faces: (P,) long triangle index of each sample.
        vertex_index: (P, 3) long flat vertex index ``b * N + v`` of the sample's triangle corners.
        bary: (P, 3) barycentric coordinates of the pixel centre (differentiable w.r.t. the points).
        area2: (P,) twice the signed pixel area of the sample's triangle (differentiable).
        corners: (P, 3, 2) the triangle's corners in pixels (differentiable).
    """

    pix_to_face: Tensor
    pixels: Tensor
    batch: Tensor
    faces: Tensor
    vertex_index: Tensor
    bary: Tensor
    area2: Tensor
    corners: Tensor


def fragments(points: Tensor, triangles: Tensor, pix_to_face: Tensor) -> Fragments:
    """Differentiable barycentrics of every covered pixel centre.

    Args:
        points: (B, N, 2) projected vertices in pixels (gradients flow into them).
        triangles: (F, 3) long.
        pix_to_face: (B, H, W) from `rasterize`.

    Returns:
        `Fragments` with P = covered pixels, sorted by flat pixel index.
    """
    batch, height, width = pix_to_face.shape
    num_n = points.shape[1]
    tri = triangles.to(device=points.device, dtype=torch.long)
    flat = pix_to_face.reshape(-1)
    pixels = (flat >= 0).nonzero().squeeze(1)
    faces = flat[pixels]
    hw = height * width
    rows = torch.div(pixels, hw, rounding_mode="floor")
    within = pixels - rows * hw
    cy = torch.div(within, width, rounding_mode="floor").to(points.dtype) + 0.5
    cx = (within % width).to(points.dtype) + 0.5
    vertex_index = rows[:, None] * num_n + tri[faces]
    corners = points.reshape(-1, 2).index_select(0, vertex_index.reshape(-1)).reshape(-1, 3, 2)  # (P, 3, 2)
    a, b, c = corners.unbind(1)
    area = _cross(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1], c[:, 0] - a[:, 0], c[:, 1] - a[:, 1])
    w0 = _cross(b[:, 0] - cx, b[:, 1] - cy, c[:, 0] - cx, c[:, 1] - cy) / area
    w1 = _cross(c[:, 0] - cx, c[:, 1] - cy, a[:, 0] - cx, a[:, 1] - cy) / area
    bary = torch.stack([w0, w1, 1.0 - w0 - w1], -1)
    return Fragments(pix_to_face, pixels, rows, faces, vertex_index, bary, area, corners)


def interpolate(attributes: Tensor, frags: Fragments) -> Tensor:
    """Blend per-vertex attributes at the samples: (B, N, C) -> (P, C) (differentiable)."""
    channels = attributes.shape[-1]
    flat = attributes.reshape(-1, channels)
    v0, v1, v2 = flat.index_select(0, frags.vertex_index.reshape(-1)).reshape(-1, 3, channels).unbind(1)
    w0, w1, w2 = frags.bary.to(flat.dtype).unbind(1)
    return v0 * w0[:, None] + v1 * w1[:, None] + v2 * w2[:, None]


def to_image(values: Tensor, frags: Fragments, background: float = 0.0) -> Tensor:
    """Scatter per-sample values (P, C) into images (B, C, H, W) (differentiable w.r.t. ``values``)."""
    batch, height, width = frags.pix_to_face.shape
    channels = values.shape[-1]
    out = values.new_full((batch * height * width, channels), background)
    out = out.index_put((frags.pixels,), values)
    return out.reshape(batch, height, width, channels).permute(0, 3, 1, 2)


def triangle_neighbours(triangles: np.ndarray) -> np.ndarray:
    """Triangle across each edge: (F, 3) -> (F, 3) long, -1 on the mesh boundary.

    Edge k of a triangle joins corners k+1 and k+2 (it is opposite corner k).
    """
    tri = np.asarray(triangles, dtype=np.int64)
    num_f = tri.shape[0]
    i = tri[:, [1, 2, 0]].reshape(-1)
    j = tri[:, [2, 0, 1]].reshape(-1)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * (int(tri.max()) + 1 if tri.size else 1) + hi
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    out = np.full(num_f * 3, -1, dtype=np.int64)
    first, second = order[:-1][same], order[1:][same]
    out[first] = second // 3
    out[second] = first // 3
    return out.reshape(num_f, 3)


__all__ = [
    "Fragments",
    "fragments",
    "interpolate",
    "rasterize",
    "signed_areas",
    "to_image",
    "triangle_neighbours",
]
