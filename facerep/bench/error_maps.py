"""Per-vertex error maps (like the paper's Figure 3), drawn with Pillow only.

Each map shows aligned predictions seen from the front (orthographic, +z towards the viewer), one
panel per method, each triangle filled with the colour of its vertices' mean point-to-plane error
(0 mm blue to `vmax` mm red, a turbo-like ramp) and lightly shaded by its normal; vertices outside
the crop sphere (no error) are grey. A colour bar with its scale in mm sits on the right.
`write_error_maps` writes a subject's maps: one per protocol and condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Control points of the colour ramp (value in [0, 1] -> RGB in [0, 1]).
_RAMP = np.array(
    [
        [0.00, 0.19, 0.07, 0.23],
        [0.15, 0.16, 0.44, 0.92],
        [0.35, 0.10, 0.80, 0.85],
        [0.50, 0.35, 0.95, 0.45],
        [0.65, 0.80, 0.90, 0.20],
        [0.82, 0.98, 0.55, 0.10],
        [1.00, 0.60, 0.05, 0.02],
    ]
)
NO_VALUE_RGB = np.array([0.75, 0.75, 0.75])


def colour_ramp(values: np.ndarray, vmax: float) -> np.ndarray:
    """(M,) errors in mm -> (M, 3) RGB in [0, 1]; NaN -> grey."""
    v = np.asarray(values, dtype=np.float64)
    t = np.clip(np.nan_to_num(v, nan=0.0) / max(vmax, 1e-9), 0.0, 1.0)
    rgb = np.stack([np.interp(t, _RAMP[:, 0], _RAMP[:, k]) for k in (1, 2, 3)], axis=-1)
    rgb[~np.isfinite(v)] = NO_VALUE_RGB
    return rgb


@dataclass
class ErrorPanel:
    """One panel: a title, (N, 3) vertices (any frame, viewed along -z), triangles and (N,) errors."""

    title: str
    vertices: np.ndarray
    triangles: np.ndarray
    errors: np.ndarray


def _draw_mesh(
    draw: ImageDraw.ImageDraw,
    panel: ErrorPanel,
    origin: tuple[int, int],
    size: int,
    vmax: float,
) -> None:
    v = np.asarray(panel.vertices, dtype=np.float64)
    tri = np.asarray(panel.triangles, dtype=np.int64)
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    span = float((hi - lo).max()) or 1.0
    scale = 0.92 * size / span
    centre = (lo + hi) / 2
    px = (v[:, 0] - centre[0]) * scale + origin[0] + size / 2
    py = -(v[:, 1] - centre[1]) * scale + origin[1] + size / 2
    corners = v[tri]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1)
    nz = np.divide(normals[:, 2], length, out=np.zeros(len(tri)), where=length > 0)
    front = nz > 0
    errors = np.asarray(panel.errors, dtype=np.float64)
    tri_err = errors[tri]
    finite = np.isfinite(tri_err)
    count = finite.sum(1)
    total = np.where(finite, tri_err, 0.0).sum(1)
    mean_err = np.divide(total, count, out=np.full(len(tri), np.nan), where=count > 0)
    colours = colour_ramp(mean_err, vmax) * (0.55 + 0.45 * np.abs(nz))[:, None]
    order = np.argsort(corners[:, :, 2].mean(1))  # far first: painter's algorithm
    rgb8 = (np.clip(colours, 0, 1) * 255).astype(np.uint8)
    for f in order:
        if not front[f]:
            continue
        a, b, c = tri[f]
        draw.polygon([(px[a], py[a]), (px[b], py[b]), (px[c], py[c])], fill=tuple(int(x) for x in rgb8[f]))


def render_error_map(
    panels: Sequence[ErrorPanel],
    path: str | Path,
    *,
    title: str = "",
    vmax: float = 3.0,
    panel_size: int = 256,
) -> Path:
    """Draw `panels` side by side with a colour bar (0..`vmax` mm) and save a PNG at `path`."""
    if not panels:
        raise ValueError("render_error_map needs at least one panel")
    bar_w, top, bottom = 70, 24 if title else 6, 22
    width = panel_size * len(panels) + bar_w
    height = panel_size + top + bottom
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((6, 5), title, fill=(0, 0, 0))
    for i, panel in enumerate(panels):
        _draw_mesh(draw, panel, (i * panel_size, top), panel_size, vmax)
        finite = np.asarray(panel.errors)[np.isfinite(panel.errors)]
        label = panel.title + (f"  {finite.mean():.2f} mm" if finite.size else "")
        draw.text((i * panel_size + 6, top + panel_size + 4), label, fill=(0, 0, 0))
    x0 = panel_size * len(panels) + 12
    ramp = colour_ramp(np.linspace(vmax, 0, panel_size - 20), vmax)
    for j, rgb in enumerate(ramp):
        draw.line([(x0, top + 10 + j), (x0 + 14, top + 10 + j)], fill=tuple(int(255 * x) for x in rgb))
    draw.text((x0 + 18, top + 4), f"{vmax:g} mm", fill=(0, 0, 0))
    draw.text((x0 + 18, top + panel_size - 18), "0", fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_error_maps(
    groups: Mapping[tuple[str, str], Sequence[ErrorPanel]],
    out_dir: str | Path,
    subject: str,
    *,
    vmax: float = 3.0,
    protocol_titles: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """One error map per (protocol, condition) of one subject: every protocol gets its maps.

    Args:
        groups: (protocol, condition) -> the panels of every method (runs and baselines) for it.
        out_dir: the bench's output folder; maps go to ``out_dir/error_maps/``.
        subject: the subject's id, the start of each file name.
        vmax: top of the colour scale, mm.
        protocol_titles: protocol -> words for the picture's title (e.g. "Average over identity").

    Returns:
        ``{"error_maps/<subject>_<protocol>_<condition>.png": path}`` in `groups` order.
    """
    titles = protocol_titles or {}
    files: dict[str, Path] = {}
    for (protocol, condition), panels in groups.items():
        path = Path(out_dir) / "error_maps" / f"{subject}_{protocol}_{condition}.png"
        title = f"{subject} {condition} ({titles.get(protocol, protocol)})"
        files[f"error_maps/{path.name}"] = render_error_map(panels, path, title=title, vmax=vmax)
    return files
