"""A naive per-triangle-loop z-buffer rasteriser: the correctness and speed reference of `rasterize`.

Deliberately simple (one Python iteration per triangle and batch row); only for tests and benchmarks.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def rasterize_reference(
    points: Tensor, depth: Tensor, triangles: Tensor, image_size: int, cull_backfaces: bool = True
) -> Tensor:
    """Same contract as `facerep.geometry.rasterize.rasterize` (square images): (B, H, W) triangle ids.

    Ties in depth go to the larger triangle index, as in the vectorised rasteriser.
    """
    batch = points.shape[0]
    size = int(image_size)
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    out = torch.full((batch, size, size), -1, dtype=torch.long)
    zbuf = torch.full((batch, size, size), -torch.inf, dtype=torch.float32)
    tri = triangles.long().cpu()
    pts = points.detach().double().cpu()
    dep = depth.detach().double().cpu()
    for b in range(batch):
        for f in range(tri.shape[0]):
            (ax, ay), (bx, by), (cx, cy) = pts[b, tri[f]].tolist()
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if area == 0 or (cull_backfaces and area > 0):
                continue
            x0 = max(0, int(torch.ceil(torch.tensor(min(ax, bx, cx) - 0.5))))
            x1 = min(size - 1, int(torch.floor(torch.tensor(max(ax, bx, cx) - 0.5))))
            y0 = max(0, int(torch.ceil(torch.tensor(min(ay, by, cy) - 0.5))))
            y1 = min(size - 1, int(torch.floor(torch.tensor(max(ay, by, cy) - 0.5))))
            if x1 < x0 or y1 < y0:
                continue
            px = centres[x0 : x1 + 1][None, :]
            py = centres[y0 : y1 + 1][:, None]
            w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
            w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
            w2 = 1 - w0 - w1
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            za, zb, zc = dep[b, tri[f]].tolist()
            z = (w0 * za + w1 * zb + w2 * zc).float()
            window = zbuf[b, y0 : y1 + 1, x0 : x1 + 1]
            win = inside & (z >= window)
            window[win] = z[win]
            out[b, y0 : y1 + 1, x0 : x1 + 1][win] = f
    return out


__all__ = ["rasterize_reference"]
