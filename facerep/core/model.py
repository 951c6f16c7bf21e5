"""The composed face model: encoder, shape and albedo decoders, renderer (one nn.Module)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from facerep.common.errors import RecipeError
from facerep.core.interfaces import AlbedoDecoder, Encoder, Renderer, ShapeDecoder, encoder_landmarks
from facerep.core.types import Codes, CodeSizes, Reconstruction, Rendering
from facerep.geometry.camera import POSE_SIZE


class FaceRepModel(nn.Module):
    """Image -> codes -> shape, albedo -> rendering (paper Figure 2).

    Sub-modules are the components a recipe names under ``model`` plus the renderer; they are
    addressed in state dicts as ``encoder.*``, ``shape_decoder.*``, ``albedo_decoder.*``, ``renderer.*``.
    """

    def __init__(
        self, encoder: Encoder, shape_decoder: ShapeDecoder, albedo_decoder: AlbedoDecoder, renderer: Renderer
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.shape_decoder = shape_decoder
        self.albedo_decoder = albedo_decoder
        self.renderer = renderer

    @property
    def reads_landmarks(self) -> bool:
        """True when the encoder reads the crop's 68 landmarks: `encode` and `forward` then need them."""
        return bool(getattr(self.encoder, "reads_landmarks", False))

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        """(B, 3, H, W) images in [0, 1] (and their (B, 68, 2) landmarks in pixels of those images) -> codes.

        The landmarks follow the `Encoder` contract; they are checked by `encoder_landmarks` (a
        `DataError` when the encoder reads them and none are given, or when they are not (B, 68, 2)).
        An encoder that does not read them is called with the images alone (so an encoder written
        before landmarks were part of the contract, ``forward(images)``, still works).
        """
        landmarks = encoder_landmarks(self.encoder, images, landmarks)
        if self.reads_landmarks:
            return self.encoder(images, landmarks)
        return self.encoder(images)

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm, canonical frame."""
        return self.shape_decoder(identity, expression)

    def decode_albedo(self, codes: Codes) -> Tensor:
        """Codes -> (B, N, 3) albedo in [0, 1] (skips passed to decoders that use them)."""
        skips = codes.skips if getattr(self.albedo_decoder, "uses_skips", False) else None
        return self.albedo_decoder(codes.identity, skips)

    def render(self, vertices: Tensor, albedo: Tensor, pose: Tensor, light: Tensor) -> Rendering:
        return self.renderer(vertices, albedo, pose, light)

    def forward(
        self, images: Tensor, landmarks: Tensor | None = None, *, render: bool = True
    ) -> Reconstruction:
        """(B, 3, H, W) images (and their (B, 68, 2) landmarks, see `encode`) -> reconstruction."""
        codes = self.encode(images, landmarks)
        vertices = self.decode_shape(codes.identity, codes.expression)
        albedo = self.decode_albedo(codes)
        rendering = self.render(vertices, albedo, codes.pose, codes.light) if render else None
        return Reconstruction(codes=codes, vertices=vertices, albedo=albedo, rendering=rendering)

    def reconstruct(self, images: Tensor, landmarks: Tensor | None = None) -> Reconstruction:
        """Inference helper: forward without building a graph."""
        import torch

        with torch.no_grad():
            return self.forward(images, landmarks)


def build_model(stage: Any, context: dict[str, Any], registry: Any) -> FaceRepModel:
    """Build a stage's encoder, decoders and renderer through the registry.

    `context` must hold the run's shared objects (face_model, image_size, num_identities, ...); the
    encoder and the `CodeSizes` it declares (``code_sizes``) are added to it for the decoders, the
    renderer and the losses built afterwards: code sizes are set on the encoder alone (a decoder cannot
    take them from a recipe: the registry refuses an injected name there).
    """

    def make(kind: str, address: str) -> Any:
        node = stage.get(address)
        if node is None:
            raise RecipeError(
                f"the recipe has no {address!r} ({kind})", where=stage.locate(address), address=address
            )
        return registry.build(kind, node, context, address=address, locate=stage.locate)

    encoder = make("encoder", "model.encoder")
    context["encoder"] = encoder
    sizes = encoder_code_sizes(encoder, where=stage.locate("model.encoder"))
    context["code_sizes"] = sizes
    model = FaceRepModel(
        encoder,
        make("shape_decoder", "model.shape_decoder"),
        make("albedo_decoder", "model.albedo_decoder"),
        make("renderer", "renderer"),
    )
    check_renderer_reads(model.renderer, sizes, stage)
    return model


def encoder_code_sizes(encoder: Encoder, where: str | None = None) -> CodeSizes:
    """The `CodeSizes` an encoder declares (its ``code_sizes``); a `RecipeError` at `where` if unusable."""
    try:
        return CodeSizes.of(encoder.code_sizes)
    except (AttributeError, TypeError, ValueError) as exc:
        raise RecipeError(
            f"encoder {type(encoder).__name__} does not declare usable code sizes: {exc}",
            where=where,
            address="model.encoder",
        ) from exc


def check_renderer_reads(renderer: Renderer, sizes: CodeSizes, stage: Any) -> None:
    """A `RecipeError` at the encoder's key when its pose or light code has a size the renderer cannot read.

    The renderer reads (B, `POSE_SIZE`) poses and, when it says (``light_size``), light codes of that
    size. The error points at the encoder's argument that holds the wrong size when exactly one does
    (e.g. ``model.encoder.light_dim``), else at the encoder node.
    """
    light_size = getattr(renderer, "light_size", None)
    renderer_node = stage.get("renderer") or {}
    name = (
        renderer_node.get("type", type(renderer).__name__) if isinstance(renderer_node, dict) else "renderer"
    )
    for code, needed in (("pose", POSE_SIZE), ("light", light_size)):
        have = sizes[code]
        if needed is None or have == needed:
            continue
        node = stage.get("model.encoder") or {}
        keys = [k for k, v in node.items() if k != "type" and v == have and not isinstance(v, bool)]
        address = f"model.encoder.{keys[0]}" if len(keys) == 1 else "model.encoder"
        raise RecipeError(
            f"the encoder's {code} code has {have} values, the renderer {name!r} reads "
            f"{needed}: set the encoder's {code} size to {needed}",
            where=stage.locate(address),
            address=address,
        )
