"""The renderer as a rasteriser stage plus a replaceable shader: functional `render`, shader by name."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from facerep.common.errors import RecipeError
from facerep.core import registry as registry_module
from facerep.core.registry import Component, Registry, hookimpl
from facerep.geometry.render import RasterizedMesh, Shader, render
from facerep.geometry.sh import LIGHT_SIZE, SHShader, light_from_direction
from facerep.testing.fixtures import tiny_face_model

SIZE = 32


class FlatShader:
    """Unlit: the colour is the albedo; reads light codes of 5 values and ignores them."""

    light_size = 5

    def vertex_attributes(self, mesh: RasterizedMesh, light: Tensor) -> Tensor:
        return mesh.normals[..., :0]  # (B, N, 0): nothing to blend

    def shade(self, attributes: Tensor, surface: Tensor, mesh: RasterizedMesh, light: Tensor) -> Tensor:
        return surface


class _FlatPlugin:
    @hookimpl
    def facerep_components(self) -> list[Component]:
        return [Component("shader", "flat", FlatShader, "unlit: colour = albedo")]


@pytest.fixture
def with_flat_shader(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The process-wide registry with a third party's shader ``flat`` added."""
    registry = Registry()
    registry.register(_FlatPlugin(), name="flat-shader", package="third-party")
    monkeypatch.setattr(registry_module, "_DEFAULT", registry)
    return registry


def _scene(light_size: int = LIGHT_SIZE) -> tuple[object, Tensor, Tensor, Tensor, Tensor]:
    fm = tiny_face_model()
    g = torch.Generator().manual_seed(1)
    vertices = torch.as_tensor(fm.mean, dtype=torch.float32)[None].repeat(2, 1, 1)
    vertices = vertices + 0.3 * torch.randn(vertices.shape, generator=g)
    albedo = torch.rand(2, fm.num_vertices, 3, generator=g)
    pose = torch.tensor([[0.1, 0.4, 0.0, 0.0, 0.0, 0.0], [0.0, -0.3, 0.1, 0.02, 0.0, 0.1]])
    if light_size == LIGHT_SIZE:
        light = light_from_direction((0.2, 0.4, 1.0), batch=2)
    else:
        light = torch.zeros(2, light_size)
    return fm, vertices, albedo, pose, light


@pytest.mark.parametrize("shading", ["pixel", "vertex"])
@pytest.mark.parametrize("antialias", [False, True])
def test_functional_render_is_the_renderer_plugin(shading: str, antialias: bool) -> None:
    fm, vertices, albedo, pose, light = _scene()
    module = registry_module.build(
        "renderer",
        {"type": "sh_rasterizer", "shading": shading, "antialias": antialias},
        {"face_model": fm, "image_size": SIZE},
    )
    expected = module(vertices, albedo, pose, light)
    out = render(
        vertices,
        albedo,
        pose,
        light,
        torch.as_tensor(fm.triangles),
        SIZE,
        SHShader(mode=shading),
        antialias=antialias,
        neighbours=module.neighbours,
    )
    assert torch.equal(out.image, expected.image) and torch.equal(out.mask, expected.mask)
    assert torch.equal(out.depth_map, expected.depth)
    assert torch.equal(out.mesh.fragments.pix_to_face, expected.triangle_ids)
    assert torch.equal(out.visibility, expected.visibility)
    assert out.mask.sum() > 100  # the face covers the image


def test_sh_shader_follows_the_shader_contract() -> None:
    assert isinstance(SHShader(), Shader) and isinstance(FlatShader(), Shader)
    assert not isinstance(object(), Shader)
    with pytest.raises(ValueError, match="mode"):
        SHShader(mode="phong")


def test_a_third_party_shader_swaps_the_shading_alone(with_flat_shader: Registry) -> None:
    fm, vertices, albedo, pose, _ = _scene()
    renderer = registry_module.build(
        "renderer", {"type": "sh_rasterizer", "shader": "flat"}, {"face_model": fm, "image_size": SIZE}
    )
    lit = registry_module.build("renderer", {"type": "sh_rasterizer"}, {"face_model": fm, "image_size": SIZE})
    flat = renderer(vertices, albedo, pose, torch.zeros(2, 5))
    shaded = lit(vertices, albedo, pose, light_from_direction((0.2, 0.4, 1.0), batch=2))
    # the same rasterisation (coverage, depth, triangles), other colours: the albedo itself
    assert torch.equal(flat.mask, shaded.mask) and torch.equal(flat.triangle_ids, shaded.triangle_ids)
    covered = flat.mask.bool().expand_as(flat.image)
    assert not torch.allclose(flat.image, shaded.image)
    frags_albedo = render(
        vertices, albedo, pose, torch.zeros(2, 5), renderer.triangles, SIZE, FlatShader()
    ).image
    assert torch.equal(flat.image, frags_albedo)
    assert float(flat.image[covered].min()) >= 0.0 and float(flat.image[~covered].abs().max()) == 0.0
    with pytest.raises(ValueError, match=r"light must be \(2, 5\)"):
        renderer(vertices, albedo, pose, torch.zeros(2, LIGHT_SIZE))


def test_shader_options_and_unknown_shaders_are_recipe_errors(with_flat_shader: Registry) -> None:
    fm = tiny_face_model()
    context = {"face_model": fm, "image_size": SIZE}
    with pytest.raises(RecipeError, match="ambient and shading are options of the 'sh' shader"):
        registry_module.build(
            "renderer", {"type": "sh_rasterizer", "shader": "flat", "ambient": 0.5}, context
        )
    with pytest.raises(RecipeError, match="flat"):  # the known shaders are named
        registry_module.build("renderer", {"type": "sh_rasterizer", "shader": "glossy"}, context)


def test_the_renderer_says_the_light_size_its_shader_reads(with_flat_shader: Registry) -> None:
    context = {"face_model": tiny_face_model(), "image_size": SIZE}
    assert registry_module.build("renderer", {"type": "sh_rasterizer"}, context).light_size == LIGHT_SIZE
    assert (
        registry_module.build("renderer", {"type": "sh_rasterizer", "shader": "flat"}, context).light_size
        == 5
    )


class NarrowShader(FlatShader):
    """Breaks the contract: two colour channels."""

    def shade(self, attributes: Tensor, surface: Tensor, mesh: RasterizedMesh, light: Tensor) -> Tensor:
        return surface[:, :2]


class _NarrowPlugin:
    @hookimpl
    def facerep_components(self) -> list[Component]:
        return [Component("shader", "narrow", NarrowShader, "broken: two channels")]


def test_the_contract_kit_checks_shaders(with_flat_shader: Registry) -> None:
    from facerep.testing import check_component

    with_flat_shader.register(_NarrowPlugin(), name="narrow-shader", package="third-party")
    assert [(r.check, r.status) for r in check_component("shader", "sh")] == [
        ("build", "passed"),
        ("renders", "passed"),
    ]
    assert all(r.status == "passed" for r in check_component("shader", "flat", registry=with_flat_shader))
    (failed,) = [
        r for r in check_component("shader", "narrow", registry=with_flat_shader) if r.status != "passed"
    ]
    assert failed.check == "renders" and "shade(...) has shape" in failed.message and ", 3)" in failed.message
