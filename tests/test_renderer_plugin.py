"""The ``sh_rasterizer`` renderer through the registry, as a recipe builds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facerep.common.errors import RecipeError
from facerep.core.interfaces import Renderer
from facerep.core.registry import get_registry
from facerep.geometry.rasterize_primitives import ellipsoid_cap, mesh_model


def _model():  # noqa: ANN202
    v, t = ellipsoid_cap(400)
    return mesh_model(v, t)


def test_registered_and_built_with_injected_face_model_and_image_size() -> None:
    registry = get_registry()
    assert "sh_rasterizer" in registry.names("renderer")
    node = {"type": "sh_rasterizer", "antialias": True, "shading": "vertex", "ambient": 0.5}
    renderer = registry.build("renderer", node, {"face_model": _model(), "image_size": 24})
    assert isinstance(renderer, Renderer)
    assert renderer.image_size == 24 and renderer.antialias and renderer.ambient == 0.5
    v = torch.as_tensor(np.asarray(_model().mean))[None]
    out = renderer(v, torch.full_like(v, 0.5), torch.zeros(1, 6), torch.zeros(1, 27))
    assert out.image.shape == (1, 3, 24, 24)
    # ambient 0.5 with a zero light: a frontal flat region has irradiance 0.5 * 0.8862
    assert out.image[0, :, 12, 12].allclose(torch.full((3,), 0.5 * 0.5 * 0.886227), atol=0.03)


def test_recipe_arguments_are_checked() -> None:
    registry = get_registry()
    with pytest.raises(RecipeError, match="soft_edge"):
        registry.build(
            "renderer", {"type": "sh_rasterizer", "soft_edge": 1.0}, {"face_model": _model(), "image_size": 8}
        )
    with pytest.raises(ValueError, match="shading"):
        registry.build(
            "renderer",
            {"type": "sh_rasterizer", "shading": "flat"},
            {"face_model": _model(), "image_size": 8},
        )


def test_moves_with_the_module_and_keeps_buffers_out_of_the_state_dict() -> None:
    renderer = get_registry().build(
        "renderer", {"type": "sh_rasterizer"}, {"face_model": _model(), "image_size": 8}
    )
    assert renderer.state_dict() == {}
    assert renderer.double().triangles.dtype == torch.long
