"""Encoder ``resnet``: a torchvision ResNet backbone with four fully connected heads (paper, section 4.1).

Image (B, 3, H, W) in [0, 1] -> `facerep.core.types.Codes`: identity, expression, pose and SH light
codes of the sizes the encoder declares (``code_sizes``, a `facerep.core.types.CodeSizes`; by default
the paper's 128 / 64 / 6 / 27), plus the backbone's feature maps as skips for a U-Net-like albedo decoder.

- Architecture: torchvision's ResNet-18/34/50 (the paper uses a pre-trained ResNet-50), global average
  pooling, one linear layer per code. Any input size works (64 px for CPU recipes, 224 px for the paper).
- ImageNet normalisation happens inside, so callers pass images in [0, 1].
- ``weights`` is a LOCAL file: a torchvision state dict (``.pth`` / ``.pt``, as saved by
  ``torch.save(model.state_dict())``) or a safetensors file. Nothing is ever downloaded. The ImageNet
  classifier (``fc.*``) in such a file is ignored; every backbone tensor must be present.
- Initialisation: identity and expression heads use PyTorch's default; the pose and light heads start
  at exactly zero (weights and bias), i.e. a frontal, centred, unit-scale face (zero pose code) lit by
  the renderer's ambient term alone (zero light code), so an untrained model renders a sensible face.
- Skips, finest first: the stem's output after ReLU (stride 2), then layer1..layer4 (strides 4..32).
- ``channels_last`` (default on): convolution weights and activations in NHWC memory order, which
  oneDNN's CPU convolutions run without layout conversions (cuDNN prefers it too; not measured
  here). Values and shapes are the same as NCHW's up to summation order; skips come out in NHWC
  order (any consumer accepts them).
  Measured on CPU, forward + backward of ResNet-50 at 224 px: 1.11x faster at batch 12, 1.20x at 48;
  ResNet-18 at 64 px: no difference (benchmarks/RESULTS.md, "Training step").
- ``landmark_input`` (default off; the paper's encoder reads pixels only): the encoder also reads the
  crop's 68 landmarks (`facerep.nn.landmark_input.LandmarkHeads`: similarity-normalised, standardised,
  jittered in training) and adds their heads' outputs to the identity, expression and pose codes. The
  heads start at zero, so training starts from the image-only encoder. Measured on the demo world
  (benchmarks/RESULTS.md, "The landmarks already hold the identity"): held-out identity error falls
  much faster; callers then must pass landmarks (the `Encoder` contract). `encode_landmarks` gives
  the heads' codes alone, for a landmark pre-training stage (`train.landmark_pretrain`).
- ``start_from`` (with ``landmark_input``): ``image`` (default) starts the landmark heads at zero, i.e.
  exactly the image-only encoder; ``landmarks`` starts the image's identity and expression heads at
  zero instead and the landmark heads at small random weights (N(0, 0.01)), so the codes are the
  landmark heads' alone until training moves the image heads: after a landmark pre-training stage the
  image training starts at the pre-trained landmark solution and learns what the pixels add to it.
  (Small random weights, not zero: a zero head feeding a zero-started decoder, such as the linear 3DMM
  one, would never move.)
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from facerep.core.interfaces import Encoder, encoder_landmarks
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Codes, CodeSizes
from facerep.nn.landmark_input import LandmarkHeads

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Where the identity and expression codes start (``start_from``).
START_FROM = ("image", "landmarks")
_ARCHS = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from a local torchvision (``torch.save``) or safetensors file.

    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``module.`` prefix (DDP) are unwrapped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"encoder weights file {str(path)!r} does not exist (resnet 'weights' must be a local file "
            "path to a torchvision or safetensors state dict; facerep never downloads weights)"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle with arbitrary objects, or not a torch file at all
            raise ValueError(
                f"could not read encoder weights {str(path)!r} as a torch state dict: {exc}"
            ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"encoder weights {str(path)!r} hold a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


class ResNetEncoder(Encoder):
    """ResNet backbone + four linear heads -> Codes.

    Args:
        depth: 18, 34 or 50 (torchvision architectures).
        weights: local path of backbone weights (torchvision ``.pth`` or ``.safetensors``), or None for
            random initialisation.
        id_dim, exp_dim, pose_dim, light_dim: code sizes (defaults: `CodeSizes`, the paper's).
        channels_last: keep convolution weights and activations in NHWC memory order (measured
            faster on CPU; the usual choice on GPUs, not measured here; numerically the same up to
            summation order).
        maxpool: the ImageNet stem's 3x3 max-pool (stride 2). ``False`` keeps twice the resolution in
            every later stage (for small inputs: layer4 at 4x4 instead of 2x2 for 64 px images) at about
            four times the backbone's multiply-adds; skips then come at strides 2, 2, 4, 8, 16.
        landmark_input: also read the crop's (B, 68, 2) landmarks (see the module docstring); the
            encoder then `reads_landmarks` and callers must pass them.
        landmark_hidden: width of the landmark heads' hidden layer (0: linear heads).
        landmark_noise: training-time jitter of the input landmarks, fraction of their box size.
        start_from: ``image`` or ``landmarks``: which branch the identity and expression codes start
            from (see the module docstring; ``landmarks`` needs ``landmark_input``).

    ``forward(images (B, 3, H, W) in [0, 1]) -> Codes`` with skips finest first, channels
    ``skip_channels`` (e.g. [64, 64, 128, 256, 512] for depth 18, [64, 256, 512, 1024, 2048] for 50) at
    strides 2, 4, 8, 16, 32.
    """

    def __init__(
        self,
        depth: int = 50,
        weights: str | None = None,
        id_dim: int = CodeSizes.identity,
        exp_dim: int = CodeSizes.expression,
        pose_dim: int = CodeSizes.pose,
        light_dim: int = CodeSizes.light,
        channels_last: bool = True,
        maxpool: bool = True,
        landmark_input: bool = False,
        landmark_hidden: int = 0,
        landmark_noise: float = 0.02,
        start_from: str = "image",
    ) -> None:
        super().__init__()
        if depth not in _ARCHS:
            raise ValueError(f"resnet encoder depth must be one of {sorted(_ARCHS)}, got {depth}")
        if start_from not in START_FROM:
            raise ValueError(f"resnet encoder start_from must be one of {START_FROM}, got {start_from!r}")
        if start_from == "landmarks" and not landmark_input:
            raise ValueError("resnet encoder start_from: landmarks needs landmark_input: true")
        backbone = _ARCHS[depth](weights=None)
        if weights is not None:
            self._load_backbone(backbone, weights)
        self.depth = depth
        self.stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu)
        self.maxpool = backbone.maxpool if maxpool else nn.Identity()
        self.layers = nn.ModuleList([backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4])
        feature_dim = backbone.fc.in_features
        self.feature_dim = feature_dim
        self.id_head = nn.Linear(feature_dim, id_dim)
        self.exp_head = nn.Linear(feature_dim, exp_dim)
        self.pose_head = nn.Linear(feature_dim, pose_dim)
        self.light_head = nn.Linear(feature_dim, light_dim)
        for head in (self.pose_head, self.light_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.code_sizes = CodeSizes(identity=id_dim, expression=exp_dim, pose=pose_dim, light=light_dim)
        self.reads_landmarks = bool(landmark_input)
        self.landmark_heads = (
            LandmarkHeads(
                {"identity": id_dim, "expression": exp_dim, "pose": pose_dim},
                hidden=landmark_hidden,
                noise=landmark_noise,
            )
            if landmark_input
            else None
        )
        if start_from == "landmarks":
            self._start_from_landmarks()
        expansion = 4 if depth >= 50 else 1
        self.skip_channels = [64] + [c * expansion for c in (64, 128, 256, 512)]
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.channels_last = channels_last
        if channels_last:  # 4-D weights only; `.to(device)` and `load_state_dict` keep this order
            self.to(memory_format=torch.channels_last)

    def _start_from_landmarks(self) -> None:
        """Image identity / expression heads at zero, landmark heads' last layers at N(0, 0.01)."""
        for head in (self.id_head, self.exp_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.landmark_heads.start_small(["identity", "expression"], 0.01)

    @staticmethod
    def _load_backbone(backbone: nn.Module, weights: str) -> None:
        state = load_state_dict_file(weights)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        expected = {k for k in backbone.state_dict() if not k.startswith("fc.")}
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"encoder weights {weights!r} do not match a torchvision "
                f"{type(backbone).__name__} of this depth: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}), unexpected "
                f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''} ({len(unexpected)})"
            )
        try:
            backbone.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise ValueError(f"encoder weights {weights!r} do not fit the backbone: {exc}") from exc

    def features(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, 3, H, W) in [0, 1] -> (pooled features (B, feature_dim), skips finest first)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"resnet encoder expects (B, 3, H, W) images, got {tuple(images.shape)}")
        x = (images - self.pixel_mean) / self.pixel_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        skips = [x]
        x = self.maxpool(x)
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1), skips

    def encode_landmarks(self, landmarks: Tensor) -> dict[str, Tensor]:
        """(B, 68, 2) landmarks in pixels -> {identity, expression, pose: (B, D)}: the landmark heads'
        codes, what `forward` adds to the image's (only with ``landmark_input``)."""
        if self.landmark_heads is None:
            return super().encode_landmarks(landmarks)
        if landmarks.dim() != 3 or tuple(landmarks.shape[1:]) != (68, 2):
            raise ValueError(f"landmarks must be (B, 68, 2) pixels, got {tuple(landmarks.shape)}")
        return self.landmark_heads(landmarks)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        """(B, 3, H, W) images in [0, 1] (and their (B, 68, 2) landmarks in pixels, the `Encoder`
        contract; read only with ``landmark_input``) -> Codes (identity, expression, pose, light, skips)."""
        pooled, skips = self.features(images)
        identity, expression, pose = self.id_head(pooled), self.exp_head(pooled), self.pose_head(pooled)
        if self.landmark_heads is not None:
            offsets = self.landmark_heads(encoder_landmarks(self, images, landmarks))
            identity = identity + offsets["identity"]
            expression = expression + offsets["expression"]
            pose = pose + offsets["pose"]
        return Codes(
            identity=identity,
            expression=expression,
            pose=pose,
            light=self.light_head(pooled),
            skips=skips,
        )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "encoder",
            "resnet",
            ResNetEncoder,
            "ResNet-18/34/50 backbone + identity/expression/pose/light heads, skips for U-Net decoders",
        )
    ]
