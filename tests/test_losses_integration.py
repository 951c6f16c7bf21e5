"""Losses on the embedded synthetic face model, its renderer and its GCN critic (integration)."""

from __future__ import annotations

import pytest
import torch
from test_losses_common import FULL_LOSSES, LinearDecoder

from facerep.core.interfaces import FaceModel, LossContext
from facerep.core.registry import get_registry
from facerep.core.types import Batch, Codes, Reconstruction

SIZE = 32


@pytest.fixture(scope="module")
def world() -> dict:
    registry = get_registry()
    face_model = registry.build("facemodel", {"type": "synthetic", "vertices": 500, "seed": 0})
    context = {
        "face_model": face_model,
        "num_identities": 6,
        "code_sizes": {"identity": 128, "expression": 64, "pose": 6, "light": 27},
        "image_size": SIZE,
    }
    renderer = registry.build("renderer", {"type": "sh_rasterizer"}, context)
    losses = {key: registry.build("loss", node, context) for key, node in FULL_LOSSES.items()}
    losses["laplacian"] = registry.build("loss", {"type": "laplacian_smooth"}, context)
    return {"face_model": face_model, "renderer": renderer, "losses": losses, "context": context}


def scene(
    face_model: FaceModel, renderer: torch.nn.Module, pose: torch.Tensor
) -> tuple[Batch, Reconstruction]:
    """Two labelled rows (a pair) whose images and landmarks are renderings of their 3DMM shapes."""
    g = torch.Generator().manual_seed(0)
    a_id, a_exp = face_model.sample_coefficients(2, g)
    vertices = face_model.shape(a_id, a_exp)
    albedo = face_model.albedo().expand(2, -1, -1)
    light = torch.zeros(2, 27)
    with torch.no_grad():
        truth = renderer(vertices, albedo, pose, light)
    batch = Batch(
        images=truth.image,
        masks=truth.mask,
        landmarks=truth.landmarks_2d,
        identity=torch.tensor([0, 1]),
        labelled=torch.tensor([True, True]),
        id_params=a_id,
        exp_params=a_exp,
        pair_index=torch.tensor([1, 0]),
        sample_ids=["a.jpg", "b.jpg"],
    )
    codes = Codes(torch.zeros(2, 128), torch.zeros(2, 64), pose.clone(), light)
    codes.identity[:, : face_model.num_id] = a_id
    codes.expression[:, : face_model.num_exp] = a_exp
    recon = Reconstruction(codes, vertices, albedo, renderer(vertices, albedo, codes.pose, light))
    return batch, recon


def test_full_recipe_losses_vanish_on_an_exact_reconstruction(world: dict) -> None:
    face_model, renderer = world["face_model"], world["renderer"]
    pose = torch.tensor([[0.1, -0.2, 0.05, 0.01, -0.02, 0.0], [0.0, 0.3, 0.0, 0.0, 0.0, 0.1]])
    batch, recon = scene(face_model, renderer, pose)
    ctx = LossContext(face_model=face_model, shape_decoder=LinearDecoder(face_model), critic=None, step=0)

    def value(key: str, rec: Reconstruction = recon) -> float:
        return world["losses"][key](batch, rec, ctx).item()

    assert value("photometric") == pytest.approx(0.0, abs=1e-6)
    assert value("landmark") == pytest.approx(0.0, abs=1e-8)
    assert value("shape") == pytest.approx(0.0, abs=1e-4)
    assert value("pairwise") == pytest.approx(0.0, abs=1e-4)
    assert value("albedo_symmetry") == pytest.approx(0.0, abs=1e-5)  # the synthetic mean albedo is symmetric
    template = torch.as_tensor(face_model.template)[None]
    at_template = Reconstruction(recon.codes, template, recon.albedo)
    assert value("smooth", at_template) == pytest.approx(0.0, abs=1e-6)
    assert value("laplacian", at_template) > 0.1  # border, nose, lips and eyes are not flat


def test_landmark_and_photometric_losses_train_the_pose_through_the_renderer(world: dict) -> None:
    face_model, renderer = world["face_model"], world["renderer"]
    pose = torch.tensor([[0.0, 0.2, 0.0, 0.02, 0.0, 0.0], [0.1, -0.1, 0.0, 0.0, 0.03, 0.0]])
    batch, recon = scene(face_model, renderer, pose)
    ctx = LossContext(face_model=face_model, shape_decoder=LinearDecoder(face_model), critic=None, step=0)
    landmark, photometric = world["losses"]["landmark"], world["losses"]["photometric"]
    guess = (pose + torch.tensor([0.0, -0.15, 0.05, 0.03, -0.02, 0.1])).requires_grad_(True)
    optimiser = torch.optim.Adam([guess], lr=0.01)
    values = []
    for _ in range(15):
        recon.rendering = renderer(recon.vertices, recon.albedo, guess, recon.codes.light)
        total = landmark(batch, recon, ctx) + photometric(batch, recon, ctx)
        values.append(total.item())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    assert values[-1] < 0.5 * values[0]


def test_wgan_div_with_the_gcn_critic(world: dict) -> None:
    face_model = world["face_model"]
    critic = get_registry().build("critic", {"type": "gcn", "channels": [4, 8], "K": 3}, world["context"])
    loss = world["losses"]["adversarial"]
    real = face_model.sample(3, torch.Generator().manual_seed(1))
    fake = (real * 1.05 + 2.0).requires_grad_(True)
    value = loss.critic_loss(real, fake, critic)
    assert torch.isfinite(value)
    value.backward()
    grads = [p.grad for p in critic.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert fake.grad is None
    ctx = LossContext(face_model=face_model, critic=critic, step=0)
    batch = Batch(
        torch.zeros(3, 3, SIZE, SIZE),
        torch.zeros(3, 1, SIZE, SIZE),
        torch.zeros(3, 68, 2),
        torch.zeros(3, dtype=torch.long),
        torch.zeros(3, dtype=torch.bool),
    )
    recon = Reconstruction(Codes(*(torch.zeros(3, d) for d in (128, 64, 6, 27))), fake, real)
    generator_side = loss(batch, recon, ctx)
    generator_side.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
