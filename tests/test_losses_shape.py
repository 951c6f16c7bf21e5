"""Shape-space losses: shape (eq. 7), pairwise (eq. 8), smoothness (eq. 9 and conventional), albedo
symmetry (eq. 10), against hand-computed values on the tiny grid face."""

from __future__ import annotations

import pytest
import torch
from test_losses_common import TinyFaceModel, make_batch, make_context, make_recon

from facerep.core.interfaces import Loss, LossContext
from facerep.core.types import Batch, Reconstruction
from facerep.plugins.losses.albedo_symmetry import AlbedoSymmetryLoss
from facerep.plugins.losses.laplacian_smooth import LaplacianSmoothLoss
from facerep.plugins.losses.pairwise import PairwiseShapeLoss
from facerep.plugins.losses.shape import ShapeLoss
from facerep.plugins.losses.template_smooth import TemplateSmoothLoss


@pytest.fixture()
def tiny() -> TinyFaceModel:
    return TinyFaceModel()


def neighbours(face_model: TinyFaceModel) -> list[set[int]]:
    """First-order neighbours straight from the triangle list (independent of facerep.geometry)."""
    out: list[set[int]] = [set() for _ in range(face_model.num_vertices)]
    for a, b, c in face_model.triangles.tolist():
        out[a] |= {b, c}
        out[b] |= {a, c}
        out[c] |= {a, b}
    return out


def reference_umbrella(vertices: torch.Tensor, nbrs: list[set[int]]) -> torch.Tensor:
    rows = [vertices[:, i] - vertices[:, sorted(n)].mean(dim=1) for i, n in enumerate(nbrs)]
    return torch.stack(rows, dim=1)


def descend(loss: Loss, batch: Batch, recon: Reconstruction, ctx: LossContext, field: str) -> None:
    """One normalised gradient step on `field` of `recon` lowers the loss."""
    x = getattr(recon, field).clone().requires_grad_(True)
    setattr(recon, field, x)
    value = loss(batch, recon, ctx)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        setattr(recon, field, x - 1e-2 * x.grad / x.grad.norm())
    assert loss(batch, recon, ctx).item() < value.item()


# -- shape (eq. 7) -------------------------------------------------------------------------------------


def test_shape_matches_a_hand_computed_value_on_labelled_rows(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    target = tiny.shape(batch.id_params, batch.exp_params)
    recon.vertices = target.clone()
    recon.vertices[0] += 7.0  # unlabelled row: ignored
    recon.vertices[1, 0] += torch.tensor([1.0, -2.0, 0.5])
    recon.vertices[1, 5, 2] -= 1.0
    loss = ShapeLoss(face_model=tiny)
    assert loss(batch, recon, make_context(tiny)).item() == pytest.approx((3.5 + 1.0) / 20, rel=1e-5)


def test_shape_l2_warm_up_is_the_mean_squared_distance_until_l2_steps(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    recon.vertices = tiny.shape(batch.id_params, batch.exp_params).clone()
    recon.vertices[1, 0] += torch.tensor([1.0, -2.0, 0.5])  # squared distance 5.25
    recon.vertices[1, 5, 2] -= 1.0  # 1
    loss = ShapeLoss(face_model=tiny, l2_steps=3)
    ctx = make_context(tiny)
    ctx._items["step"] = 2
    assert loss(batch, recon, ctx).item() == pytest.approx((5.25 + 1.0) / 20, rel=1e-5)
    ctx._items["step"] = 3  # from l2_steps on: the paper's L1
    assert loss(batch, recon, ctx).item() == pytest.approx((3.5 + 1.0) / 20, rel=1e-5)
    with pytest.raises(Exception, match="l2_steps"):
        ShapeLoss(face_model=tiny, l2_steps=-1)


def test_shape_is_zero_at_the_target_and_zero_with_a_graph_without_labels(tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    recon.vertices = tiny.shape(batch.id_params, batch.exp_params)
    loss = ShapeLoss(face_model=tiny)
    assert loss(batch, recon, make_context(tiny)).item() == pytest.approx(0.0, abs=1e-5)
    batch.labelled[:] = False
    recon.vertices = recon.vertices.clone().requires_grad_(True)
    zero = loss(batch, recon, make_context(tiny))
    assert zero.item() == 0.0 and zero.requires_grad


def test_shape_unlabelled_rows_contribute_nothing_and_descent_works(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[True, False, True, False])
    recon = make_recon(batch, tiny)
    loss = ShapeLoss(face_model=tiny)
    ctx = make_context(tiny)
    before = loss(batch, recon, ctx).item()
    recon.vertices[[1, 3]] = torch.randn(2, 20, 3) * 100
    assert loss(batch, recon, ctx).item() == pytest.approx(before, rel=1e-6)
    descend(loss, batch, recon, ctx, "vertices")
    assert loss.applies_to == "labelled"


# -- pairwise (eq. 8) ----------------------------------------------------------------------------------


def pair_case(tiny: TinyFaceModel) -> tuple[Batch, Reconstruction, LossContext]:
    """Rows: 0 unlabelled (pointing at 3), 1 <-> 2 a labelled pair, 3 labelled without partner.

    The stand-in decoder reads the first coefficients of the codes, so codes equal to the labels
    reproduce the 3DMM exactly."""
    batch = make_batch(labelled=[False, True, True, True])
    batch.pair_index = torch.tensor([3, 2, 1, -1])
    recon = make_recon(batch, tiny)
    recon.codes.identity[:, :3] = batch.id_params
    recon.codes.expression[:, :2] = batch.exp_params
    return batch, recon, make_context(tiny)


def test_pairwise_is_zero_when_codes_reproduce_the_swapped_3dmm_shapes(tiny: TinyFaceModel) -> None:
    batch, recon, ctx = pair_case(tiny)
    loss = PairwiseShapeLoss(face_model=tiny)
    assert loss(batch, recon, ctx).item() == pytest.approx(0.0, abs=1e-6)
    (identity, expression) = ctx["shape_decoder"].calls[-1]
    # decoder([c_id,A, c_exp,B]) for A = 1, B = 2 and A = 2, B = 1
    assert torch.equal(identity, recon.codes.identity[[1, 2]])
    assert torch.equal(expression, recon.codes.expression[[2, 1]])


def test_pairwise_matches_a_hand_computed_value(tiny: TinyFaceModel) -> None:
    batch, recon, ctx = pair_case(tiny)
    recon.codes.expression[2, 0] += 1.0  # B's expression code is wrong by one unit of basis 0
    loss = PairwiseShapeLoss(face_model=tiny)
    basis = torch.as_tensor(tiny.exp_basis[0])
    # only the row (A=1, B=2) decodes row 2's expression; rows (1, 2) and (2, 1) are averaged
    expected = basis.abs().sum(dim=1).mean().item() / 2
    assert loss(batch, recon, ctx).item() == pytest.approx(expected, rel=1e-5)


def test_pairwise_ignores_unlabelled_and_unpaired_rows(tiny: TinyFaceModel) -> None:
    batch, recon, ctx = pair_case(tiny)
    recon.codes.identity[[0, 3]] += 5.0
    recon.codes.expression[[0, 3]] -= 5.0
    loss = PairwiseShapeLoss(face_model=tiny)
    assert loss(batch, recon, ctx).item() == pytest.approx(0.0, abs=1e-6)
    batch.pair_index = torch.tensor([-1, -1, 0, -1])  # partner 0 is unlabelled: no pair left
    recon.codes.identity.requires_grad_(True)
    zero = loss(batch, recon, ctx)
    assert zero.item() == 0.0 and zero.requires_grad
    batch.pair_index = None
    assert loss(batch, recon, ctx).item() == 0.0


def test_pairwise_gradient_step_reduces_the_loss(tiny: TinyFaceModel) -> None:
    batch, recon, ctx = pair_case(tiny)
    recon.codes.expression[1:] += torch.randn(3, 3)
    codes = recon.codes.expression.clone().requires_grad_(True)
    recon.codes.expression = codes
    loss = PairwiseShapeLoss(face_model=tiny)
    value = loss(batch, recon, ctx)
    value.backward()
    assert codes.grad[[0, 3]].abs().max() == 0.0
    with torch.no_grad():
        recon.codes.expression = codes - 1e-2 * codes.grad / codes.grad.norm()
    assert loss(batch, recon, ctx).item() < value.item()


# -- smoothness (eq. 9 and conventional) ---------------------------------------------------------------


def test_template_smooth_is_zero_on_the_template_while_conventional_is_not(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    template = torch.as_tensor(tiny.template)
    recon.vertices = torch.stack([template, template + torch.tensor([3.0, -1.0, 2.0])])
    ctx = make_context(tiny)
    assert TemplateSmoothLoss(face_model=tiny)(batch, recon, ctx).item() == pytest.approx(0.0, abs=1e-5)
    assert LaplacianSmoothLoss(face_model=tiny)(batch, recon, ctx).item() > 1.0


def test_smoothness_losses_match_a_reference_umbrella(tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    ctx = make_context(tiny)
    nbrs = neighbours(tiny)
    own = reference_umbrella(recon.vertices, nbrs)
    templ = reference_umbrella(torch.as_tensor(tiny.template)[None], nbrs)
    conventional = own.abs().sum(-1).mean().item()
    relative = (own - templ).abs().sum(-1).mean().item()
    assert LaplacianSmoothLoss(face_model=tiny)(batch, recon, ctx).item() == pytest.approx(
        conventional, rel=1e-5
    )
    assert TemplateSmoothLoss(face_model=tiny)(batch, recon, ctx).item() == pytest.approx(relative, rel=1e-5)


def test_template_smooth_matches_a_hand_computed_bump(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[True])
    recon = make_recon(batch, tiny)
    recon.vertices = torch.as_tensor(tiny.template)[None].clone()
    recon.vertices[0, 6, 2] += 2.0  # lift interior vertex 6 (column 1, row 1) by 2 mm
    nbrs = neighbours(tiny)
    # its umbrella grows by 2, each neighbour j's shrinks by 2 / deg(j); mean over 20 vertices
    expected = (2.0 + sum(2.0 / len(nbrs[j]) for j in nbrs[6])) / 20
    value = TemplateSmoothLoss(face_model=tiny)(batch, recon, make_context(tiny))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_flat_grid_conventional_smoothness_comes_from_the_border_only(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[True])
    recon = make_recon(batch, tiny)
    flat = torch.as_tensor(tiny.template).clone()
    flat[:, 2] = 0.0
    recon.vertices = flat[None]
    nbrs = neighbours(tiny)
    umb = reference_umbrella(flat[None], nbrs)[0]
    interior = [j * 5 + i for j in (1, 2) for i in (1, 2, 3)]
    assert umb[interior].abs().max() < 1e-5
    value = LaplacianSmoothLoss(face_model=tiny)(batch, recon, make_context(tiny))
    assert value.item() == pytest.approx(umb.abs().sum().item() / 20, rel=1e-5)


@pytest.mark.parametrize("cls", [TemplateSmoothLoss, LaplacianSmoothLoss])
def test_smoothness_gradient_step_reduces_the_loss(cls: type, tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    descend(cls(face_model=tiny), batch, recon, make_context(tiny), "vertices")


# -- albedo symmetry (eq. 10) --------------------------------------------------------------------------


def test_albedo_symmetry_is_zero_on_a_symmetric_albedo(tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    mirror = torch.as_tensor(tiny.mirror)
    recon.albedo = 0.5 * (recon.albedo + recon.albedo[:, mirror])
    assert AlbedoSymmetryLoss(face_model=tiny)(batch, recon, make_context(tiny)).item() == 0.0


def test_albedo_symmetry_matches_a_hand_computed_value(tiny: TinyFaceModel) -> None:
    batch = make_batch(labelled=[False, True])
    recon = make_recon(batch, tiny)
    recon.albedo = torch.full((2, 20, 3), 0.5)
    recon.albedo[1, 0] = torch.tensor([0.7, 0.5, 0.4])  # vertex 0 mirrors to vertex 4
    # row 1: vertices 0 and 4 each differ by .2 + .1; row 0: 0; mean over 2 rows x 20 vertices
    value = AlbedoSymmetryLoss(face_model=tiny)(batch, recon, make_context(tiny))
    assert value.item() == pytest.approx(2 * 0.3 / 40, rel=1e-5)


def test_albedo_symmetry_gradient_step_reduces_the_loss(tiny: TinyFaceModel) -> None:
    batch = make_batch()
    recon = make_recon(batch, tiny)
    descend(AlbedoSymmetryLoss(face_model=tiny), batch, recon, make_context(tiny), "albedo")
