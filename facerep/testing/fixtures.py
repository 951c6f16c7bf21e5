"""Tiny, deterministic objects to exercise components quickly: face model, context, batch, codes.

Everything here is small enough to run many checks per second on a CPU:

- `tiny_face_model`: the built-in ``synthetic`` face model at about 600 vertices (memoised);
- `tiny_context`: the shared objects a factory may ask for (``face_model``, ``image_size`` 32,
  ``num_identities`` 8, ``code_sizes`` the encoder's (`facerep.core.types.CodeSizes`, the paper's),
  ``encoder`` a ResNet-18, ``cache_dir``,
  ``device``);
- `tiny_batch`: a hybrid `Batch` of 4 rows (2 unlabelled rows of one identity, 2 labelled rows that are
  each other's pair partner) with landmarks projected from the face model;
- `tiny_codes`, `tiny_reconstruction`: codes and a reconstruction whose tensors are leaves that
  require gradients (losses can be checked without any network).

Units follow `facerep.core.types`: images (B, 3, H, W) in [0, 1], vertices (B, N, 3) in mm, landmarks
in pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel
from facerep.core.registry import Registry, get_registry
from facerep.core.types import Batch, Codes, CodeSizes, Reconstruction, Rendering

#: Vertex count of the tiny face model.
TINY_VERTICES = 600
#: Side of the tiny square images, pixels.
TINY_IMAGE_SIZE = 32
#: Rows of the tiny batch.
TINY_BATCH_SIZE = 4
#: Identity classes of the tiny context.
TINY_NUM_IDENTITIES = 8
#: Code sizes of the tiny context (the paper's, `CodeSizes`' defaults).
TINY_CODE_SIZES = CodeSizes()
#: The recipe node of the tiny face model.
TINY_FACE_MODEL_NODE: dict[str, Any] = {"type": "synthetic", "vertices": TINY_VERTICES}
#: The recipe node of the encoder put into the tiny context (decoders with skips read its channels).
TINY_ENCODER_NODE: dict[str, Any] = {"type": "resnet", "depth": 18}


@functools.lru_cache(maxsize=4)
def _face_model(registry: Registry, vertices: int) -> FaceModel:
    return registry.build("facemodel", {**TINY_FACE_MODEL_NODE, "vertices": vertices}, _base_context("cpu"))


def tiny_face_model(vertices: int = TINY_VERTICES, registry: Registry | None = None) -> FaceModel:
    """The built-in synthetic face model with about `vertices` vertices (memoised; treat as read-only)."""
    return _face_model(registry or get_registry(), int(vertices))


def _base_context(device: str | torch.device) -> dict[str, Any]:
    from facerep.common.paths import cache_dir

    return {"cache_dir": cache_dir(), "device": torch.device(device)}


@functools.lru_cache(maxsize=4)
def _encoder(registry: Registry) -> Any:
    torch_state = torch.get_rng_state()
    try:
        torch.manual_seed(0)
        encoder = registry.build("encoder", TINY_ENCODER_NODE, _base_context("cpu"))
    finally:
        torch.set_rng_state(torch_state)
    return encoder.eval()


def tiny_encoder(registry: Registry | None = None) -> Any:
    """A ResNet-18 encoder (seed 0, eval mode), shared by every tiny context (treat as read-only)."""
    return _encoder(registry or get_registry())


def tiny_context(
    face_model: FaceModel | None = None,
    *,
    image_size: int = TINY_IMAGE_SIZE,
    num_identities: int = TINY_NUM_IDENTITIES,
    code_sizes: Mapping[str, int] | None = None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
    with_encoder: bool = True,
) -> dict[str, Any]:
    """The shared objects of a run, at tiny size, keyed by `facerep.core.interfaces.CONTEXT_NAMES`.

    ``code_sizes`` defaults to the context encoder's sizes (`TINY_CODE_SIZES` without an encoder).
    """
    registry = registry or get_registry()
    context = _base_context(device)
    context["face_model"] = face_model if face_model is not None else tiny_face_model(registry=registry)
    context["image_size"] = int(image_size)
    context["num_identities"] = int(num_identities)
    if with_encoder:
        encoder = tiny_encoder(registry)
        context["encoder"] = encoder
        context["code_sizes"] = CodeSizes.of(code_sizes or encoder.code_sizes)
    else:
        context["code_sizes"] = CodeSizes.of(code_sizes or TINY_CODE_SIZES)
    return context


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def tiny_landmarks(face_model: FaceModel, batch_size: int, image_size: int, seed: int = 0) -> Tensor:
    """(B, 68, 2) pixel landmarks: the face model's landmark vertices, frontal, plus 0.5 px noise."""
    from facerep.geometry.camera import project

    mean = torch.as_tensor(face_model.mean, dtype=torch.float32)[None].expand(batch_size, -1, -1)
    points, _ = project(mean, torch.zeros(batch_size, 6), image_size)
    index = torch.as_tensor(face_model.landmarks, dtype=torch.long)
    noise = 0.5 * torch.randn(batch_size, 68, 2, generator=_generator(seed))
    return points[:, index] + noise


def tiny_batch(
    face_model: FaceModel | None = None,
    *,
    batch_size: int = TINY_BATCH_SIZE,
    image_size: int = TINY_IMAGE_SIZE,
    labelled_rows: int = 2,
    seed: int = 0,
) -> Batch:
    """A hybrid batch: the first ``batch_size - labelled_rows`` rows unlabelled (identities 0, 0, 1, 1,
    ...), the last `labelled_rows` labelled (paired two by two, with 3DMM coefficients drawn from the
    prior); images are smooth random colours in [0, 1], masks an ellipse, landmarks projected.
    """
    face_model = face_model if face_model is not None else tiny_face_model()
    if not 0 <= labelled_rows <= batch_size:
        raise ValueError(f"labelled_rows must be within [0, {batch_size}], got {labelled_rows}")
    g = _generator(seed)
    coarse = torch.rand(batch_size, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(coarse, size=(image_size, image_size), mode="bilinear")
    images = images.clamp(0.0, 1.0).contiguous()
    ys, xs = torch.meshgrid(
        (torch.arange(image_size) + 0.5) / image_size - 0.5,
        (torch.arange(image_size) + 0.5) / image_size - 0.5,
        indexing="ij",
    )
    ellipse = ((xs / 0.35) ** 2 + (ys / 0.45) ** 2 <= 1.0).float()
    masks = ellipse.expand(batch_size, 1, image_size, image_size).contiguous()
    n_unlabelled = batch_size - labelled_rows
    identity = torch.arange(batch_size) // 2
    labelled = torch.arange(batch_size) >= n_unlabelled
    id_std = torch.as_tensor(face_model.id_std, dtype=torch.float32)
    exp_std = torch.as_tensor(face_model.exp_std, dtype=torch.float32)
    id_params = torch.randn(batch_size, face_model.num_id, generator=g) * id_std * labelled[:, None]
    exp_params = torch.randn(batch_size, face_model.num_exp, generator=g) * exp_std * labelled[:, None]
    pair_index = torch.full((batch_size,), -1, dtype=torch.long)
    for row in range(n_unlabelled, batch_size - 1, 2):
        pair_index[row], pair_index[row + 1] = row + 1, row
    return Batch(
        images=images,
        masks=masks,
        landmarks=tiny_landmarks(face_model, batch_size, image_size, seed),
        identity=identity.long(),
        labelled=labelled,
        id_params=id_params,
        exp_params=exp_params,
        pair_index=pair_index,
        sample_ids=[f"tiny/{row:03d}.jpg" for row in range(batch_size)],
    )


def tiny_codes(
    batch_size: int = TINY_BATCH_SIZE,
    code_sizes: Mapping[str, int] | None = None,
    *,
    seed: int = 0,
    requires_grad: bool = False,
    skips: list[Tensor] | None = None,
) -> Codes:
    """Codes drawn from N(0, 1) (pose and light scaled by 0.05, a near-frontal, evenly lit face)."""
    sizes = dict(TINY_CODE_SIZES)
    sizes.update(code_sizes or {})
    g = _generator(seed)

    def draw(name: str, scale: float = 1.0) -> Tensor:
        value = scale * torch.randn(batch_size, int(sizes[name]), generator=g)
        return value.requires_grad_(requires_grad)

    return Codes(
        identity=draw("identity"),
        expression=draw("expression"),
        pose=draw("pose", 0.05),
        light=draw("light", 0.05),
        skips=list(skips or []),
    )


def tiny_reconstruction(
    face_model: FaceModel | None = None,
    batch: Batch | None = None,
    *,
    code_sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    requires_grad: bool = True,
) -> Reconstruction:
    """A `Reconstruction` of `batch` made of leaf tensors (no network).

    The mean shape plus 1 mm noise, the mean albedo plus noise, a rendering whose image is the batch's
    image plus noise and whose landmarks are the batch's landmarks plus 1 px noise. Every float tensor
    requires gradients when `requires_grad`.
    """
    face_model = face_model if face_model is not None else tiny_face_model()
    batch = batch if batch is not None else tiny_batch(face_model, seed=seed)
    b, _, h, w = batch.images.shape
    g = _generator(seed + 1)
    n = face_model.num_vertices
    mean = torch.as_tensor(face_model.mean, dtype=torch.float32)
    vertices = mean + torch.randn(b, n, 3, generator=g)
    albedo_mean = torch.as_tensor(face_model.albedo_mean, dtype=torch.float32)
    albedo = (albedo_mean + 0.02 * torch.randn(b, n, 3, generator=g)).clamp(0.0, 1.0)
    image = (batch.images + 0.05 * torch.randn(b, 3, h, w, generator=g)).clamp(0.0, 1.0)
    landmarks_2d = batch.landmarks + torch.randn(b, 68, 2, generator=g)
    from facerep.geometry.camera import project

    vertices_2d, _ = project(vertices, torch.zeros(b, 6), (h, w))
    rendering = Rendering(
        image=image.requires_grad_(requires_grad),
        mask=batch.masks.clone(),
        depth=batch.masks.clone() * 50.0,
        triangle_ids=torch.where(batch.masks[:, 0] > 0, 0, -1).long(),
        vertices_2d=vertices_2d.detach().requires_grad_(requires_grad),
        landmarks_2d=landmarks_2d.requires_grad_(requires_grad),
        visibility=torch.ones(b, n, dtype=torch.bool),
    )
    return Reconstruction(
        codes=tiny_codes(b, code_sizes, seed=seed, requires_grad=requires_grad),
        vertices=vertices.requires_grad_(requires_grad),
        albedo=albedo.requires_grad_(requires_grad),
        rendering=rendering,
    )


__all__ = [
    "TINY_BATCH_SIZE",
    "TINY_CODE_SIZES",
    "TINY_ENCODER_NODE",
    "TINY_FACE_MODEL_NODE",
    "TINY_IMAGE_SIZE",
    "TINY_NUM_IDENTITIES",
    "TINY_VERTICES",
    "tiny_batch",
    "tiny_codes",
    "tiny_context",
    "tiny_encoder",
    "tiny_face_model",
    "tiny_landmarks",
    "tiny_reconstruction",
]
