"""``facerep reconstruct``: photos -> 3D faces on disk, one output folder per face.

Every photo's faces are found by a face detector (`facerep.data.photos.crop_faces`; a ``NAME.pts``
sidecar replaces detection), and each face gets a folder ``OUT/NAME/`` (``OUT/NAME_face1/``,
``OUT/NAME_face2/``, ... when a photo gives several, largest first) with:

- ``input.png``: the network's crop (``image_size`` px);
- ``canonical.obj`` / ``canonical.ply`` (vertex colours = albedo) and ``canonical_textured.obj`` +
  ``.mtl`` + ``.png`` (UV albedo texture): the face in the canonical frame, mm;
- ``neutral.obj`` / ``neutral.ply``: the same identity with the run's neutral expression;
- ``posed.obj`` / ``posed.ply``: the face in the camera's frame (see `facerep.apps.export`);
- ``albedo.png``: the UV albedo texture, ``texture_size`` texels square (the U-Net decoder's own map,
  resampled to that size, when the run has one; otherwise the per-vertex albedo baked into the face
  model's UV layout); ``canonical_textured.png`` is the same texture;
- ``render.png``: the re-rendered crop (RGBA, alpha = coverage); ``overlay.png``: the rendering pasted
  over the full input photo (a photo above `facerep.data.photos.MAX_PHOTO_PIXELS` is read, and its
  overlay written, reduced by an integer factor);
- ``codes.npz``: identity, expression, pose, light codes (1-D), per-vertex albedo (N, 3), canonical and
  posed vertices (N, 3) mm, the crop box in the photo (x0, y0, side), the crop's landmarks when known,
  and the face's box ``face_box`` (4,) and 68 landmarks ``face_landmarks`` (68, 2) in photo pixels.

``OUT/index.json`` lists every face (photo, face index, folder, crop method, ``box: [x0, y0, x1, y1]`` and
``landmarks: [[x, y] x 68]`` in photo pixels, files), the photos in which no face was found
(``no_face``: reported and skipped, never centre-cropped) and unreadable photos (``errors``). Folder
names come from the photo names, cleaned so that each one resolves inside ``OUT``.

Writes go through `facerep.common.safe_write`: each face's folder is written all or nothing (a full disk or
a read-only folder raises one `facerep.common.errors.WriteError` naming the file, and leaves that face's
previous files, if any, as they were); ``index.json`` is written last, once every face is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerep.apps.export import (
    bake_uv_texture,
    overlay_on_photo,
    posed_vertices,
    resample_uv_map,
    save_image,
    save_npz,
    uv_map_texture,
    write_meshes,
)
from facerep.apps.model import FaceRep
from facerep.common.safe_write import all_or_nothing, output_folder
from facerep.core.interfaces import FaceDetector
from facerep.core.types import Reconstruction
from facerep.data.photos import FacePhoto, NoFaceFound, crop_faces, crops_landmarks, find_photos, read_photo

#: Smallest and largest side of a UV texture, texels (a 4096-texel bake takes about 2 GB and 15 s a face;
#: 8192 four times that).
TEXTURE_SIZES = (16, 4096)


@dataclass
class PhotoResult:
    """What was written for one face of a photo."""

    photo: Path
    folder: Path
    crop: str
    files: dict[str, Path] = field(default_factory=dict)
    face: int = 0
    face_box: tuple[float, float, float, float] | None = None
    face_landmarks: np.ndarray | None = None


def safe_folder_name(photo: Path, taken: set[str]) -> str:
    """A folder name from the photo's stem: letters, digits, ``-``, ``_`` and inner dots only, never empty,
    ``.`` or ``..`` (``...png`` -> ``photo``), unique among `taken` (which it joins)."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in photo.stem).strip(".") or "photo"
    name, k = stem, 1
    while name.lower() in taken:
        k += 1
        name = f"{stem}-{k}"
    taken.add(name.lower())
    return name


def _output_folder(out: Path, name: str) -> Path:
    """``out/name``, checked to resolve inside ``out`` (`facerep.common.safe_write.inside`)."""
    from facerep.common.safe_write import inside

    return inside(out, name)


def write_reconstruction(
    model: FaceRep, photos: Sequence[FacePhoto], folders: Sequence[Path], *, texture_size: int = 256
) -> list[PhotoResult]:
    """Reconstruct a batch of prepared photos and write each one's files into its folder (created), each
    folder all or nothing (see the module docstring). UV textures are `texture_size` texels square.
    A run whose encoder reads landmarks gets each crop's own (sidecar or detected; found on the crop for a
    centre crop, `FaceRep.input_landmarks`)."""
    images = torch.stack([p.image for p in photos])
    recon = model.reconstruct(images, crops_landmarks(photos))
    neutral = model.decode(recon.codes, neutral=True)
    posed = posed_vertices(recon.vertices, recon.codes.pose, model.image_size)
    uv_maps = recon.extras.get("albedo_uv")
    results = []
    for i, (photo, folder) in enumerate(zip(photos, folders, strict=True)):
        albedo = recon.albedo[i]
        texture = (
            uv_map_texture(resample_uv_map(uv_maps[i], texture_size))
            if uv_maps is not None
            else bake_uv_texture(model.face_model, albedo, texture_size)
        )
        with all_or_nothing():
            results.append(
                _write_face(model, photo, output_folder(folder), i, recon, neutral.vertices, posed, texture)
            )
    return results


def _write_face(
    model: FaceRep,
    photo: FacePhoto,
    folder: Path,
    i: int,
    recon: Reconstruction,
    neutral: torch.Tensor,
    posed: torch.Tensor,
    texture: np.ndarray,
) -> PhotoResult:
    """Write row `i` of a batch's reconstruction `recon` into the existing `folder`: `neutral` and `posed`
    are the batch's (B, N, 3) vertices in mm, `texture` the face's (S, S, 3) UV albedo texture in [0, 1]."""
    albedo = recon.albedo[i]
    files: dict[str, Path] = {"input": save_image(folder / "input.png", photo.image)}
    meshes = (
        ("canonical", recon.vertices[i], texture),
        ("neutral", neutral[i], None),
        ("posed", posed[i], None),
    )
    for stem, vertices, mesh_texture in meshes:
        written = write_meshes(folder, stem, vertices, model.face_model, albedo, mesh_texture)
        files.update({f"{stem}_{role}": path for role, path in written.items()})
    files["albedo"] = save_image(folder / "albedo.png", texture)
    rendering = recon.rendering
    files["render"] = save_image(folder / "render.png", rendering.image[i], rendering.mask[i])
    x0, y0, side = (v * photo.scale for v in photo.box)  # in the photo as read (reduced when large)
    overlay = overlay_on_photo(photo.original, (x0, y0, side), rendering.image[i], rendering.mask[i])
    files["overlay"] = save_image(folder / "overlay.png", overlay)
    codes = recon.codes
    arrays = {
        "identity": codes.identity[i],
        "expression": codes.expression[i],
        "pose": codes.pose[i],
        "light": codes.light[i],
        "albedo": albedo,
        "vertices": recon.vertices[i],
        "posed_vertices": posed[i],
        "neutral_vertices": neutral[i],
    }
    payload = {k: v.detach().float().cpu().numpy() for k, v in arrays.items()}
    payload["box"] = np.asarray(photo.box, dtype=np.float32)
    if photo.landmarks is not None:
        payload["landmarks"] = photo.landmarks.numpy().astype(np.float32)
    if photo.face_box is not None:
        payload["face_box"] = np.asarray(photo.face_box, dtype=np.float32)
    if photo.face_landmarks is not None:
        payload["face_landmarks"] = np.asarray(photo.face_landmarks, dtype=np.float32)
    files["codes"] = save_npz(folder / "codes.npz", payload)
    return PhotoResult(photo.path, folder, photo.crop, files)


def reconstruct_photos(
    model: FaceRep,
    target: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    detect: bool = True,
    faces: str = "all",
    detector: FaceDetector | str = "dlib",
    crop_scale: float = 1.5,
    batch_size: int = 8,
    texture_size: int = 256,
    on_error: str = "raise",
    progress: Callable[[int], None] | None = None,
) -> list[PhotoResult]:
    """Reconstruct a photo, every photo of a folder, or a list of photos, into ``out`` (see module docstring).

    Args:
        model: a loaded run (`facerep.load`).
        target: photo file, folder (searched recursively) or list of photo files.
        out: output folder (created).
        detect: find the faces with `detector` (photos with a ``.pts`` sidecar use it instead); False takes
            every photo as an aligned face crop (its centred square).
        faces: "all" (one output folder per face) or "largest".
        detector: a `FaceDetector`, or the name of a registered one (built on the model's device when
            first needed).
        crop_scale: crop side / landmark extent for landmark crops.
        batch_size: faces per forward pass.
        texture_size: side of the UV albedo textures (``albedo.png``, the textured OBJ's), texels, within
            `TEXTURE_SIZES`.
        on_error: "raise", or "skip" to report unreadable photos in ``index.json`` and go on.
        progress: called with the number of photos finished after each batch.

    Returns:
        One `PhotoResult` per reconstructed face. Photos without a face are listed under ``no_face`` in
        ``index.json`` and skipped.

    Raises:
        `facerep.common.errors.WriteError` when a file cannot be written (see the module docstring): the
        faces written before it stay, the face being written is left as it was, ``index.json`` is not
        written, and `out` is removed again when this call created it and it is still empty.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    low, high = TEXTURE_SIZES
    if not low <= int(texture_size) <= high:
        raise ValueError(f"texture_size must be {low}..{high} texels, got {texture_size}")
    paths = find_photos(target) if isinstance(target, str | Path) else [Path(p) for p in target]
    requested = Path(out).expanduser()
    created = [p for p in (requested, *requested.parents) if not p.exists()]  # innermost first
    try:
        return _reconstruct_into(
            model,
            paths,
            output_folder(requested),
            detect,
            faces,
            detector,
            crop_scale,
            batch_size,
            texture_size,
            on_error,
            progress,
        )
    except BaseException:
        for folder in created:  # left empty by the failure: remove what this call made
            with suppress(OSError):
                folder.rmdir()
        raise


def _reconstruct_into(
    model: FaceRep,
    paths: list[Path],
    out: Path,
    detect: bool,
    faces: str,
    detector: FaceDetector | str,
    crop_scale: float,
    batch_size: int,
    texture_size: int,
    on_error: str,
    progress: Callable[[int], None] | None,
) -> list[PhotoResult]:
    """`reconstruct_photos` into the existing, resolved folder `out`."""
    built: list[FaceDetector] = [detector] if isinstance(detector, FaceDetector) else []

    def get_detector() -> FaceDetector:
        if not built:
            from facerep.data.landmark_store import build_detector

            built.append(build_detector(str(detector), model.device))
        return built[0]

    taken: set[str] = set()
    results: list[PhotoResult] = []
    errors: dict[str, str] = {}
    no_face: list[str] = []
    pending: list[FacePhoto] = []
    folders: list[Path] = []

    def flush() -> None:
        if pending:
            for result, photo in zip(
                write_reconstruction(model, pending, folders, texture_size=texture_size), pending, strict=True
            ):
                result.face, result.face_box, result.face_landmarks = (
                    photo.face,
                    photo.face_box,
                    photo.face_landmarks,
                )
                results.append(result)
        pending.clear()
        folders.clear()

    for done, path in enumerate(paths, start=1):
        try:
            original, scale = read_photo(path)
            found = crop_faces(
                original,
                path,
                model.image_size,
                detector=get_detector() if detect and _needs_detector(path) else None,
                faces=faces,
                crop="auto" if detect else "center",
                crop_scale=crop_scale,
                scale=scale,
            )
        except NoFaceFound:
            no_face.append(str(path))
            found = []
        except Exception as exc:
            if on_error == "raise":
                raise
            errors[str(path)] = f"{type(exc).__name__}: {exc}"
            found = []
        base = safe_folder_name(path, taken) if found else ""
        for photo in found:
            name = base if len(found) == 1 else f"{base}_face{photo.face + 1}"
            pending.append(photo)
            folders.append(_output_folder(out, name))
            if len(pending) >= max(1, int(batch_size)):
                flush()
        if progress is not None and not pending:
            progress(done)
    flush()
    if progress is not None:
        progress(len(paths))
    _write_index(model, out, results, no_face, errors)
    return results


def _needs_detector(path: Path) -> bool:
    from facerep.data.photos import landmark_sidecar

    return landmark_sidecar(path) is None


def _write_index(
    model: FaceRep, out: Path, results: list[PhotoResult], no_face: list[str], errors: dict[str, str]
) -> Path:
    from facerep.common.safe_write import write_text

    def entry(r: PhotoResult) -> dict[str, Any]:
        item: dict[str, Any] = {
            "photo": str(r.photo),
            "face": r.face,
            "folder": r.folder.name,
            "crop": r.crop,
        }
        item["box"] = [round(float(v), 2) for v in r.face_box] if r.face_box is not None else None
        item["landmarks"] = (
            [[round(float(x), 2), round(float(y), 2)] for x, y in r.face_landmarks]
            if r.face_landmarks is not None
            else None
        )
        item["files"] = {k: str(p.relative_to(out.resolve())) for k, p in sorted(r.files.items())}
        return item

    index = {
        "run": str(model.run.path),
        "checkpoint": str(model.run.checkpoint),
        "image_size": model.image_size,
        "vertices": model.face_model.num_vertices,
        "photos": [entry(r) for r in results],
        "no_face": no_face,
        "errors": errors,
    }
    return write_text(out / "index.json", json.dumps(index, indent=1) + "\n")
