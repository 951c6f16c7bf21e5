"""``facerep facemodel show``: pictures of a face model's mean and main modes, shaded by the SH renderer."""

from __future__ import annotations

import math
from pathlib import Path

import typer

facemodel_app = typer.Typer(help="Inspect face models (the 3DMM prior).", no_args_is_help=True)

#: Named SH light presets: (direction towards the light in the camera frame, strength).
LIGHT_PRESETS: dict[str, tuple[tuple[float, float, float], float]] = {
    "front": ((0.0, 0.0, 1.0), 0.35),
    "left": ((-0.8, 0.3, 0.6), 0.45),  # from the image's left
    "right": ((0.8, 0.3, 0.6), 0.45),
    "top": ((0.0, 0.9, 0.5), 0.45),
    "studio": ((-0.5, 0.45, 0.75), 0.5),
    "ambient": ((0.0, 0.0, 1.0), 0.0),
}

LIGHT_HELP = (
    f"SH light: a preset ({', '.join(LIGHT_PRESETS)}), or 9 comma-separated coefficients (the same for "
    "R, G and B), or 27 (channel-major R9 G9 B9, Deep3DFaceRecon constants, ambient 0.8 added to DC)."
)


def parse_light(spec: str):  # noqa: ANN201 - returns a (1, 27) tensor
    """A (1, 27) light code from a preset name or a list of 9 / 27 numbers."""
    import torch

    from facerep.core.errors import FacerepError
    from facerep.geometry.sh import light_from_direction

    key = spec.strip().lower()
    if key in LIGHT_PRESETS:
        direction, strength = LIGHT_PRESETS[key]
        return light_from_direction(direction, strength)
    try:
        values = [float(x) for x in spec.replace(" ", "").split(",") if x]
    except ValueError:
        raise FacerepError(
            f"--light {spec!r}: not a preset ({', '.join(LIGHT_PRESETS)}) nor numbers"
        ) from None
    if len(values) == 9:
        values = values * 3
    if len(values) != 27:
        raise FacerepError(f"--light needs 9 or 27 numbers, got {len(values)}")
    return torch.tensor(values, dtype=torch.float32)[None]


def _framing(mean, size: int, margin: float = 1.12):  # noqa: ANN001, ANN202
    """(log_scale, tx, ty) that centre the mean face's x-y bounding box and fit it in the image."""
    lo, hi = mean[:, :2].min(0), mean[:, :2].max(0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1])) * margin
    f = size / max(extent, 1e-6)  # pixels per mm
    centre = (lo + hi) / 2
    log_scale = math.log(f * 200.0 / size)
    return log_scale, -f * float(centre[0]) / size, f * float(centre[1]) / size


def render_grid(
    model,  # noqa: ANN001 - a FaceModel
    light,  # noqa: ANN001 - (1, 27) tensor
    size: int = 256,
    yaw: float = 20.0,
    pitch: float = 0.0,
    sigmas: float = 3.0,
):  # noqa: ANN201 - returns (images (6, 3, H, W) tensor, labels)
    """Render mean and +/- ``sigmas`` std of the first identity and expression components (2 x 3 grid).

    Returns:
        images (6, 3, size, size) in [0, 1] over a grey background (rows: identity 1, expression 1;
        columns: -sigma, mean, +sigma) and their labels.
    """
    import numpy as np
    import torch

    from facerep.geometry.camera import pose_code
    from facerep.plugins.renderers.sh_rasterizer import SHRasterizer

    k_id, k_exp = model.num_id, model.num_exp
    rows: list[tuple[str, int, float]] = []
    for name, count, std in (("identity", k_id, model.id_std), ("expression", k_exp, model.exp_std)):
        for s in (-sigmas, 0.0, sigmas):
            rows.append((name, count, s * float(std[0]) if count else 0.0))
    alpha_id = torch.zeros(len(rows), k_id)
    alpha_exp = torch.zeros(len(rows), k_exp)
    labels = []
    for i, (name, count, value) in enumerate(rows):
        if count and name == "identity":
            alpha_id[i, 0] = value
        elif count:
            alpha_exp[i, 0] = value
        sig = (
            round(value / float((model.id_std if name == "identity" else model.exp_std)[0]), 1)
            if count
            else 0
        )
        labels.append("mean" if sig == 0 else f"{name} 1 {sig:+g} sd")
    with torch.no_grad():
        vertices = model.shape(alpha_id, alpha_exp).float()
        mean = np.asarray(model.mean, dtype=np.float32)
        log_scale, tx, ty = _framing(mean, size)
        pose = pose_code(
            pitch=pitch, yaw=yaw, tx=tx, ty=ty, log_scale=log_scale, degrees=True, batch=len(rows)
        )
        albedo = torch.as_tensor(np.asarray(model.albedo_mean, dtype=np.float32))[None].expand_as(vertices)
        renderer = SHRasterizer(model, size, antialias=True)
        out = renderer(vertices, albedo.contiguous(), pose, light.float().expand(len(rows), 27).contiguous())
        background = 0.18
        images = out.image + background * (1 - out.mask)
    return images.clamp(0, 1), labels


@facemodel_app.command("show")
def show(
    name: str = typer.Argument(..., help="Face model plugin name (see `facerep plugins`), e.g. synthetic."),
    out: Path = typer.Option(Path("facemodel.png"), "--out", "-o", help="PNG file to write."),
    vertices: int = typer.Option(None, "--vertices", help="Template resolution, for models that take one."),
    light: str = typer.Option("studio", "--light", help=LIGHT_HELP),
    size: int = typer.Option(256, "--size", help="Side of each rendered picture in pixels."),
    yaw: float = typer.Option(
        20.0, "--yaw", help="Yaw of the views in degrees (positive: face turns to image right)."
    ),
    pitch: float = typer.Option(0.0, "--pitch", help="Pitch of the views in degrees."),
    sigmas: float = typer.Option(3.0, "--sigmas", help="How many standard deviations the modes are pushed."),
) -> None:
    """Render the mean face and +/- 3 sd of the first identity and expression components to a PNG grid."""
    import numpy as np
    from PIL import Image, ImageDraw

    from facerep.core.errors import FacerepError
    from facerep.core.paths import cache_dir
    from facerep.core.registry import get_registry

    registry = get_registry()
    node: dict = {"type": name}
    if vertices is not None:
        comp = registry.get("facemodel", name)
        if "vertices" not in comp.parameters():
            raise FacerepError(f"face model {name!r} has no 'vertices' argument (it has a fixed template)")
        node["vertices"] = int(vertices)
    model = registry.build("facemodel", node, {"cache_dir": cache_dir()})
    images, labels = render_grid(model, parse_light(light), size=size, yaw=yaw, pitch=pitch, sigmas=sigmas)
    arr = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    cols, pad, text_h = 3, 4, 16
    grid = Image.new("RGB", (cols * size + (cols + 1) * pad, 2 * (size + text_h) + 3 * pad), (30, 30, 30))
    draw = ImageDraw.Draw(grid)
    for i, (img, label) in enumerate(zip(arr, labels, strict=True)):
        r, c = divmod(i, cols)
        x, y = pad + c * (size + pad), pad + r * (size + text_h + pad)
        draw.text((x + 2, y + 2), label, fill=(230, 230, 230))
        grid.paste(Image.fromarray(img), (x, y + text_h))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    typer.echo(
        f"wrote {out} ({grid.width}x{grid.height}): {getattr(model, 'name', name)} face model, "
        f"{model.num_vertices} vertices, light {light!r}; rows: identity 1, expression 1; "
        f"columns: -{sigmas:g} sd, mean, +{sigmas:g} sd"
    )
