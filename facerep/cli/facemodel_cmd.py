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

    from facerep.common.errors import FacerepError
    from facerep.geometry.sh import LIGHT_SIZE, NUM_SH, light_from_direction

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
    if len(values) == NUM_SH:
        values = values * 3
    if len(values) != LIGHT_SIZE:
        raise FacerepError(f"--light needs {NUM_SH} or {LIGHT_SIZE} numbers, got {len(values)}")
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

    from facerep.core.registry import get_registry
    from facerep.geometry.camera import pose_code

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
        renderer = get_registry().build(
            "renderer",
            {"type": "facerep:sh_rasterizer", "antialias": True},
            {"face_model": model, "image_size": size},
        )
        out = renderer(vertices, albedo.contiguous(), pose, light.float().expand(len(rows), -1).contiguous())
        background = 0.18
        images = out.image + background * (1 - out.mask)
    return images.clamp(0, 1), labels


#: Smallest and largest side of one rendered picture, pixels (6 pictures of this size are rendered).
SIZE_RANGE: tuple[int, int] = (16, 2048)

#: Loader plugins chosen from a model file's suffix when NAME is a path.
LOADER_BY_SUFFIX: dict[str, str] = {".npz": "npz", ".mat": "bfm", ".pkl": "bfm"}


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--set`` -> (key, value); the value becomes an int, float, bool or None when it
    reads as one (``3``, ``0.5``, ``true``, ``null``), else stays a string."""
    from facerep.common.errors import FacerepError

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise FacerepError(f"--set {text!r}: expected KEY=VALUE with a loader argument name, e.g. units=cm")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("null", "none", "~"):
        return key, None
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    return key, raw


def resolve_model_node(name: str, path: Path | None, registry) -> dict:  # noqa: ANN001 - a Registry
    """The face-model recipe node ``{"type": ..., "path": ...}`` for NAME (a plugin name, or a model
    file / folder whose loader is chosen by its suffix) and ``--path``."""
    from facerep.common.errors import FacerepError

    known = registry.names("facemodel")
    if (
        name not in known
        and ":" not in name
        and (Path(name).exists() or Path(name).suffix in LOADER_BY_SUFFIX)
    ):
        if path is not None:
            raise FacerepError(f"{name}: give the model either as NAME or with --path, not both")
        as_path = Path(name)
        if as_path.is_dir():
            loader = "sfm"
        elif as_path.suffix.lower() in LOADER_BY_SUFFIX:
            loader = LOADER_BY_SUFFIX[as_path.suffix.lower()]
        else:
            raise FacerepError(
                f"{as_path}: cannot tell its face model format from the name; give the loader, e.g. "
                f"`facerep facemodel show npz --path {as_path}` (loaders: {', '.join(known)})"
            )
        name, path = loader, as_path
    elif name not in known and ("/" in name or "\\" in name):
        raise FacerepError(
            f"{name}: no such model file or folder (and not a face model plugin: {', '.join(known)})"
        )
    comp = registry.get("facemodel", name, address="NAME")
    node: dict = {"type": name}
    if path is not None:
        if "path" not in comp.parameters():
            raise FacerepError(
                f"--path: face model {name!r} reads no file (its arguments: "
                f"{', '.join(comp.recipe_parameters()) or 'none'})"
            )
        if not path.exists():
            raise FacerepError(f"{path}: face model file or folder not found")
        node["path"] = str(path)
    elif "path" in comp.parameters() and comp.parameters()["path"].default in ("", None):
        raise FacerepError(
            f"face model {name!r} is read from a file: give it with --path (e.g. "
            f"`facerep facemodel show {name} --path FILE_OR_FOLDER`)"
        )
    return node


def _check_out(out: Path) -> None:
    from facerep.common.errors import FacerepError

    if out.suffix.lower() != ".png":
        raise FacerepError(f"--out {out}: the grid is written as PNG; give a file name ending in .png")
    if out.is_dir():
        raise FacerepError(f"--out {out}: is a folder; give a .png file name")


def save_png(image, out: Path) -> None:  # noqa: ANN001 - a PIL image
    """Write `image` as PNG at `out` through a temporary file in its folder, renamed over `out` when
    complete: a failed write (read-only folder, full disk) leaves no partial file and raises one
    `FacerepError` naming the file."""
    import os
    import tempfile

    from facerep.common.errors import FacerepError

    tmp: str | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG")
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary new file's permissions (mkstemp makes 0o600)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise FacerepError(f"--out {out}: cannot write ({exc.strerror or exc})") from None


@facemodel_app.command("show")
def show(
    name: str = typer.Argument(
        ...,
        help="Face model plugin name (see `facerep plugins`), e.g. synthetic, sfm, npz, bfm; or a model "
        "file / folder (.npz -> npz, .mat / .pkl -> bfm, a folder of eos files -> sfm).",
    ),
    path: Path = typer.Option(
        None, "--path", help="The model's file or folder for file-based models (npz, sfm, bfm)."
    ),
    settings: list[str] = typer.Option(
        [], "--set", help="Another loader argument, KEY=VALUE (repeatable), e.g. units=cm, exp_path=FILE."
    ),
    out: Path = typer.Option(Path("facemodel.png"), "--out", "-o", help="PNG file to write."),
    vertices: int = typer.Option(None, "--vertices", help="Template resolution, for models that take one."),
    light: str = typer.Option("studio", "--light", help=LIGHT_HELP),
    size: int = typer.Option(
        256,
        "--size",
        min=SIZE_RANGE[0],
        max=SIZE_RANGE[1],
        help=f"Side of each rendered picture in pixels ({SIZE_RANGE[0]}-{SIZE_RANGE[1]}).",
    ),
    yaw: float = typer.Option(
        20.0,
        "--yaw",
        min=-90.0,
        max=90.0,
        help="Yaw of the views in degrees (positive: face turns to image right).",
    ),
    pitch: float = typer.Option(0.0, "--pitch", min=-90.0, max=90.0, help="Pitch of the views in degrees."),
    sigmas: float = typer.Option(
        3.0, "--sigmas", min=0.0, max=10.0, help="How many standard deviations the modes are pushed (0-10)."
    ),
) -> None:
    """Render the mean face and +/- 3 sd of the first identity and expression components to a PNG grid.

    Real models: `facerep facemodel show sfm --path eos/share`, `facerep facemodel show model.npz`,
    `facerep facemodel show bfm --path 01_MorphableModel.mat --set exp_path=Exp_Pca.bin`.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from facerep.common.errors import FacerepError
    from facerep.common.paths import cache_dir
    from facerep.core.registry import get_registry

    _check_out(out)
    registry = get_registry()
    node = resolve_model_node(name, path, registry)
    for text in settings:
        key, value = parse_setting(text)
        if key in ("type", "path", "vertices"):
            raise FacerepError(f"--set {text!r}: give {key!r} as {'NAME' if key == 'type' else '--' + key}")
        node[key] = value
    name = node["type"]
    if vertices is not None:
        comp = registry.get("facemodel", name)
        if "vertices" not in comp.parameters():
            raise FacerepError(f"face model {name!r} has no 'vertices' argument (it has a fixed template)")
        node["vertices"] = int(vertices)
    try:
        model = registry.build("facemodel", node, {"cache_dir": cache_dir()})
    except (ValueError, TypeError) as exc:  # a factory's own range / type check
        raise FacerepError(f"face model {name!r}: {exc}") from None
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
    save_png(grid, out)
    source = (
        getattr(model, "info", {}).get("source") if isinstance(getattr(model, "info", None), dict) else None
    )
    typer.echo(
        f"wrote {out} ({grid.width}x{grid.height}): {getattr(model, 'name', name)} face model"
        + (f" from {source}" if source else "")
        + f", {model.num_vertices} vertices, {model.num_id} identity / {model.num_exp} expression "
        f"components, light {light!r}; rows: identity 1, expression 1; "
        f"columns: -{sigmas:g} sd, mean, +{sigmas:g} sd"
    )
