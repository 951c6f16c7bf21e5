"""``facerep reconstruct``: photos -> 3D faces on disk.

For every photo ``NAME`` the output folder gets ``OUT/NAME/`` with:

- ``input.png``: the network's crop (``image_size`` px);
- ``canonical.obj`` / ``canonical.ply`` (vertex colours = albedo) and ``canonical_textured.obj`` +
  ``.mtl`` + ``.png`` (UV albedo texture): the face in the canonical frame, mm;
- ``neutral.obj`` / ``neutral.ply``: the same identity with the run's neutral expression;
- ``posed.obj`` / ``posed.ply``: the face in the camera's frame (see `facerep.apps.export`);
- ``albedo.png``: the UV albedo texture (the U-Net decoder's own map when the run has one, otherwise the
  per-vertex albedo baked into the face model's UV layout);
- ``render.png``: the re-rendered crop (RGBA, alpha = coverage); ``overlay.png``: the rendering pasted
  over the full input photo;
- ``codes.npz``: identity, expression, pose, light codes (1-D), per-vertex albedo (N, 3), canonical and
  posed vertices (N, 3) mm, the crop box in the photo (x0, y0, side) and the crop's landmarks when known.

``OUT/index.json`` lists every photo with its crop method and files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facerep.apps.export import (
    bake_uv_texture,
    overlay_on_photo,
    posed_vertices,
    save_image,
    uv_map_texture,
    write_meshes,
)
from facerep.apps.model import FaceRep
from facerep.apps.photos import FacePhoto, LandmarkDetector, find_photos, load_face_photo


@dataclass
class PhotoResult:
    """What was written for one photo."""

    photo: Path
    folder: Path
    crop: str
    files: dict[str, Path] = field(default_factory=dict)


def _safe_stem(photo: Path, taken: set[str]) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in photo.stem) or "photo"
    name, k = stem, 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}"
    taken.add(name)
    return name


def write_reconstruction(
    model: FaceRep, photos: Sequence[FacePhoto], folders: Sequence[Path], *, texture_size: int = 256
) -> list[PhotoResult]:
    """Reconstruct a batch of prepared photos and write each one's files into its folder."""
    images = torch.stack([p.image for p in photos])
    recon = model.reconstruct(images)
    neutral = model.decode(recon.codes, neutral=True)
    posed = posed_vertices(recon.vertices, recon.codes.pose, model.image_size)
    uv_maps = recon.extras.get("albedo_uv")
    results = []
    for i, (photo, folder) in enumerate(zip(photos, folders, strict=True)):
        folder.mkdir(parents=True, exist_ok=True)
        albedo = recon.albedo[i]
        texture = (
            uv_map_texture(uv_maps[i])
            if uv_maps is not None
            else bake_uv_texture(model.face_model, albedo, texture_size)
        )
        files: dict[str, Path] = {"input": save_image(folder / "input.png", photo.image)}
        for role, path in write_meshes(
            folder, "canonical", recon.vertices[i], model.face_model, albedo, texture
        ).items():
            files[f"canonical_{role}"] = path
        for role, path in write_meshes(
            folder, "neutral", neutral.vertices[i], model.face_model, albedo
        ).items():
            files[f"neutral_{role}"] = path
        for role, path in write_meshes(folder, "posed", posed[i], model.face_model, albedo).items():
            files[f"posed_{role}"] = path
        files["albedo"] = save_image(folder / "albedo.png", texture)
        rendering = recon.rendering
        files["render"] = save_image(folder / "render.png", rendering.image[i], rendering.mask[i])
        overlay = overlay_on_photo(photo.original, photo.box, rendering.image[i], rendering.mask[i])
        overlay.save(folder / "overlay.png")
        files["overlay"] = folder / "overlay.png"
        codes = recon.codes
        arrays = {
            "identity": codes.identity[i],
            "expression": codes.expression[i],
            "pose": codes.pose[i],
            "light": codes.light[i],
            "albedo": albedo,
            "vertices": recon.vertices[i],
            "posed_vertices": posed[i],
            "neutral_vertices": neutral.vertices[i],
        }
        payload = {k: v.detach().float().cpu().numpy() for k, v in arrays.items()}
        payload["box"] = np.asarray(photo.box, dtype=np.float32)
        if photo.landmarks is not None:
            payload["landmarks"] = photo.landmarks.numpy().astype(np.float32)
        np.savez(folder / "codes.npz", **payload)
        files["codes"] = folder / "codes.npz"
        results.append(PhotoResult(photo.path, folder, photo.crop, files))
    return results


def reconstruct_photos(
    model: FaceRep,
    target: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    detect: bool = False,
    crop_scale: float = 1.5,
    crop: str = "auto",
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
        detect: detect 68 landmarks (face-alignment) for photos without a ``.pts`` sidecar.
        crop_scale: crop side / landmark extent for landmark crops.
        crop: "auto", "landmarks" or "center" (see `facerep.apps.photos.load_face_photo`).
        batch_size: photos per forward pass.
        texture_size: side of baked UV albedo textures, texels.
        on_error: "raise", or "skip" to report unreadable photos in ``index.json`` and go on.
        progress: called with the number of photos finished after each batch.

    Returns:
        One `PhotoResult` per reconstructed photo.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = find_photos(target) if isinstance(target, str | Path) else [Path(p) for p in target]
    detector = LandmarkDetector() if detect else None
    taken: set[str] = set()
    results: list[PhotoResult] = []
    errors: dict[str, str] = {}
    for start in range(0, len(paths), max(1, int(batch_size))):
        chunk, folders = [], []
        for path in paths[start : start + batch_size]:
            try:
                chunk.append(
                    load_face_photo(
                        path, model.image_size, crop_scale=crop_scale, detector=detector, crop=crop
                    )
                )
            except Exception as exc:
                if on_error == "raise":
                    raise
                errors[str(path)] = f"{type(exc).__name__}: {exc}"
                continue
            folders.append(out / _safe_stem(path, taken))
        if chunk:
            results.extend(write_reconstruction(model, chunk, folders, texture_size=texture_size))
        if progress is not None:
            progress(min(len(paths), start + batch_size))
    index = {
        "run": str(model.run.path),
        "checkpoint": str(model.run.checkpoint),
        "image_size": model.image_size,
        "vertices": model.face_model.num_vertices,
        "photos": [
            {
                "photo": str(r.photo),
                "folder": r.folder.name,
                "crop": r.crop,
                "files": {k: str(p.relative_to(out)) for k, p in sorted(r.files.items())},
            }
            for r in results
        ],
        "errors": errors,
    }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return results
