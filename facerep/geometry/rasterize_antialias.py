"""Analytic silhouette anti-aliasing with gradients (in the spirit of nvdiffrast's ``antialias``).

The hard z-buffer image is piecewise constant in the triangle choice, so it has no gradient with
respect to where silhouettes lie. This pass finds every pair of 4-adjacent pixels (p, q) across a
silhouette: p is covered and q is either background or a surface behind p's triangle. Starting in p's
triangle it walks along the segment between the two pixel centres, across front-facing neighbours
(at most ``steps`` triangles), to the silhouette edge (an edge on the mesh boundary or shared with a
back-facing triangle) that the segment crosses, at fraction ``s`` from p's centre (0..1). With a
one-pixel linear ramp centred on the crossing:

- ``s > 1/2``: the surface reaches into q: q's colour moves towards p's by ``(s - 1/2)``;
- ``s < 1/2``: the surface ends before p's centre: p's colour moves towards q's by ``(1/2 - s)``;

and background coverage (the mask) changes by the same amounts. ``s`` is computed differentiably
from the two silhouette-edge vertices, so image losses move silhouettes. Each pair's contribution is
weighted by how much the edge faces the pair's axis (``|n_x| / (|n_x| + |n_y|)`` for horizontal
pairs), which makes the soft coverage area's derivative equal to the silhouette length times the
normal displacement (the derivative of the true area).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _bary(corners: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Barycentrics (M, 3) of points (px, py) (M,) in triangles (M, 3, 2) (possibly negative)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    area = torch.where(area.abs() > 1e-20, area, torch.full_like(area, 1e-20))
    w0 = ((b[:, 0] - px) * (c[:, 1] - py) - (b[:, 1] - py) * (c[:, 0] - px)) / area
    w1 = ((c[:, 0] - px) * (a[:, 1] - py) - (c[:, 1] - py) * (a[:, 0] - px)) / area
    return torch.stack([w0, w1, 1 - w0 - w1], -1)


def antialias(
    image: Tensor,
    mask: Tensor,
    depth_map: Tensor,
    points: Tensor,
    depth: Tensor,
    triangles: Tensor,
    neighbours: Tensor,
    pix_to_face: Tensor,
    occlusion_tolerance: Tensor | float = 1.0,
    steps: int = 64,
) -> tuple[Tensor, Tensor]:
    """Blend colours and coverage across silhouettes (differentiable w.r.t. ``image`` and ``points``).

    Args:
        image: (B, C, H, W) hard rendering (background already in place).
        mask: (B, 1, H, W) hard coverage in {0, 1}.
        depth_map: (B, 1, H, W) front-most depth (mm), used to detect occlusion boundaries.
        points: (B, N, 2) projected vertices, pixels (gradients flow into them).
        depth: (B, N) vertex depth, mm.
        triangles: (F, 3) long; neighbours: (F, 3) long triangle across edge k (opposite corner k), -1
            on the boundary (`facerep.geometry.rasterize.triangle_neighbours`).
        pix_to_face: (B, H, W) from `facerep.geometry.rasterize.rasterize`.
        occlusion_tolerance: (B,) or scalar, mm by which p's surface must lie in front of q's for an
            occlusion boundary.
        steps: most triangles walked from p's triangle to the silhouette edge (near a rim, seen
            edge-on, one pixel can span dozens of thin triangles; the walk stops when all pairs are done).

    Returns:
        (image (B, C, H, W), mask (B, 1, H, W) in [0, 1]).
    """
    batch, height, width = pix_to_face.shape
    num_n = points.shape[1]
    hw = height * width
    device = points.device
    tri = triangles
    channels = image.shape[1]
    with torch.no_grad():
        flat = pix_to_face.reshape(-1)
        covered = flat >= 0
        zflat = depth_map.detach().reshape(-1)
        pts = points.detach()
        zv = depth.detach().reshape(-1)
        front = torch.zeros(batch, tri.shape[0] + 1, dtype=torch.bool, device=device)
        a, b, c = pts[:, tri[:, 0]], pts[:, tri[:, 1]], pts[:, tri[:, 2]]
        area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
            c[..., 0] - a[..., 0]
        )
        front[:, :-1] = area < 0
        tol = torch.as_tensor(occlusion_tolerance, dtype=zflat.dtype, device=device).reshape(-1)
        tol = tol.expand(batch) if tol.numel() == 1 else tol
        index = torch.arange(batch * hw, device=device)
        xs = index % width
        ys = torch.div(index, width, rounding_mode="floor") % height
        ps, qs, axes = [], [], []
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ok = covered & (xs + dx >= 0) & (xs + dx < width) & (ys + dy >= 0) & (ys + dy < height)
            p = index[ok]
            ps.append(p)
            qs.append(p + dy * width + dx)
            axes.append(torch.full_like(p, 0 if dy == 0 else 1))
        p = torch.cat(ps)
        q = torch.cat(qs)
        axis = torch.cat(axes)
        p_face, q_face = flat[p], flat[q]
        rows = torch.div(p, hw, rounding_mode="floor")
        # Candidates: q is background, or q's surface is clearly behind p's (a depth step between the
        # two pixel centres); the plane test below then separates occlusions from steep surfaces.
        keep = (q_face < 0) | ((q_face != p_face) & (zflat[p] - zflat[q] > tol[rows]))
        p, q, axis, p_face, q_face, rows = (
            p[keep],
            q[keep],
            axis[keep],
            p_face[keep],
            q_face[keep],
            rows[keep],
        )
        cpx = (p % width).to(pts.dtype) + 0.5
        cpy = (torch.div(p, width, rounding_mode="floor") % height).to(pts.dtype) + 0.5
        cqx = (q % width).to(pts.dtype) + 0.5
        cqy = (torch.div(q, width, rounding_mode="floor") % height).to(pts.dtype) + 0.5
        # Occlusion boundaries: p's triangle plane at q's centre lies in front of q's surface.
        vid = rows[:, None] * num_n + tri[p_face]
        wq = _bary(pts.reshape(-1, 2)[vid], cqx, cqy)
        plane_q = (wq * zv[vid]).sum(-1)
        boundary = (q_face < 0) | (plane_q > zflat[q] + tol[rows])
        sel = boundary.nonzero().squeeze(1)
        p, q, axis, rows = p[sel], q[sel], axis[sel], rows[sel]
        cpx, cpy, cqx, cqy = cpx[sel], cpy[sel], cqx[sel], cqy[sel]
        face = p_face[sel]
        active = torch.ones_like(p, dtype=torch.bool)
        found = torch.zeros_like(active)
        edge = torch.zeros_like(p)
        for _ in range(steps):
            vid = rows[:, None] * num_n + tri[face]
            corners = pts.reshape(-1, 2)[vid]
            wp = _bary(corners, cpx, cpy)
            wq = _bary(corners, cqx, cqy)
            decreasing = wq < wp
            s_k = torch.where(decreasing, wp / (wp - wq).clamp_min(1e-20), torch.full_like(wp, torch.inf))
            s_exit, k = s_k.min(-1)
            exits = s_exit <= 1.0
            nb = neighbours[face, k]
            silhouette = exits & ((nb < 0) | ~front[rows, nb.clamp_min(0)])
            hit = active & silhouette
            found |= hit
            edge = torch.where(hit, k, edge)
            active = active & exits & ~silhouette & (nb >= 0)
            face = torch.where(active, nb, face)
            if not bool(active.any()):
                break
        sel = found.nonzero().squeeze(1)
        p, q, axis, rows, face, edge = p[sel], q[sel], axis[sel], rows[sel], face[sel], edge[sel]
        cpx, cpy, cqx, cqy = cpx[sel], cpy[sel], cqx[sel], cqy[sel]
        i = tri[face, (edge + 1) % 3] + rows * num_n
        j = tri[face, (edge + 2) % 3] + rows * num_n
        covered_q = covered[q].to(image.dtype)

    # Differentiable crossing of the segment p -> q (unit step along `axis`) with the edge line (i, j).
    pi = points.reshape(-1, 2)[i]
    pj = points.reshape(-1, 2)[j]
    ex, ey = pj[:, 0] - pi[:, 0], pj[:, 1] - pi[:, 1]
    rx, ry = pi[:, 0] - cpx, pi[:, 1] - cpy
    horizontal = axis == 0
    ux, uy = cqx - cpx, cqy - cpy  # the unit step from p to q
    denom = ux * ey - uy * ex
    denom = torch.where(denom.abs() > 1e-12, denom, torch.full_like(denom, 1e-12))
    s = (rx * ey - ry * ex) / denom
    with torch.no_grad():
        weight = torch.where(horizontal, ey.abs(), ex.abs()) / (ex.abs() + ey.abs()).clamp_min(1e-12)
    out_amount = (s - 0.5).clamp(0.0, 0.5) * weight
    in_amount = (0.5 - s).clamp(0.0, 0.5) * weight

    img = image.permute(0, 2, 3, 1).reshape(-1, channels)
    colour_p, colour_q = img[p], img[q]
    img = img.index_add(0, q, out_amount[:, None] * (colour_p - colour_q))
    img = img.index_add(0, p, in_amount[:, None] * (colour_q - colour_p))
    m = mask.reshape(-1)
    m = m.index_add(0, q, out_amount * (1 - covered_q)).index_add(0, p, -in_amount * (1 - covered_q))
    image_out = img.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
    return image_out, m.clamp(0.0, 1.0).reshape(batch, 1, height, width)


__all__ = ["antialias"]
