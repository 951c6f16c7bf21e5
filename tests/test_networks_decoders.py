"""Decoders gcn (shape, albedo), linear (shape), unet (albedo) and critic gcn on the 2k synthetic template."""

from __future__ import annotations

import pytest
import torch

from facerep.core.registry import build
from facerep.core.types import CodeSizes
from facerep.geometry.shape_prior import prior_shape_scale
from facerep.plugins.critics.gcn import GCNCritic
from facerep.plugins.decoders.gcn import GCNAlbedoDecoder, GCNShapeDecoder
from facerep.plugins.decoders.linear import LinearShapeDecoder
from facerep.plugins.decoders.unet_albedo import UNetAlbedoDecoder
from facerep.plugins.encoders.resnet import ResNetEncoder
from facerep.plugins.facemodels.synthetic import synthetic

SMALL = {"channels": (16, 16, 8, 8), "K": 3}  # fast variants for gradient checks


@pytest.fixture(scope="module")
def face_model():  # noqa: ANN201 - SyntheticFaceModel
    return synthetic(vertices=2000)


@pytest.fixture(scope="module")
def mean(face_model) -> torch.Tensor:  # noqa: ANN001
    return torch.as_tensor(face_model.mean, dtype=torch.float32)


def _all_parameters_have_gradients(module: torch.nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]


def _randomise_zero_initialised_layers(module: torch.nn.Module) -> None:
    """The output layers start at zero (so no gradient flows past them); give them values to test the rest."""
    with torch.no_grad():
        for p in module.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)


def test_gcn_shape_decoder_untrained_outputs_the_mean_shape(face_model, mean) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    dec = GCNShapeDecoder(face_model, CodeSizes())
    v = dec(torch.randn(3, 128), torch.randn(3, 64))
    assert v.shape == (3, face_model.num_vertices, 3)
    assert (v - mean).norm(dim=-1).max() < 1.0
    assert dec.net.coarse_vertices < face_model.num_vertices / 16
    assert set(dec.state_dict()) == {n for n, _ in dec.named_parameters()}  # no sparse or derived buffers


def test_gcn_shape_decoder_gradients_reach_every_parameter(face_model) -> None:  # noqa: ANN001
    dec = GCNShapeDecoder(face_model, code_sizes=CodeSizes(identity=16, expression=8), **SMALL)
    (dec(torch.randn(2, 16), torch.randn(2, 8)).sum()).backward()
    assert dec.net.head.weight.grad.abs().sum() > 0  # the zero-initialised head learns first
    dec.zero_grad()
    _randomise_zero_initialised_layers(dec)
    identity = torch.randn(2, 16, requires_grad=True)
    (dec(identity, torch.randn(2, 8)).square().sum()).backward()
    assert not _all_parameters_have_gradients(dec)
    assert identity.grad.abs().sum() > 0


def test_gcn_albedo_decoder_starts_at_the_mean_albedo_inside_unit_range(face_model) -> None:  # noqa: ANN001
    dec = GCNAlbedoDecoder(face_model, code_sizes=CodeSizes(identity=16), **SMALL)
    albedo = dec(torch.randn(2, 16))
    expected = torch.as_tensor(face_model.albedo_mean, dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
    torch.testing.assert_close(albedo, expected.expand_as(albedo), atol=1e-5, rtol=1e-5)
    _randomise_zero_initialised_layers(dec)
    with torch.no_grad():
        dec.net.head.weight.mul_(1000)  # saturate: output must stay in (0, 1)
    out = dec(torch.randn(2, 16) * 10)
    assert out.min() >= 0 and out.max() <= 1
    dec.zero_grad()
    _randomise_zero_initialised_layers(dec)
    dec(torch.randn(2, 16)).square().sum().backward()
    assert not _all_parameters_have_gradients(dec)


def test_linear_decoder_is_the_face_models_linear_shape(face_model, mean) -> None:  # noqa: ANN001
    dec = LinearShapeDecoder(face_model, CodeSizes())
    identity, expression = torch.randn(2, 128), torch.randn(2, 64)
    torch.testing.assert_close(dec(identity, expression), mean.expand(2, -1, -1))
    torch.nn.init.normal_(dec.fc.weight, std=0.05)
    v = dec(identity, expression)
    alpha_id, alpha_exp = dec.last_coefficients
    assert alpha_id.shape == (2, face_model.num_id) and alpha_exp.shape == (2, face_model.num_exp)
    torch.testing.assert_close(v, face_model.shape(alpha_id, alpha_exp).float(), atol=1e-3, rtol=1e-4)
    v.sum().backward()
    assert not _all_parameters_have_gradients(dec)


def test_separate_linear_decoder_keeps_identity_and_expression_apart(face_model, mean) -> None:  # noqa: ANN001
    dec = LinearShapeDecoder(face_model, CodeSizes(), separate=True)
    identity, expression = torch.randn(2, 128), torch.randn(2, 64)
    torch.testing.assert_close(dec(identity, expression), mean.expand(2, -1, -1))
    for layer in (dec.fc_id, dec.fc_exp):
        torch.nn.init.normal_(layer.weight, std=0.05)
    v = dec(identity, expression)
    alpha_id, alpha_exp = dec.last_coefficients
    torch.testing.assert_close(v, face_model.shape(alpha_id, alpha_exp).float(), atol=1e-3, rtol=1e-4)
    # the identity coefficients ignore the expression code; a zero expression code is the neutral face
    dec(identity, torch.randn(2, 64))
    torch.testing.assert_close(dec.last_coefficients[0], alpha_id)
    neutral = dec(identity, torch.zeros(2, 64))
    torch.testing.assert_close(
        neutral, face_model.shape(alpha_id, torch.zeros_like(alpha_exp)).float(), atol=1e-3, rtol=1e-4
    )
    v.sum().backward()
    assert not _all_parameters_have_gradients(dec)


def test_linear_decoder_detail_learns_shapes_outside_the_3dmm_span(face_model, mean) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    plain = LinearShapeDecoder(face_model, CodeSizes())
    dec = LinearShapeDecoder(face_model, CodeSizes(), detail=True)
    assert plain.detail is None and dec.detail.weight.shape == (face_model.num_vertices * 3, 128)
    identity, expression = torch.randn(4, 128), torch.randn(4, 64)
    torch.testing.assert_close(dec(identity, expression), mean.expand(4, -1, -1))  # zero at the start
    # a target off the linear span: the plain decoder's best is its projection, the detail gets closer
    alpha_id = torch.randn(4, face_model.num_id) * torch.as_tensor(face_model.id_std)
    target = face_model.true_shape(alpha_id).float()
    fit_id, fit_exp = face_model.fit(target)
    floor = (face_model.shape(fit_id, fit_exp).float() - target).pow(2).sum(-1).mean()
    losses = {}
    for name, decoder in (("plain", plain), ("detail", dec)):
        optimiser = torch.optim.Adam(decoder.parameters(), lr=1e-2)
        for _ in range(300):
            loss = (decoder(identity, expression) - target).pow(2).sum(-1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        losses[name] = float(loss.detach())
    assert losses["plain"] > 0.9 * float(floor)  # the 3DMM's own limit
    assert losses["detail"] < 0.1 * float(floor)
    # the detail reads the identity code only: its offsets are the same under any expression code
    offsets = []
    for codes in (expression, torch.zeros(4, 64)):
        with torch.no_grad():
            shape = dec(identity, codes)
            offsets.append(shape - face_model.shape(*dec.last_coefficients).float())
    assert offsets[0].abs().max() > 0.1
    torch.testing.assert_close(offsets[0], offsets[1], atol=1e-3, rtol=1e-4)


def test_unet_albedo_decoder_maps_skips_to_a_uv_albedo_sampled_at_vertices(face_model) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    encoder = ResNetEncoder(depth=18)
    dec = UNetAlbedoDecoder(face_model, encoder, encoder.code_sizes, uv_size=64)
    assert dec.uses_skips
    codes = encoder(torch.rand(2, 3, 64, 64))
    albedo = dec(codes.identity, codes.skips)
    assert albedo.shape == (2, face_model.num_vertices, 3)
    assert dec.last_uv_map.shape == (2, 3, 64, 64)
    # untrained: the mean albedo, up to its nearest-vertex splat into the 64 x 64 UV map
    expected = torch.as_tensor(face_model.albedo_mean, dtype=torch.float32)
    assert (albedo - expected).abs().mean() < 0.02
    _randomise_zero_initialised_layers(dec)
    encoder.zero_grad()
    codes = encoder(torch.rand(2, 3, 64, 64))
    dec(codes.identity, codes.skips).square().sum().backward()
    assert not _all_parameters_have_gradients(dec)
    assert encoder.stem[0].weight.grad.abs().sum() > 0  # the bridges carry gradients into the encoder
    with pytest.raises(ValueError, match="skips"):
        dec(codes.identity, None)


def test_unet_uv_sampling_reads_the_texel_under_each_vertex(face_model) -> None:  # noqa: ANN001
    encoder = ResNetEncoder(depth=18)
    dec = UNetAlbedoDecoder(face_model, encoder, encoder.code_sizes, uv_size=32)
    # a UV map whose red channel is u and green channel is v (row 0 = top = v 1)
    centres = (torch.arange(32) + 0.5) / 32
    uv_map = torch.stack(
        [centres.expand(32, 32), centres.flip(0)[:, None].expand(32, 32), torch.zeros(32, 32)]
    )
    sampled = torch.nn.functional.grid_sample(
        uv_map[None], dec.grid, mode="bilinear", padding_mode="border", align_corners=False
    )[0, :, 0, :].T
    uv = torch.as_tensor(face_model.uv, dtype=torch.float32)
    inside = ((uv > 0.5 / 32) & (uv < 1 - 0.5 / 32)).all(1)
    torch.testing.assert_close(sampled[inside, :2], uv[inside], atol=1e-5, rtol=0)


def test_gcn_critic_scores_shapes_and_supports_the_gradient_penalty(face_model) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    critic = GCNCritic(face_model, channels=(8, 16, 16, 32), K=3)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    real = face_model.sample(3).float().requires_grad_(True)
    scores = critic(real)
    assert scores.shape == (3,)
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    penalty = grad.flatten(1).norm(dim=1).pow(6).mean()  # WGAN-div, p = 6
    (penalty + scores.mean()).backward()
    assert not _all_parameters_have_gradients(critic)
    # per-sample: one shape's score does not depend on another's
    a = face_model.sample(2).float()
    b = a.clone()
    b[1] += 5.0
    torch.testing.assert_close(critic(a)[0], critic(b)[0])


def test_critic_double_backward_is_exact_in_double_precision(face_model) -> None:  # noqa: ANN001
    critic = GCNCritic(face_model, channels=(2, 2, 2, 2), K=2).double()
    x = face_model.sample(1).double().requires_grad_(True)
    assert torch.autograd.gradgradcheck(critic, (x,), fast_mode=True, atol=1e-4)


def test_registry_builds_every_network_with_injected_context(face_model) -> None:  # noqa: ANN001
    encoder = build("encoder", {"type": "resnet", "depth": 18})
    context = {"face_model": face_model, "encoder": encoder, "code_sizes": encoder.code_sizes}
    assert isinstance(build("shape_decoder", {"type": "gcn", **SMALL}, context), GCNShapeDecoder)
    assert isinstance(build("albedo_decoder", {"type": "gcn", "channels": [8, 8]}, context), GCNAlbedoDecoder)
    assert isinstance(build("albedo_decoder", {"type": "unet", "uv_size": 32}, context), UNetAlbedoDecoder)
    assert isinstance(build("shape_decoder", {"type": "linear"}, context), LinearShapeDecoder)
    assert isinstance(build("critic", {"type": "gcn", "channels": [8, 8], "K": 2}, context), GCNCritic)


def test_prior_scale_is_the_rms_prior_displacement(face_model, mean) -> None:  # noqa: ANN001
    samples = face_model.sample(400, generator=torch.Generator().manual_seed(0)).float()
    rms = (samples - mean).square().mean().sqrt().item()
    assert prior_shape_scale(face_model) == pytest.approx(rms, rel=0.1)
