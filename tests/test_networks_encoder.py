"""Encoder ``resnet``: codes, skips, initialisation, gradients, local weight files, registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from facerep.core.registry import build
from facerep.core.types import Codes
from facerep.plugins.encoders.resnet import ResNetEncoder, load_state_dict_file


@pytest.fixture(scope="module")
def encoder() -> ResNetEncoder:
    torch.manual_seed(0)
    return ResNetEncoder(depth=18)


def test_codes_and_skips_have_the_documented_shapes(encoder: ResNetEncoder) -> None:
    codes = encoder(torch.rand(2, 3, 64, 64))
    assert isinstance(codes, Codes)
    assert codes.identity.shape == (2, 128) and codes.expression.shape == (2, 64)
    assert codes.pose.shape == (2, 6) and codes.light.shape == (2, 27)
    assert encoder.code_sizes == {"identity": 128, "expression": 64, "pose": 6, "light": 27}
    assert encoder.skip_channels == [64, 64, 128, 256, 512]
    assert [s.shape[1] for s in codes.skips] == encoder.skip_channels
    assert [s.shape[-1] for s in codes.skips] == [32, 16, 8, 4, 2]  # finest first: strides 2..32


def test_input_size_is_free_and_code_sizes_configurable() -> None:
    enc = ResNetEncoder(depth=18, id_dim=32, exp_dim=8, pose_dim=6, light_dim=27).eval()
    for size in (64, 96):
        codes = enc(torch.rand(1, 3, size, size))
        assert codes.identity.shape == (1, 32) and codes.expression.shape == (1, 8)
        assert codes.skips[0].shape[-1] == size // 2
    assert ResNetEncoder(depth=50).skip_channels == [64, 256, 512, 1024, 2048]


def test_without_max_pool_every_stage_keeps_twice_the_resolution() -> None:
    encoder = ResNetEncoder(depth=18, maxpool=False).eval()
    with torch.no_grad():
        codes = encoder(torch.rand(2, 3, 64, 64))
    assert [s.shape[-1] for s in codes.skips] == [32, 32, 16, 8, 4]  # strides 2, 2, 4, 8, 16
    assert codes.identity.shape == (2, 128) and codes.pose.shape == (2, 6)


def test_pose_and_light_start_at_zero_frontal_ambient(encoder: ResNetEncoder) -> None:
    codes = encoder(torch.rand(3, 3, 64, 64))
    assert codes.pose.abs().max() == 0 and codes.light.abs().max() == 0
    assert codes.identity.abs().max() > 0


def test_gradients_reach_every_parameter(encoder: ResNetEncoder) -> None:
    encoder.zero_grad()
    codes = encoder(torch.rand(2, 3, 64, 64))
    loss = (
        sum(c.square().sum() for c in (codes.identity, codes.expression))
        + codes.pose.sum()
        + codes.light.sum()
    )
    loss.backward()
    missing = [n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_imagenet_normalisation_is_inside(encoder: ResNetEncoder) -> None:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    x = (torch.ones(1, 3, 8, 8) * mean - encoder.pixel_mean) / encoder.pixel_std
    assert x.abs().max() < 1e-6
    assert "pixel_mean" not in encoder.state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_load_from_a_local_torchvision_or_safetensors_file(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        reference.bn1.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / f"resnet18{suffix}"
    state = reference.state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    enc = ResNetEncoder(depth=18, weights=str(path)).eval()
    reference.eval()
    x = torch.rand(2, 3, 64, 64)
    normalised = (x - enc.pixel_mean) / enc.pixel_std
    expected = torch.flatten(
        torch.nn.functional.adaptive_avg_pool2d(
            torch.nn.Sequential(*list(reference.children())[:-2])(normalised), 1
        ),
        1,
    )
    pooled, _ = enc.features(x)
    torch.testing.assert_close(pooled, expected)
    # a DDP-style wrapper with a "module." prefix loads too
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    assert set(load_state_dict_file(wrapped)) == set(state)


def test_bad_weight_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ResNetEncoder(depth=18, weights=str(tmp_path / "absent.pth"))
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="do not match"):
        ResNetEncoder(depth=18, weights=str(wrong))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        ResNetEncoder(depth=18, weights=str(junk))
    with pytest.raises(ValueError, match="depth"):
        ResNetEncoder(depth=101)


def test_registry_builds_the_encoder_from_a_recipe_node() -> None:
    enc = build("encoder", {"type": "resnet", "depth": 18, "id_dim": 16})
    assert isinstance(enc, ResNetEncoder) and enc.code_sizes["identity"] == 16


def test_channels_last_computes_what_nchw_computes() -> None:
    """NHWC memory order is a speed setting: same codes, skips and gradients as NCHW, same state dict."""
    torch.manual_seed(0)
    nhwc = ResNetEncoder(depth=18)
    nchw = ResNetEncoder(depth=18, channels_last=False)
    nchw.load_state_dict(nhwc.state_dict())
    assert nhwc.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not nhwc.stem[0].weight.is_contiguous()
    assert nchw.stem[0].weight.is_contiguous()
    x = torch.rand(3, 3, 64, 64)
    a, b = nhwc(x), nchw(x)
    assert a.skips[2].is_contiguous(memory_format=torch.channels_last)
    for u, v in zip([a.identity, a.expression, *a.skips], [b.identity, b.expression, *b.skips], strict=True):
        torch.testing.assert_close(u, v, rtol=1e-3, atol=1e-4)  # summation order only
    (a.identity.square().sum() + a.skips[3].mean()).backward()
    (b.identity.square().sum() + b.skips[3].mean()).backward()
    for (name, p), q in zip(nhwc.named_parameters(), nchw.parameters(), strict=True):
        if q.grad is None:  # heads outside the loss
            assert p.grad is None, name
            continue
        assert (p.grad - q.grad).norm() <= 1e-4 * q.grad.norm(), name
    # the order survives moves and loading; checkpoints store plain contiguous tensors
    moved = ResNetEncoder(depth=18).to("cpu")
    moved.load_state_dict(nchw.state_dict())
    assert moved.layers[0][0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
