"""`FaceRep`: a trained run as an object for applications (``facerep.load(RUN)`` returns one).

A thin inference wrapper over `facerep.train.run.load_run`: everything runs without gradients, in eval
mode, on the run's device. `FaceRep.encode` and `FaceRep.prepare` take face crops, (B, 3, H, W) floats in
[0, 1] (a single (3, H, W) image is accepted too), resized (antialiased bilinear) to the run's
``image_size``. `FaceRep.reconstruct` also takes ordinary photos, a path, a PIL image, a numpy array or a
tensor of another size, and crops their faces as ``facerep reconstruct`` does (detection, see
`facerep.data.photos`).

Landmarks: a run whose encoder reads the crop's 68 landmarks (`FaceRep.reads_landmarks`) is given, with
every crop, its landmarks in the crop's pixels (`facerep.core.interfaces.Encoder`): those passed as
``landmarks=`` (pixels of the crops as given; scaled with the resize), those the photo's sidecar or the
detector gave when a photo was cropped, or, for a crop given without them, the 68 points the face
detector (``dlib`` by default) finds on that crop; where none can be had, a `DataError` says so. A run
that does not read landmarks ignores them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from facerep.common.errors import DataError, FacerepError
from facerep.core.types import Codes, Reconstruction, Rendering


class FaceRep:
    """Encode photos into codes, decode codes into faces, render faces.

    Attributes:
        run: the `facerep.train.run.LoadedRun` (recipe, checkpoint path, ...).
        model: the composed `FaceRepModel` (eval mode).
        face_model: the run's face model (template topology, UVs, landmarks).
        image_size: input side in pixels.
        neutral_expression: (D_exp,) the expression code decoded as "neutral".
        device: where the model runs.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.model = run.model.eval()
        self.face_model = run.face_model
        self.image_size = int(run.image_size)
        self.neutral_expression = run.neutral_expression
        self.device = next(iter(self.model.parameters())).device

    def __repr__(self) -> str:
        return (
            f"FaceRep(run={str(self.run.path)!r}, image_size={self.image_size}, "
            f"vertices={self.face_model.num_vertices}, checkpoint={self.run.checkpoint.name!r})"
        )

    @property
    def reads_landmarks(self) -> bool:
        """True when the run's encoder reads the crop's 68 landmarks (see the module docstring)."""
        return bool(self.model.reads_landmarks)

    @property
    def triangles(self) -> Tensor:
        """(F, 3) long triangle indices of the template."""
        return torch.as_tensor(self.face_model.triangles, dtype=torch.long)

    # -- inputs ---------------------------------------------------------------------------------------

    def prepare(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) or (3, H, W) in [0, 1] -> (B, 3, S, S) on the model's device, S = image_size."""
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a tensor (B, 3, H, W) in [0, 1], got {type(images).__name__}")
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        if images.shape[-1] != images.shape[-2]:
            warnings.warn(
                f"prepare() squashes {images.shape[-1]}x{images.shape[-2]} images to a square: give face "
                "crops, or photos to reconstruct(), which finds and crops their faces",
                stacklevel=3,
            )
        if images.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
        return images.clamp(0.0, 1.0)

    def prepare_landmarks(self, landmarks: Tensor, images: Tensor) -> Tensor:
        """(B, 68, 2) or (68, 2) pixels of `images` (B, 3, H, W) or (3, H, W), as given -> (B, 68, 2) float
        pixels of the (B, 3, S, S) crops `prepare` makes from them (x S / W, y S / H; NaN rows stay NaN).

        Raises:
            DataError: `landmarks` is not one (68, 2) set per image.
        """
        batch = 1 if images.dim() == 3 else int(images.shape[0])
        if not isinstance(landmarks, Tensor):
            landmarks = torch.as_tensor(landmarks)
        if landmarks.dim() == 2:
            landmarks = landmarks[None]
        if tuple(landmarks.shape) != (batch, 68, 2):
            raise DataError(
                f"landmarks must be ({batch}, 68, 2) pixels, one iBUG-68 set per image, "
                f"got {tuple(landmarks.shape)}"
            )
        from facerep.bench.protocols import prepare_landmarks

        height, width = int(images.shape[-2]), int(images.shape[-1])
        return prepare_landmarks(landmarks.cpu(), height, width, self.image_size)

    def crop_landmarks(self, images: Tensor, detector: Any = "dlib") -> Tensor:
        """(B, 68, 2) landmarks the face `detector` finds on (B, 3, H, W) or (3, H, W) face crops in [0, 1]
        (the largest face of each), in pixels of the crops as given.

        Raises:
            DataError: the detector cannot be built (its package is missing) or finds no face in a crop.
        """
        from facerep.data.landmark_store import largest_face

        if images.dim() == 3:
            images = images[None]
        try:
            found = self._face_detector(detector)
        except FacerepError as exc:
            raise DataError(
                "this run's encoder reads the crop's 68 landmarks and none were given; detecting them "
                f"on the crops needs a face detector: {exc} (or pass landmarks=(B, 68, 2) crop pixels)"
            ) from exc
        rgb = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
        points = []
        for k, crop in enumerate(rgb.numpy()):
            face = largest_face(found, crop)
            if face is None:
                raise DataError(
                    f"this run's encoder reads the crop's 68 landmarks and none were given; the face "
                    f"detector found no face in crop {k}: pass landmarks=(B, 68, 2) crop pixels"
                )
            points.append(torch.as_tensor(face.landmarks, dtype=torch.float32))
        return torch.stack(points)

    def input_landmarks(
        self, images: Tensor, landmarks: Tensor | None = None, *, detector: Any = "dlib"
    ) -> Tensor | None:
        """The (B, 68, 2) landmarks the encoder gets with ``prepare(images)``, in pixels of the prepared crops
        (on the model's device); None for a run that does not read landmarks.

        `landmarks` are in pixels of `images` as given; rows of NaN (or `landmarks` None) are detected on
        the crops by `detector` (`crop_landmarks`), or, with `detector` None, are a `DataError`.
        """
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a tensor (B, 3, H, W) in [0, 1], got {type(images).__name__}")
        given = None if landmarks is None else self.prepare_landmarks(landmarks, images)
        if not self.reads_landmarks:
            return None
        crops = images if images.dim() == 4 else images[None]
        missing = (
            torch.ones(crops.shape[0], dtype=torch.bool) if given is None else given.isnan().flatten(1).any(1)
        )
        if bool(missing.any()):
            if detector is None:
                raise DataError(
                    f"this run's encoder reads the crop's 68 landmarks and {int(missing.sum())} crop(s) "
                    "have none: pass landmarks=(B, 68, 2) crop pixels, or let the face detector find them"
                )
            found = self.prepare_landmarks(self.crop_landmarks(crops[missing], detector), crops[missing])
            if given is None:
                given = found
            else:
                given = given.clone()
                given[missing] = found
        return given.to(self.device)

    # -- the model ------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, images: Tensor, landmarks: Tensor | None = None, *, detector: Any = "dlib") -> Codes:
        """Images -> `Codes` (identity, expression, pose, light, encoder skips).

        `landmarks`: (B, 68, 2) in pixels of `images` as given, for a run that reads them; without them
        such a run has them detected on the crops (`input_landmarks`). Ignored by other runs.
        """
        marks = self.input_landmarks(images, landmarks, detector=detector)
        return self.model.encode(self.prepare(images), marks)

    @torch.no_grad()
    def decode(self, codes: Codes, *, neutral: bool = False) -> Reconstruction:
        """Codes -> `Reconstruction` with canonical vertices (B, N, 3) mm and albedo (B, N, 3), not rendered.

        With ``neutral`` the run's neutral expression code replaces ``codes.expression``.
        """
        expression = codes.expression
        if neutral:
            expression = self.neutral_expression.to(expression).expand_as(expression)
        vertices = self.model.decode_shape(codes.identity, expression)
        albedo = self.model.decode_albedo(codes)
        return Reconstruction(codes=codes, vertices=vertices, albedo=albedo, extras=self._uv_extras())

    @torch.no_grad()
    def render(self, vertices: Tensor, albedo: Tensor, pose: Tensor, light: Tensor) -> Rendering:
        """(B, N, 3) mm, (B, N, 3) albedo, (B, 6) pose, (B, 27) light -> `Rendering` at image_size."""
        dev = self.device
        return self.model.render(vertices.to(dev), albedo.to(dev), pose.to(dev), light.to(dev))

    @torch.no_grad()
    def reconstruct(
        self,
        images: Any,
        landmarks: Tensor | None = None,
        *,
        faces: str = "largest",
        detect: bool = True,
        detector: Any = "dlib",
        crop_scale: float = 1.5,
        photos: bool | None = None,
    ) -> Reconstruction:
        """Face crops or photos -> `Reconstruction` (codes, vertices, albedo, rendering;
        ``extras["albedo_uv"]`` when the albedo decoder produces a UV map).

        `images` is either face crops, a square (B, 3, S, S) or (3, S, S) tensor (resized to the run's
        ``image_size``, as `encode` does), or photos: a path, a PIL image, a numpy array (H, W, 3), a
        non-square tensor, or a list of these (``photos=True`` treats square tensors as photos too).
        Photos are cropped as ``facerep reconstruct`` crops them: a ``.pts`` sidecar of a path, else the
        faces `detector` finds (`faces`: "largest" per photo, or "all": one row each, largest first);
        ``detect=False`` takes each photo's centred square (with a warning). For photos, ``extras`` also
        holds ``boxes`` (B, 4) ``[x0, y0, x1, y1]`` and ``landmarks`` (B, 68, 2), both in photo pixels
        (NaN for centre crops), and ``photo`` (B,) the input each row comes from.

        `landmarks` (crops only): (B, 68, 2) in pixels of the crops as given, for a run whose encoder reads
        them (see the module docstring; without them they are detected on the crops unless ``detect=False``).
        Photos' crops take the landmarks they were cropped from (sidecar or detector).

        Raises:
            `facerep.data.photos.NoFaceFound` when a photo has no face; `TypeError` for other inputs;
            `DataError` when a run that reads landmarks cannot have them.
        """
        crops_given = isinstance(images, Tensor) and images.dim() in (3, 4) and self._is_crop(images)
        if crops_given if photos is None else not photos:
            marks = self.input_landmarks(images, landmarks, detector=detector if detect else None)
            recon = self.model(self.prepare(images), marks)
        else:
            if landmarks is not None:
                raise TypeError(
                    "landmarks= goes with face crops; photos are cropped from their own landmarks "
                    "(a .pts sidecar or the face detector)"
                )
            crops = self.crop_photos(
                images, faces=faces, detect=detect, detector=detector, crop_scale=crop_scale
            )
            from facerep.data.photos import crops_landmarks

            stacked = torch.stack([c.image for c in crops])
            marks = self.input_landmarks(
                stacked, crops_landmarks(crops), detector=detector if detect else None
            )
            recon = self.model(self.prepare(stacked), marks)
            nan4, nan68 = torch.full((4,), float("nan")), torch.full((68, 2), float("nan"))
            recon.extras["boxes"] = torch.stack(
                [torch.tensor(c.face_box, dtype=torch.float32) if c.face_box else nan4 for c in crops]
            )
            recon.extras["landmarks"] = torch.stack(
                [torch.from_numpy(c.face_landmarks) if c.face_landmarks is not None else nan68 for c in crops]
            )
            recon.extras["photo"] = torch.tensor([c.photo_index for c in crops])
        recon.extras.update(self._uv_extras())
        return recon

    def _is_crop(self, images: Tensor) -> bool:
        return images.shape[-3] == 3 and images.shape[-1] == images.shape[-2]

    def crop_photos(
        self,
        photos: Any,
        *,
        faces: str = "largest",
        detect: bool = True,
        detector: Any = "dlib",
        crop_scale: float = 1.5,
    ) -> list[Any]:
        """The face crops of one photo or a list of photos (see `reconstruct`), as
        `facerep.data.photos.FacePhoto` records with ``photo_index`` set to the input's position."""
        from facerep.data.photos import as_photo, crop_faces, landmark_sidecar

        items = list(photos) if isinstance(photos, list | tuple) else [photos]
        if isinstance(photos, Tensor) and photos.dim() == 4:
            items = list(photos)
        if not detect:
            warnings.warn(
                "detect=False: each photo is taken as an aligned face crop (its centred square); an "
                "uncropped photo gives a wrong face",
                stacklevel=3,
            )
        crops = []
        for k, item in enumerate(items):
            original, path = as_photo(item)
            has_sidecar = path.is_file() and landmark_sidecar(path) is not None
            found = crop_faces(
                original,
                path,
                self.image_size,
                detector=self._face_detector(detector) if detect and not has_sidecar else None,
                faces=faces,
                crop="auto" if detect else "center",
                crop_scale=crop_scale,
            )
            for crop in found:
                crop.photo_index = k
            crops.extend(found)
        return crops

    def _face_detector(self, detector: Any) -> Any:
        from facerep.core.interfaces import FaceDetector

        if isinstance(detector, FaceDetector):
            return detector
        cached = getattr(self, "_detectors", {})
        if detector not in cached:
            from facerep.data.landmark_store import build_detector

            cached[detector] = build_detector(str(detector), self.device)
            self._detectors = cached
        return cached[detector]

    def _uv_extras(self) -> dict[str, Tensor]:
        uv_map = getattr(self.model.albedo_decoder, "last_uv_map", None)
        return {"albedo_uv": uv_map.detach()} if isinstance(uv_map, Tensor) else {}


def load(run: str | Path, *, device: str = "auto", checkpoint: str | Path | None = None) -> FaceRep:
    """Load a trained run directory (its newest checkpoint, or `checkpoint`) as a `FaceRep`; ``device``
    "auto" is CUDA when available, else the CPU (`facerep.train.device.resolve_device`)."""
    from facerep.train.device import resolve_device
    from facerep.train.run import load_run

    return FaceRep(load_run(run, checkpoint=checkpoint, device=str(resolve_device(device))))
