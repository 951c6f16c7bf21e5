"""Small dataclasses of tensors that flow between components.

Conventions used everywhere in facerep:

- images are float tensors in [0, 1], layout (B, 3, H, W);
- masks are float tensors in {0, 1} (or [0, 1] for soft masks), layout (B, 1, H, W);
- 2D landmarks are (B, 68, 2) in pixels, x to the right and y down, origin at the top-left
  corner of the top-left pixel (pixel centres sit at integer + 0.5);
- vertices are (B, N, 3) in millimetres in the canonical face frame: x towards the subject's left,
  y up, z towards the camera, origin near the centre of the head;
- per-vertex albedo is (B, N, 3) in [0, 1];
- codes are identity (B, D_id), expression (B, D_exp), pose (B, 6) and lighting (B, 27); the sizes are a
  `CodeSizes` that the encoder declares (its recipe arguments) and every other component reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from facerep.geometry.camera import POSE_SIZE
from facerep.geometry.sh import LIGHT_SIZE

#: Side in pixels of the square images a component gets when nothing says otherwise (the CPU recipes').
DEFAULT_IMAGE_SIZE = 64


@dataclass(frozen=True, eq=False)
class CodeSizes(Mapping[str, int]):
    """The sizes of the four codes: the encoder declares them, every other component reads them.

    The defaults are the paper's (identity 128, expression 64); pose is the camera's 6 numbers
    (`facerep.geometry.camera`) and light the SH renderer's 27 (`facerep.geometry.sh`). A recipe sets
    them on the encoder only (e.g. ``model.encoder.id_dim``); model assembly hands the encoder's sizes to
    the decoders, the renderer and the losses as the injected ``code_sizes``. It is also a read-only
    mapping ``{"identity": ..., "expression": ..., "pose": ..., "light": ...}`` (what ``code_sizes``
    was before, so ``sizes["identity"]``, ``dict(sizes)`` and ``sizes == {...}`` keep working).
    """

    identity: int = 128
    expression: int = 64
    pose: int = POSE_SIZE
    light: int = LIGHT_SIZE

    def __post_init__(self) -> None:
        for name in self.names():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"code size {name!r} must be a positive integer, got {value!r}")

    @staticmethod
    def names() -> tuple[str, ...]:
        """The code names in their fixed order: identity, expression, pose, light."""
        return ("identity", "expression", "pose", "light")

    @classmethod
    def of(cls, sizes: Mapping[str, Any]) -> CodeSizes:
        """`sizes` as a `CodeSizes` (a `CodeSizes` is returned as is; a mapping must name all four codes)."""
        if isinstance(sizes, CodeSizes):
            return sizes
        unknown = sorted(set(sizes) - set(cls.names()))
        missing = [n for n in cls.names() if n not in sizes]
        if unknown or missing:
            raise ValueError(
                f"code sizes must map exactly {', '.join(cls.names())} to integers; "
                f"got {dict(sizes)!r} (missing {missing}, unknown {unknown})"
            )
        return cls(**{n: sizes[n] for n in cls.names()})

    def __getitem__(self, name: str) -> int:
        if name not in self.names():
            raise KeyError(f"no code named {name!r}; the codes are {', '.join(self.names())}")
        return int(getattr(self, name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __hash__(self) -> int:  # equality is the mapping's (equal to a dict of the same sizes)
        return hash(tuple(self.values()))


def map_tensors(value: Any, fn: Callable[[Tensor], Any]) -> Any:
    """`value` with `fn` applied to every tensor in it (lists, tuples, dicts and dataclasses followed)."""
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: map_tensors(getattr(value, f.name), fn) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


class _Movable:
    """Mixin: `.to(device)` and `.float()` return a copy with every tensor field moved or cast."""

    def to(self, device: torch.device | str):  # noqa: ANN201 - returns the same dataclass type
        return map_tensors(self, lambda t: t.to(device))

    def float(self):  # noqa: ANN201 - returns the same dataclass type
        """Floating-point tensors in float32 (differentiably); integer and bool tensors unchanged."""
        return map_tensors(self, lambda t: t.float() if t.is_floating_point() else t)


@dataclass
class Batch(_Movable):
    """A hybrid training batch: unlabelled photo-collection rows and 3DMM-labelled rows.

    Attributes:
        images: (B, 3, H, W) float in [0, 1].
        masks: (B, 1, H, W) face-segmentation masks in [0, 1] (1 = visible skin).
        landmarks: (B, 68, 2) detected 2D landmarks in pixels, iBUG order.
        identity: (B,) long, identity class in one label space shared by all sources
            (sources are offset so their label spaces stay disjoint).
        labelled: (B,) bool, True for rows with 3DMM labels.
        id_params: (B, K_id) 3DMM identity coefficients of labelled rows (zeros elsewhere), or None.
        exp_params: (B, K_exp) 3DMM expression coefficients of labelled rows (zeros elsewhere), or None.
        pair_index: (B,) long, for a labelled row the row of its pair partner, -1 otherwise, or None.
        sample_ids: one string per row naming the sample (file name), for error messages.
    """

    images: Tensor
    masks: Tensor
    landmarks: Tensor
    identity: Tensor
    labelled: Tensor
    id_params: Tensor | None = None
    exp_params: Tensor | None = None
    pair_index: Tensor | None = None
    sample_ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Codes(_Movable):
    """The encoder's disentangled representation of a batch of images.

    Attributes:
        identity: (B, D_id) identity code (`CodeSizes`).
        expression: (B, D_exp) expression code (`CodeSizes`).
        pose: (B, 6) pose code: pitch, yaw, roll in radians, tx, ty as fractions of the image size,
            log-scale (see `facerep.geometry.camera`).
        light: (B, 27) SH lighting, channel-major (3 x 9) (see `facerep.geometry.sh`).
        skips: intermediate encoder feature maps, finest first, each (B, C_i, H_i, W_i); used by
            albedo decoders with skip connections.
    """

    identity: Tensor
    expression: Tensor
    pose: Tensor
    light: Tensor
    skips: list[Tensor] = field(default_factory=list)


@dataclass
class Rendering(_Movable):
    """What a renderer returns.

    Attributes:
        image: (B, 3, H, W) rendered colour in [0, 1] where covered (0 elsewhere).
        mask: (B, 1, H, W) coverage, 1 where a triangle covers the pixel centre.
        depth: (B, 1, H, W) depth of the front-most surface (larger = nearer the camera), 0 where uncovered.
        triangle_ids: (B, H, W) long, index of the front-most triangle, -1 where uncovered.
        vertices_2d: (B, N, 2) projected vertices in pixels.
        landmarks_2d: (B, 68, 2) projected landmark vertices in pixels.
        visibility: (B, N) bool, True for vertices facing the camera and not occluded.
    """

    image: Tensor
    mask: Tensor
    depth: Tensor
    triangle_ids: Tensor
    vertices_2d: Tensor
    landmarks_2d: Tensor
    visibility: Tensor


@dataclass
class Reconstruction(_Movable):
    """Everything the model produced for a batch, handed to the losses.

    Attributes:
        codes: the encoder output.
        vertices: (B, N, 3) decoded shape in millimetres, canonical frame.
        albedo: (B, N, 3) per-vertex albedo in [0, 1].
        rendering: the rendering of (vertices, albedo, pose, light), or None when not rendered.
        extras: named tensors produced by components for specific losses (e.g. "albedo_uv").
    """

    codes: Codes
    vertices: Tensor
    albedo: Tensor
    rendering: Rendering | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
