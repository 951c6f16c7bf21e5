"""Model assembly: code sizes are set on the encoder alone and reach every other component."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from facerep.common.errors import RecipeError
from facerep.common.paths import cache_dir
from facerep.core.model import build_model, encoder_code_sizes
from facerep.core.recipe import load_recipe
from facerep.core.registry import get_registry
from facerep.core.types import CodeSizes

TINY = """\
extends: gcn_albedo_only
face_model:
  vertices: 600
model:
  encoder:
    depth: 18
{encoder}  shape_decoder:
    channels: [8, 8]
    K: 2
{shape_decoder}  albedo_decoder:
    channels: [8, 8]
    K: 2
"""


def _stage(tmp_path: Path, encoder: str = "", shape_decoder: str = ""):  # noqa: ANN202 - a recipe stage
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(encoder=encoder, shape_decoder=shape_decoder))
    return path, load_recipe(path)


def _context(stage) -> dict:  # noqa: ANN001
    registry = get_registry()
    context = {"cache_dir": cache_dir(), "device": torch.device("cpu"), "image_size": 32, "num_identities": 2}
    context["face_model"] = registry.build("facemodel", stage.get("face_model"), context)
    return context


def test_the_encoders_code_sizes_reach_the_decoders_and_the_context(tmp_path: Path) -> None:
    _, stage = _stage(tmp_path, encoder="    id_dim: 16\n    exp_dim: 8\n")
    context = _context(stage)
    model = build_model(stage, context, get_registry())
    assert context["code_sizes"] == CodeSizes(identity=16, expression=8)
    assert isinstance(context["code_sizes"], CodeSizes) and context["code_sizes"] == dict(
        context["code_sizes"]
    )
    assert (model.shape_decoder.id_dim, model.shape_decoder.exp_dim, model.albedo_decoder.id_dim) == (
        16,
        8,
        16,
    )
    recon = model(torch.rand(2, 3, 32, 32))
    assert recon.codes.identity.shape == (2, 16) and recon.vertices.shape == (2, 600, 3)


@pytest.mark.parametrize(
    ("lines", "address", "words"),
    [
        ("    id_dim: 16\n", "model.shape_decoder.id_dim", "has no argument 'id_dim'"),
        ("    code_sizes: {identity: 16}\n", "model.shape_decoder.code_sizes", "provided by the run"),
    ],
)
def test_a_code_size_set_on_a_decoder_is_a_recipe_error_at_its_key(
    tmp_path: Path, lines: str, address: str, words: str
) -> None:
    path, stage = _stage(tmp_path, shape_decoder=lines)
    with pytest.raises(RecipeError) as info:
        build_model(stage, _context(stage), get_registry())
    assert info.value.address == address and info.value.where == f"{path}:10" and words in info.value.message


@pytest.mark.parametrize(
    ("lines", "key"), [("    light_dim: 30\n", "light_dim"), ("    pose_dim: 7\n", "pose_dim")]
)
def test_an_encoder_code_size_the_renderer_cannot_read_is_a_recipe_error_at_its_key(
    tmp_path: Path, lines: str, key: str
) -> None:
    path, stage = _stage(tmp_path, encoder=lines)
    with pytest.raises(RecipeError) as info:
        build_model(stage, _context(stage), get_registry())
    assert info.value.address == f"model.encoder.{key}" and info.value.where == f"{path}:7"
    code, have, needed = ("light", 30, 27) if key == "light_dim" else ("pose", 7, 6)
    assert info.value.message == (
        f"the encoder's {code} code has {have} values, the renderer 'sh_rasterizer' reads {needed}: "
        f"set the encoder's {code} size to {needed}"
    )


def test_an_encoder_without_usable_code_sizes_is_named() -> None:
    class Odd(nn.Module):
        code_sizes = {"identity": 8, "expression": 4}  # no pose, no light

    with pytest.raises(RecipeError, match="missing \\['pose', 'light'\\]") as info:
        encoder_code_sizes(Odd(), where="r.yaml:3")  # type: ignore[arg-type]
    assert info.value.address == "model.encoder" and info.value.where == "r.yaml:3"


def test_code_sizes_is_a_frozen_validated_mapping() -> None:
    sizes = CodeSizes(identity=16)
    assert dict(sizes) == {"identity": 16, "expression": 64, "pose": 6, "light": 27}
    assert sizes["light"] == 27 and len(sizes) == 4 and CodeSizes.of(dict(sizes)) == sizes
    assert hash(sizes) == hash(CodeSizes(identity=16))
    with pytest.raises(KeyError, match="no code named 'shape'"):
        sizes["shape"]
    with pytest.raises(ValueError, match="'expression' must be a positive integer"):
        CodeSizes(expression=0)
    with pytest.raises(ValueError, match="unknown \\['albedo'\\]"):
        CodeSizes.of({**sizes, "albedo": 3})
    with pytest.raises(AttributeError):
        sizes.identity = 3  # type: ignore[misc]
