"""The contract of each component kind.

Every component a recipe names is built by `facerep.core.registry.build`. A factory (a class or a
function) receives the recipe node's arguments and, when its signature asks for them by name, the
shared objects of the run (the *context*, see `CONTEXT_NAMES`): for example a shape decoder whose
``__init__`` has a ``face_model`` parameter receives the run's face model. Recipe authors never write
those arguments.

Units and layouts are the ones of `facerep.core.types`: images (B, 3, H, W) in [0, 1], vertices
(B, N, 3) in millimetres in the canonical frame, albedo (B, N, 3) in [0, 1], codes of the sizes the
encoder declares (`facerep.core.types.CodeSizes`).

The kind ``shader`` (what turns blended normals, albedo and light into colours inside a renderer) has its
contract beside the functional renderer it plugs into: `facerep.geometry.render.Shader`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from facerep.common.errors import DataError
from facerep.core.types import Batch, Codes, CodeSizes, Reconstruction, Rendering

#: Names a factory may list in its signature to receive shared objects of the run.
CONTEXT_NAMES: tuple[str, ...] = (
    "face_model",  # the run's FaceModel
    "num_identities",  # total identity classes over all training sources
    "code_sizes",  # CodeSizes the encoder declares (read-only mapping: identity, expression, pose, light)
    "image_size",  # int, side of the square training images in pixels
    "encoder",  # the built Encoder (for decoders with skips: channel counts)
    "cache_dir",  # pathlib.Path for derived data (mesh hierarchies, synthetic world)
    "device",  # torch.device
)

#: Component kinds and the contract each one follows.
KINDS: tuple[str, ...] = (
    "encoder",
    "shape_decoder",
    "albedo_decoder",
    "renderer",
    "critic",
    "loss",
    "dataset",
    "facemodel",
    "benchmark",
    "optimizer",
    "face_detector",
    "shader",
)


class FaceModel(abc.ABC):
    """A linear morphable face model plus the mesh facts every component needs.

    All arrays are numpy (float32 / int64) and describe the template topology of N vertices and
    F triangles. Shapes are in millimetres, canonical frame (x to the subject's left, y up, z towards
    the camera). Bases are stored as offsets per unit coefficient: a shape is
    ``mean + id_basis @ alpha_id + exp_basis @ alpha_exp`` with coefficients whose prior is
    N(0, std**2) (equation 1 of the paper).

    Attributes:
        name: short name (e.g. "synthetic").
        template: (N, 3) template vertices, mm (the mean neutral face unless a model says otherwise).
        triangles: (F, 3) int64 vertex indices, counter-clockwise seen from the front (+z).
        mean: (N, 3) mean shape, mm.
        id_basis: (K_id, N, 3) identity basis, mm per unit coefficient.
        id_std: (K_id,) prior standard deviations of the identity coefficients.
        exp_basis: (K_exp, N, 3) expression basis, mm per unit coefficient.
        exp_std: (K_exp,) prior standard deviations of the expression coefficients.
        albedo_mean: (N, 3) mean albedo in [0, 1].
        albedo_basis: (K_tex, N, 3) albedo basis per unit coefficient.
        albedo_std: (K_tex,) prior standard deviations of the albedo coefficients.
        landmarks: (68,) int64 vertex indices of the iBUG-68 landmarks.
        mirror: (N,) int64, vertex i mirrors to vertex mirror[i] (x -> -x).
        nose_tip: int, index of the nose-tip vertex.
        uv: (N, 2) per-vertex texture coordinates in [0, 1] (u right, v up).
    """

    name: str
    template: np.ndarray
    triangles: np.ndarray
    mean: np.ndarray
    id_basis: np.ndarray
    id_std: np.ndarray
    exp_basis: np.ndarray
    exp_std: np.ndarray
    albedo_mean: np.ndarray
    albedo_basis: np.ndarray
    albedo_std: np.ndarray
    landmarks: np.ndarray
    mirror: np.ndarray
    nose_tip: int
    uv: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.template.shape[0])

    @property
    def num_id(self) -> int:
        return int(self.id_basis.shape[0])

    @property
    def num_exp(self) -> int:
        return int(self.exp_basis.shape[0])

    @abc.abstractmethod
    def shape(self, alpha_id: Tensor, alpha_exp: Tensor) -> Tensor:
        """Equation (1): (B, K_id), (B, K_exp) coefficients -> (B, N, 3) vertices in mm."""

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, N, 3) random shapes drawn from the linear model's prior (the critic's real shapes)."""

    @abc.abstractmethod
    def fit(self, vertices: Tensor) -> tuple[Tensor, Tensor]:
        """Least-squares coefficients (alpha_id (B, K_id), alpha_exp (B, K_exp)) of (B, N, 3) shapes."""

    def true_shape(self, alpha_id: Tensor, alpha_exp: Tensor | None = None) -> Tensor:
        """The faces the coefficients stand for: (B, K_id), (B, K_exp) -> (B, N, 3) vertices in mm.

        The linear shape (equation 1) here; a model whose identities carry detail beyond its linear
        span (the synthetic world's) returns that detail too. Fresh synthetic training faces
        (`facerep.world.fresh_faces`) are drawn with it.
        """
        if alpha_exp is None:
            alpha_exp = alpha_id.new_zeros(alpha_id.shape[0], self.num_exp)
        return self.shape(alpha_id, alpha_exp)

    def fingerprint(self) -> str:
        """A stable hash of the template topology and geometry, used to key on-disk caches."""
        import hashlib

        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.template, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.triangles, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


class Encoder(nn.Module, abc.ABC):
    """Image (and, for some encoders, its 68 landmarks) -> disentangled codes.

    ``forward(images (B, 3, H, W) in [0, 1], landmarks (B, 68, 2) | None = None) -> Codes``.
    ``landmarks`` are the 2D landmarks of exactly the images passed: float pixels in the frame of
    ``images`` as given (a caller that resizes or crops the images maps the landmarks the same way),
    iBUG-68 order, x to the right, y down, origin at the top-left corner of the top-left pixel
    (`facerep.core.types`). An encoder that sets ``reads_landmarks = True`` (on its class, or per
    instance when an option decides) uses them and must get them: it calls `encoder_landmarks`
    first thing in ``forward`` (the one check, also run by
    `facerep.core.model.FaceRepModel.encode`), which raises a `DataError` when they are missing or
    not (B, 68, 2). An encoder with ``reads_landmarks = False`` (the default) ignores them.

    ``code_sizes`` declares the sizes of the four codes (a `CodeSizes`, or any mapping of identity,
    expression, pose and light to ints): model assembly hands them to every other component;
    ``skip_channels`` lists the channel count of each skip feature map, finest first.
    """

    code_sizes: CodeSizes
    skip_channels: list[int]
    reads_landmarks: bool = False

    @abc.abstractmethod
    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes: ...

    def encode_landmarks(self, landmarks: Tensor) -> dict[str, Tensor]:
        """(B, 68, 2) landmarks in pixels -> {code name: (B, D)}: what the encoder reads from the
        landmarks alone, without an image (for a landmark pre-training stage,
        `facerep.train.landmark_pretrain`). An encoder that reads landmarks may offer it; its codes
        from `forward` are then these plus what the image adds. The default: not offered."""
        raise NotImplementedError(
            f"encoder {type(self).__name__} cannot encode landmarks alone (no encode_landmarks)"
        )


def offers_encode_landmarks(encoder: Any) -> bool:
    """Whether `encoder`'s class overrides `Encoder.encode_landmarks` (codes from landmarks alone)."""
    return type(encoder).encode_landmarks is not Encoder.encode_landmarks


def encoder_landmarks(encoder: Encoder, images: Tensor, landmarks: Tensor | None) -> Tensor | None:
    """The landmarks an encoder receives with `images`, checked: (B, 68, 2) float pixels, or None.

    The one place that enforces the `Encoder` landmark contract. Given landmarks must be (B, 68, 2)
    with B the batch of the (B, 3, H, W) `images`, whatever the encoder; an encoder with
    ``reads_landmarks`` must get them. Returns `landmarks` (None when not given).

    Raises:
        DataError: landmarks missing for an encoder that reads them, or of the wrong shape.
    """
    name = type(encoder).__name__
    if landmarks is None:
        if getattr(encoder, "reads_landmarks", False):
            raise DataError(
                f"encoder {name} reads the crop's 68 landmarks and none were given: pass "
                "landmarks=(B, 68, 2) pixels in the frame of the images, iBUG order "
                "(model.encode(images, landmarks)), or give photos / crops with landmark sidecars"
            )
        return None
    batch = int(images.shape[0])
    if not isinstance(landmarks, Tensor) or tuple(landmarks.shape) != (batch, 68, 2):
        got = tuple(landmarks.shape) if isinstance(landmarks, Tensor) else type(landmarks).__name__
        raise DataError(
            f"encoder {name} got landmarks of shape {got} for {batch} images: "
            f"they must be ({batch}, 68, 2) pixels, one iBUG-68 set per image"
        )
    if not landmarks.is_floating_point():
        raise DataError(f"encoder {name} got {landmarks.dtype} landmarks: they must be float pixels")
    return landmarks


class ShapeDecoder(nn.Module, abc.ABC):
    """Codes -> face shape.

    ``forward(identity (B, D_id), expression (B, D_exp)) -> vertices (B, N, 3)`` in mm in the
    canonical frame (no pose applied).
    """

    @abc.abstractmethod
    def forward(self, identity: Tensor, expression: Tensor) -> Tensor: ...


class AlbedoDecoder(nn.Module, abc.ABC):
    """Identity code (and optionally encoder skips) -> per-vertex albedo.

    ``forward(identity (B, D_id), skips list[Tensor] | None) -> albedo (B, N, 3)`` in [0, 1].
    Decoders that use the skips set ``uses_skips = True``; they may also put a UV albedo map
    (B, 3, H_uv, W_uv) into ``self.last_uv_map`` for visualisation.
    """

    uses_skips: ClassVar[bool] = False

    @abc.abstractmethod
    def forward(self, identity: Tensor, skips: list[Tensor] | None = None) -> Tensor: ...


class Renderer(nn.Module, abc.ABC):
    """Shape, albedo, pose and light -> image.

    ``forward(vertices (B, N, 3) mm, albedo (B, N, 3), pose (B, 6), light (B, L)) -> Rendering``
    with images of ``image_size`` pixels square. ``light_size`` is the L it reads (27 for SH light; None:
    it does not say), which model assembly checks against the encoder's light code. The functional form
    is `facerep.geometry.render.render`, whose shader a renderer may let a recipe swap.
    """

    image_size: int
    light_size: int | None = None

    @abc.abstractmethod
    def forward(self, vertices: Tensor, albedo: Tensor, pose: Tensor, light: Tensor) -> Rendering: ...


class Critic(nn.Module, abc.ABC):
    """Shape -> realism score: ``forward(vertices (B, N, 3) mm) -> (B,)``. No batch statistics."""

    @abc.abstractmethod
    def forward(self, vertices: Tensor) -> Tensor: ...


class LossContext(Mapping[str, Any]):
    """Read-only access, for losses, to the run's components (face_model, shape_decoder, critic, ...)."""

    def __init__(self, **items: Any) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise KeyError(f"loss context has no {key!r}; it has {sorted(self._items)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Loss(nn.Module, abc.ABC):
    """One term of the training objective.

    ``forward(batch, reconstruction, context) -> scalar tensor`` (unweighted; the engine multiplies by
    ``weight``). ``applies_to`` is "all", "labelled" or "unlabelled": the loss itself selects its rows
    from ``batch.labelled`` and returns 0 (with a graph) when none apply. A loss with a critic side
    (adversarial) also implements ``critic_loss(real, fake, critic) -> scalar``.
    """

    weight: float
    applies_to: str = "all"
    has_critic: ClassVar[bool] = False

    @abc.abstractmethod
    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor: ...

    def critic_loss(self, real: Tensor, fake: Tensor, critic: Critic) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no critic side")


class FaceDataset(torch.utils.data.Dataset, abc.ABC):
    """A source of training or evaluation samples.

    ``__getitem__(i)`` returns a dict with at least ``image`` (3, H, W) float in [0, 1], ``mask``
    (1, H, W), ``landmarks`` (68, 2) px, ``identity`` (int, local to this source), ``sample_id`` (str);
    labelled sources add ``id_params`` (K_id,) and ``exp_params`` (K_exp,).
    ``identities`` is a list with each sample's local identity; ``num_identities`` their count.
    ``world_part`` names the synthetic world's folder laid out as this dataset reads (a
    `facerep.world.synth.WORLD_PARTS` key), which a recipe's ``root: builtin`` selects; None: none.
    """

    labelled: ClassVar[bool] = False
    world_part: ClassVar[str | None] = None
    identities: list[int]

    @property
    def num_identities(self) -> int:
        return len(set(self.identities))

    def labels(self, index: int) -> dict[str, Any]:
        """Sample `index`'s labels without its pixels: ``landmarks`` (68, 2) px, ``identity`` and, for
        labelled sources, ``id_params`` (K_id,) and ``exp_params`` (K_exp,).

        The landmarks may be in the source image's frame rather than the crop's (the two differ by a
        translation and a scale). The default reads the whole sample; a source that holds its labels
        in memory answers without decoding the image.
        """
        sample = self[index]
        return {k: v for k, v in sample.items() if k not in ("image", "mask")}


class Benchmark(abc.ABC):
    """An evaluation: ``run(runs, out_dir, *, console=None, data_root=None) -> dict`` of results (also
    written under out_dir).

    Everything a benchmark reads of a trained run comes through ``runs``: objects with
    ``encode(images, landmarks=None)``, ``decode_shape``, ``neutral_expression``, ``face_model`` and
    ``image_size`` (optionally ``name``, ``path``, ``checkpoint``, ``reads_landmarks``: such a run gets
    its crops' landmarks with every ``encode``, see `Encoder`; `facerep.apps.bench_models` loads run
    folders as such). ``console`` is the
    rich console for progress and tables (None: a new one on stdout). ``data_root``, when given, is the
    data to score instead of the benchmark's own ``root`` argument: a ``root`` of ``builtin`` means the
    synthetic world's `world_part` folder, which the caller makes (`facerep.world.cache.ensure_world_part`)
    and passes here, since benchmarks sit below the world generator.
    """

    #: The synthetic world's folder this benchmark scores (a `facerep.world.synth.WORLD_PARTS` key), or
    #: None when the world has none for it.
    world_part: ClassVar[str | None] = None

    @abc.abstractmethod
    def run(
        self, runs: list[Any], out_dir: Any, *, console: Any = None, data_root: Any = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DetectedFace:
    """One face found in a photo by a `FaceDetector`.

    Attributes:
        box: (4,) float64 ``[x0, y0, x1, y1]``, the detector's face box in input pixels (x0 < x1, y0 < y1).
        landmarks: (68, 2) float32 iBUG-68 landmarks in input pixels, facerep's convention (the centre of
            the top-left pixel is (0.5, 0.5); see `facerep.data.sidecars`).
        score: the detector's confidence (larger is surer; its scale is the detector's own).
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


class FaceDetector(abc.ABC):
    """Faces and their 68 iBUG landmarks in a photo.

    ``detect(image (H, W, 3) uint8 RGB) -> list[DetectedFace]``, largest box first; an empty list when
    no face is found. Anything but an (H, W, 3) uint8 array is a ``ValueError`` (`check_rgb`).
    ``weights`` says in one line where the network weights come from (a package, or a download on
    first use), for ``facerep plugins`` and the docs. A factory whose optional package is missing raises
    `facerep.common.errors.FacerepError` naming the ``pip install`` line that fixes it.
    """

    weights: ClassVar[str] = ""

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> list[DetectedFace]: ...

    @staticmethod
    def check_rgb(image: np.ndarray) -> np.ndarray:
        """`image` as a C-contiguous (H, W, 3) uint8 array, or a ``ValueError`` saying what it is."""
        if not isinstance(image, np.ndarray):
            raise ValueError(
                f"a face detector takes an (H, W, 3) uint8 numpy array, got {type(image).__name__}"
            )
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"a face detector takes an (H, W, 3) uint8 RGB array, got shape {image.shape} {image.dtype}"
            )
        return np.ascontiguousarray(image)


__all__ = [
    "CONTEXT_NAMES",
    "KINDS",
    "AlbedoDecoder",
    "Batch",
    "Benchmark",
    "Codes",
    "Critic",
    "DetectedFace",
    "Encoder",
    "FaceDataset",
    "FaceDetector",
    "FaceModel",
    "Loss",
    "LossContext",
    "Reconstruction",
    "Renderer",
    "Rendering",
    "ShapeDecoder",
    "encoder_landmarks",
]
