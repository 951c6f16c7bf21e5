"""The spiral decoder: spiral sequences, the convolution, facerep's contract checks, and training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from facerep.core.recipe import load_recipe
from facerep.core.registry import get_registry
from facerep.testing import parametrize_with_checks, tiny_context, tiny_face_model
from facerep.train.recipe_check import check_recipe

from facerep_plugin_example.decoder import SpiralConv
from facerep_plugin_example.spirals import neighbours, spiral_indices

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "spiral.yaml"
TINY = {"type": "spiral", "channels": [16, 8, 8, 8], "length": 9}


def _grid(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """An n x n planar grid in the z = 0 plane, triangles counter-clockwise seen from +z."""
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)
    tris = []
    for j in range(n - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i, (j + 1) * n + i + 1
            tris += [(a, b, d), (a, d, c)]
    return vertices, np.asarray(tris)


def test_spirals_start_at_the_vertex_then_walk_its_rings_counter_clockwise_from_up() -> None:
    vertices, tris = _grid()
    centre = 12  # (2, 2)
    spirals = spiral_indices(vertices, tris, 13)
    ring = set(neighbours(tris, 25)[centre].tolist())
    assert spirals[centre, 0] == centre
    assert set(spirals[centre, 1 : 1 + len(ring)].tolist()) == ring
    first = vertices[spirals[centre, 1]] - vertices[centre]
    assert first[0] == 0 and first[1] == 1  # straight up (+y) comes first
    second = vertices[spirals[centre, 2]] - vertices[centre]
    assert np.cross(first, second)[2] > 0  # then counter-clockwise about +z
    assert spirals[centre, 1 + len(ring)] not in ring | {centre}  # the 2-ring follows


def test_short_meshes_are_padded_with_n() -> None:
    spirals = spiral_indices(np.eye(3), np.array([[0, 1, 2]]), 5)
    assert spirals.shape == (3, 5)
    assert (spirals[:, 3:] == 3).all() and sorted(spirals[0, :3].tolist()) == [0, 1, 2]


def test_spirals_are_deterministic_on_the_face_model() -> None:
    fm = tiny_face_model()
    a = spiral_indices(fm.template, fm.triangles, 9)
    assert np.array_equal(a, spiral_indices(fm.template.copy(), fm.triangles.copy(), 9))
    assert (a[:, 0] == np.arange(fm.num_vertices)).all()


def test_spiral_conv_is_a_gather_and_a_linear_layer() -> None:
    vertices, tris = _grid(4)
    spirals = spiral_indices(vertices, tris, 4)
    conv = SpiralConv(spirals, 2, 1)
    with torch.no_grad():
        conv.linear.weight.zero_()
        conv.linear.weight[0, 2] = 1.0  # channel 0 of the second spiral entry
    x = torch.randn(3, 16, 2)
    expected = torch.cat([x, torch.zeros(3, 1, 2)], 1)[:, torch.as_tensor(spirals[:, 1]), 0]
    assert torch.allclose(conv(x)[..., 0], expected)


@parametrize_with_checks([("shape_decoder", TINY)])
def test_spiral_decoder_contract(subject, check) -> None:  # noqa: ANN001 - facerep.testing objects
    check(subject)


def test_recipe_swaps_the_decoder_and_validates() -> None:
    recipe = load_recipe(RECIPE)
    stage = recipe.stage(recipe.stage_names()[0])
    assert stage.get("model.shape_decoder") == {
        "type": "spiral",
        "channels": [64, 32, 16, 16],
        "length": 9,
        "factor": 4,
    }
    assert ("gcn_albedo", "model.shape_decoder", "shape_decoder:spiral") in check_recipe(recipe)


def test_a_few_steps_fit_a_face() -> None:
    context = tiny_context()
    torch.manual_seed(0)
    decoder = get_registry().build("shape_decoder", TINY, context)
    fm = context["face_model"]
    target = fm.sample(2, generator=torch.Generator().manual_seed(1))
    identity, expression = torch.randn(2, 128), torch.randn(2, 64)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = (decoder(identity, expression) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
