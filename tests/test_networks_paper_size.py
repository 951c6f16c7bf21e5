"""The paper-size networks on the 37k-vertex synthetic template (slow: builds the template and hierarchy)."""

from __future__ import annotations

import pytest
import torch

from facerep.core.types import CodeSizes
from facerep.plugins.critics.gcn import GCNCritic
from facerep.plugins.decoders.gcn import GCNAlbedoDecoder, GCNShapeDecoder
from facerep.plugins.decoders.linear import LinearShapeDecoder
from facerep.plugins.decoders.unet_albedo import UNetAlbedoDecoder
from facerep.plugins.encoders.resnet import ResNetEncoder
from facerep.plugins.facemodels.synthetic import synthetic

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def face_model():  # noqa: ANN201 - SyntheticFaceModel
    return synthetic(vertices=37202)


def test_paper_size_networks_have_the_documented_shapes(face_model) -> None:  # noqa: ANN001
    n = face_model.num_vertices
    mean = torch.as_tensor(face_model.mean, dtype=torch.float32)
    torch.manual_seed(0)
    identity, expression = torch.randn(2, 128), torch.randn(2, 64)
    shape = GCNShapeDecoder(face_model, CodeSizes())
    v = shape(identity, expression)
    assert v.shape == (2, n, 3) and (v - mean).norm(dim=-1).max() < 1.0
    v.sum().backward()
    assert shape.net.head.weight.grad.abs().sum() > 0
    albedo = GCNAlbedoDecoder(face_model, CodeSizes())(identity)
    assert albedo.shape == (2, n, 3) and albedo.min() >= 0 and albedo.max() <= 1
    assert LinearShapeDecoder(face_model, CodeSizes())(identity, expression).shape == (2, n, 3)
    critic = GCNCritic(face_model)
    x = face_model.sample(2).float().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    grad.flatten(1).norm(dim=1).pow(6).mean().backward()
    assert critic.blocks[0].weight.grad is not None
    encoder = ResNetEncoder(depth=50)
    with torch.no_grad():
        codes = encoder(torch.rand(1, 3, 224, 224))
        uv_albedo = UNetAlbedoDecoder(face_model, encoder, encoder.code_sizes, uv_size=256)(
            codes.identity, codes.skips
        )
    assert codes.identity.shape == (1, 128) and [s.shape[-1] for s in codes.skips] == [112, 56, 28, 14, 7]
    assert uv_albedo.shape == (1, n, 3)
