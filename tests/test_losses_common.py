"""Loss plugins: shared helpers, registry builds from the paper recipe, NaN/Inf errors.

Also holds the tiny hand-made face model and batch builders the other ``test_losses_*`` files import.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from facerep.common.errors import FacerepError, NonFiniteLossError
from facerep.core.interfaces import Critic, FaceModel, Loss, LossContext
from facerep.core.recipe import load_recipe
from facerep.core.registry import get_registry
from facerep.core.types import Batch, Codes, Reconstruction, Rendering
from facerep.nn.loss_utils import check_finite, row_mask, zero_like_graph

ROOT = Path(__file__).resolve().parents[1]
CODE_SIZES = {"identity": 4, "expression": 3, "pose": 6, "light": 27}
NUM_IDENTITIES = 5


class TinyFaceModel(FaceModel):
    """A 5 x 4 vertex grid face (10 mm spacing), symmetric in x, with a curved depth field.

    Vertex (i, j) (column i = 0..4 at x = (i - 2) * 10, row j = 0..3 at y = j * 10) has index
    j * 5 + i and mirrors to j * 5 + (4 - i). Bases are fixed random fields; landmarks cycle through the
    vertices (68 indices of 20 vertices).
    """

    def __init__(self) -> None:
        xs = (np.arange(5) - 2) * 10.0
        ys = np.arange(4) * 10.0
        gx, gy = np.meshgrid(xs, ys)
        z = 30.0 - 0.01 * (gx**2 + (gy - 15.0) ** 2)
        self.name = "tiny"
        self.template = np.stack([gx.ravel(), gy.ravel(), z.ravel()], axis=1).astype(np.float32)
        tris = []
        for j in range(3):
            for i in range(4):
                v00, v10, v01, v11 = j * 5 + i, j * 5 + i + 1, (j + 1) * 5 + i, (j + 1) * 5 + i + 1
                tris += [(v00, v10, v11), (v00, v11, v01)]
        self.triangles = np.asarray(tris, dtype=np.int64)
        n = 20
        rng = np.random.default_rng(0)
        self.mean = self.template.copy()
        self.id_basis = rng.normal(size=(3, n, 3)).astype(np.float32)
        self.id_std = np.array([3.0, 2.0, 1.0], dtype=np.float32)
        self.exp_basis = rng.normal(size=(2, n, 3)).astype(np.float32)
        self.exp_std = np.array([1.0, 0.5], dtype=np.float32)
        self.albedo_mean = np.full((n, 3), 0.5, dtype=np.float32)
        self.albedo_basis = rng.normal(scale=0.05, size=(2, n, 3)).astype(np.float32)
        self.albedo_std = np.ones(2, dtype=np.float32)
        self.landmarks = (np.arange(68) % n).astype(np.int64)
        self.mirror = np.array([j * 5 + (4 - i) for j in range(4) for i in range(5)], dtype=np.int64)
        self.nose_tip = 12
        self.uv = (self.template[:, :2] - self.template[:, :2].min(0)) / np.ptp(self.template[:, :2], 0)

    def shape(self, alpha_id: Tensor, alpha_exp: Tensor) -> Tensor:
        dtype = alpha_id.dtype if alpha_id.is_floating_point() else torch.float32
        mean = torch.as_tensor(self.mean, dtype=dtype, device=alpha_id.device)
        idb = torch.as_tensor(self.id_basis, dtype=dtype, device=alpha_id.device)
        expb = torch.as_tensor(self.exp_basis, dtype=dtype, device=alpha_id.device)
        return (
            mean + torch.einsum("bk,knc->bnc", alpha_id, idb) + torch.einsum("bk,knc->bnc", alpha_exp, expb)
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        a_id = torch.randn(n, self.num_id, generator=generator) * torch.as_tensor(self.id_std)
        a_exp = torch.randn(n, self.num_exp, generator=generator) * torch.as_tensor(self.exp_std)
        return self.shape(a_id, a_exp)

    def fit(self, vertices: Tensor) -> tuple[Tensor, Tensor]:
        basis = torch.cat([torch.as_tensor(self.id_basis), torch.as_tensor(self.exp_basis)], dim=0).reshape(
            self.num_id + self.num_exp, -1
        )
        rhs = (vertices - torch.as_tensor(self.mean)).reshape(vertices.shape[0], -1)
        coef = torch.linalg.lstsq(basis.T, rhs.T).solution.T
        return coef[:, : self.num_id], coef[:, self.num_id :]


class LinearDecoder(nn.Module):
    """A stand-in shape decoder: the tiny face model with the codes used as 3DMM coefficients."""

    def __init__(self, face_model: TinyFaceModel) -> None:
        super().__init__()
        self.face_model = face_model
        self.calls: list[tuple[Tensor, Tensor]] = []

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        self.calls.append((identity, expression))
        return self.face_model.shape(
            identity[:, : self.face_model.num_id], expression[:, : self.face_model.num_exp]
        )


class SmallCritic(Critic):
    """A tiny smooth MLP critic (B, N, 3) -> (B,) without batch statistics."""

    def __init__(self, num_vertices: int = 20, hidden: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(num_vertices * 3, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, vertices: Tensor) -> Tensor:
        return self.net(vertices.flatten(1) / 30.0).squeeze(-1)


def make_batch(
    b: int = 4,
    size: int = 8,
    labelled: list[bool] | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Batch:
    """A small hybrid batch: random images, all-ones masks, landmarks in a face-like box."""
    g = torch.Generator().manual_seed(seed)
    labelled_t = torch.tensor(labelled if labelled is not None else [False, False, True, True])
    b = labelled_t.shape[0]
    landmarks = 1.0 + torch.rand(b, 68, 2, generator=g, dtype=dtype) * (size - 2)
    return Batch(
        images=torch.rand(b, 3, size, size, generator=g, dtype=dtype),
        masks=torch.ones(b, 1, size, size, dtype=dtype),
        landmarks=landmarks,
        identity=torch.arange(b) % NUM_IDENTITIES,
        labelled=labelled_t,
        id_params=torch.randn(b, 3, generator=g, dtype=dtype) * labelled_t[:, None],
        exp_params=torch.randn(b, 2, generator=g, dtype=dtype) * labelled_t[:, None],
        pair_index=torch.full((b,), -1, dtype=torch.long),
        sample_ids=[f"sample_{i}.jpg" for i in range(b)],
    )


def make_recon(
    batch: Batch, face_model: TinyFaceModel, seed: int = 1, dtype: torch.dtype = torch.float32
) -> Reconstruction:
    """A reconstruction with random codes, near-template vertices, random albedo and rendering."""
    g = torch.Generator().manual_seed(seed)
    b = batch.size
    size = batch.images.shape[-1]
    n = face_model.num_vertices
    codes = Codes(
        identity=torch.randn(b, CODE_SIZES["identity"], generator=g, dtype=dtype),
        expression=torch.randn(b, CODE_SIZES["expression"], generator=g, dtype=dtype),
        pose=torch.zeros(b, 6, dtype=dtype),
        light=torch.randn(b, 27, generator=g, dtype=dtype),
    )
    vertices = torch.as_tensor(face_model.template, dtype=dtype) + torch.randn(
        b, n, 3, generator=g, dtype=dtype
    )
    rendering = Rendering(
        image=torch.rand(b, 3, size, size, generator=g, dtype=dtype),
        mask=torch.ones(b, 1, size, size, dtype=dtype),
        depth=torch.zeros(b, 1, size, size, dtype=dtype),
        triangle_ids=torch.zeros(b, size, size, dtype=torch.long),
        vertices_2d=torch.zeros(b, n, 2, dtype=dtype),
        landmarks_2d=batch.landmarks + torch.randn(b, 68, 2, generator=g, dtype=dtype),
        visibility=torch.ones(b, n, dtype=torch.bool),
    )
    albedo = torch.rand(b, n, 3, generator=g, dtype=dtype)
    return Reconstruction(codes=codes, vertices=vertices, albedo=albedo, rendering=rendering)


def make_context(face_model: TinyFaceModel, critic: Critic | None = None) -> LossContext:
    return LossContext(
        face_model=face_model,
        shape_decoder=LinearDecoder(face_model),
        critic=critic if critic is not None else SmallCritic(face_model.num_vertices),
        step=0,
    )


def build_context(face_model: FaceModel) -> dict:
    """What the run injects into loss factories."""
    return {"face_model": face_model, "num_identities": NUM_IDENTITIES, "code_sizes": CODE_SIZES}


@pytest.fixture()
def tiny() -> TinyFaceModel:
    return TinyFaceModel()


# -- helpers -------------------------------------------------------------------------------------------


def test_row_mask_selects_rows_by_applies_to() -> None:
    batch = make_batch(labelled=[True, False, True])
    assert row_mask(batch.labelled, "all").tolist() == [True, True, True]
    assert row_mask(batch.labelled, "labelled").tolist() == [True, False, True]
    assert row_mask(batch.labelled, "unlabelled").tolist() == [False, True, False]
    with pytest.raises(ValueError, match="applies_to"):
        row_mask(batch.labelled, "some")


def test_zero_like_graph_is_an_exact_zero_with_a_graph_even_over_nan() -> None:
    x = torch.tensor([[1.0, float("nan")]], requires_grad=True)
    y = torch.ones(3, requires_grad=True)
    z = zero_like_graph(x, y)
    assert z.item() == 0.0
    assert z.requires_grad
    z.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.equal(y.grad, torch.zeros_like(y))


def test_check_finite_names_the_loss_the_inputs_and_the_samples() -> None:
    good = torch.tensor(1.5)
    assert check_finite("demo", good) is good
    a = torch.zeros(3, 2)
    a[1, 0] = float("inf")
    with pytest.raises(NonFiniteLossError) as info:
        check_finite("demo", a.sum(), {"input a": a, "input b": torch.zeros(3)}, ["x.jpg", "y.jpg", "z.jpg"])
    err = info.value
    assert isinstance(err, FacerepError) and isinstance(err, FloatingPointError)
    assert err.loss == "demo" and err.inputs == ["input a"] and err.samples == ["y.jpg"]
    assert "loss 'demo'" in str(err) and "input a" in str(err) and "y.jpg" in str(err)


def test_check_finite_reports_an_overflow_when_inputs_are_finite() -> None:
    x = torch.tensor([3.0e38])
    with pytest.raises(NonFiniteLossError, match="overflowed"):
        check_finite("demo", (x * 10).sum(), {"x": x})


# -- registry ------------------------------------------------------------------------------------------

FULL = load_recipe(ROOT / "recipes" / "full.yaml")
FULL_LOSSES = dict(FULL.get("losses"))
ALL_NAMES = [
    "recognition",
    "photometric",
    "landmark",
    "shape",
    "pairwise",
    "template_smooth",
    "laplacian_smooth",
    "albedo_symmetry",
    "wgan_div",
    "light_regularizer",
    "code_regularizer",
]


def test_every_loss_is_registered() -> None:
    names = set(get_registry().names("loss"))
    assert set(ALL_NAMES) <= names
    for name in ALL_NAMES:
        comp = get_registry().get("loss", name)
        assert issubclass(comp.factory, Loss)
        assert "weight" in comp.recipe_parameters()


@pytest.mark.parametrize("key", sorted(FULL_LOSSES))
def test_loss_builds_from_its_node_in_the_full_recipe(key: str, tiny: TinyFaceModel) -> None:
    node = FULL_LOSSES[key]
    loss = get_registry().build("loss", node, build_context(tiny), address=f"losses.{key}")
    assert isinstance(loss, Loss)
    assert loss.weight == pytest.approx(float(node["weight"]))
    assert loss.applies_to in ("all", "labelled", "unlabelled")
    batch = make_batch()
    value = loss(batch, make_recon(batch, tiny), make_context(tiny))
    assert value.dim() == 0 and torch.isfinite(value)


@pytest.mark.parametrize(
    ("key", "node"),
    [
        ("smooth", {"type": "laplacian_smooth", "weight": 1.0}),
        ("light", {"type": "light_regularizer", "weight": 0.5}),
        ("codes", {"type": "code_regularizer", "weight": 0.1, "identity": 1.0, "expression": 2.0}),
        ("recognition", {"type": "recognition", "weight": 1.0, "learn_centers": True, "center_alpha": 0.1}),
    ],
)
def test_other_nodes_build(key: str, node: dict, tiny: TinyFaceModel) -> None:
    loss = get_registry().build("loss", node, build_context(tiny), address=f"losses.{key}")
    assert loss.weight == pytest.approx(node["weight"])


def test_ablation_recipes_name_registered_losses() -> None:
    for recipe in ("laplacian_smooth", "no_mask_symm"):
        losses = load_recipe(ROOT / "recipes" / f"{recipe}.yaml").get("losses")
        for key, node in losses.items():
            get_registry().check("loss", node, address=f"losses.{key}")


def test_applies_to_matches_the_paper() -> None:
    labelled_only = {"shape", "pairwise"}
    for name in ALL_NAMES:
        expected = "labelled" if name in labelled_only else "all"
        assert get_registry().get("loss", name).factory.applies_to == expected, name


# -- NaN / Inf -----------------------------------------------------------------------------------------

#: loss name -> (extra node arguments, function that poisons one of its inputs in place)
POISON = {
    "recognition": lambda b, r: r.codes.identity.__setitem__((0, 0), float("nan")),
    "photometric": lambda b, r: r.rendering.image.__setitem__((1, 0, 2, 2), float("inf")),
    "landmark": lambda b, r: b.landmarks.__setitem__((2, 5, 0), float("nan")),
    "shape": lambda b, r: r.vertices.__setitem__((3, 1, 2), float("nan")),
    "pairwise": lambda b, r: r.codes.expression.__setitem__((2, 0), float("inf")),
    "template_smooth": lambda b, r: r.vertices.__setitem__((0, 4, 1), float("nan")),
    "laplacian_smooth": lambda b, r: r.vertices.__setitem__((0, 4, 1), float("-inf")),
    "albedo_symmetry": lambda b, r: r.albedo.__setitem__((1, 7, 0), float("nan")),
    "wgan_div": lambda b, r: r.vertices.__setitem__((1, 0, 0), float("nan")),
    "light_regularizer": lambda b, r: r.codes.light.__setitem__((1, 3), float("inf")),
    "code_regularizer": lambda b, r: r.codes.identity.__setitem__((1, 1), float("nan")),
}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_nan_or_inf_input_raises_an_error_naming_the_loss(name: str, tiny: TinyFaceModel) -> None:
    loss = get_registry().build("loss", {"type": name}, build_context(tiny))
    batch = make_batch()
    batch.pair_index = torch.tensor([-1, -1, 3, 2])
    recon = make_recon(batch, tiny)
    context = make_context(tiny)
    assert torch.isfinite(loss(batch, recon, context))
    POISON[name](batch, recon)
    with pytest.raises(NonFiniteLossError, match=f"loss '{name}'") as info:
        loss(batch, recon, context)
    assert info.value.inputs, "the error names the non-finite input"
    assert info.value.samples, "the error names the offending samples"


def test_wgan_critic_loss_raises_on_nan_shapes(tiny: TinyFaceModel) -> None:
    loss = get_registry().build("loss", {"type": "wgan_div"}, build_context(tiny))
    real = tiny.sample(3)
    fake = real.clone() + 1.0
    fake[2, 3, 1] = float("nan")
    with pytest.raises(NonFiniteLossError, match="loss 'wgan_div'.*fake shapes"):
        loss.critic_loss(real, fake, SmallCritic())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL_NAMES)
def test_losses_run_on_the_device_of_their_inputs(name: str, tiny: TinyFaceModel) -> None:
    device = torch.device("cuda")
    loss = get_registry().build("loss", {"type": name}, build_context(tiny)).to(device).eval()
    batch = make_batch()
    batch.pair_index = torch.tensor([-1, -1, 3, 2])
    recon = make_recon(batch, tiny)
    expected = loss(batch, recon, make_context(tiny)).item()
    ctx = LossContext(
        face_model=tiny,
        shape_decoder=LinearDecoder(tiny),
        critic=SmallCritic(tiny.num_vertices).to(device),
        step=0,
    )
    value = loss(batch.to(device), recon.to(device), ctx)
    assert value.device.type == "cuda"
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "name",
    [n for n in ALL_NAMES if n not in ("pairwise", "wgan_div", "light_regularizer", "code_regularizer")],
)
def test_mixed_precision_outputs_are_compared_in_float32(name: str, tiny: TinyFaceModel) -> None:
    loss = get_registry().build("loss", {"type": name}, build_context(tiny)).eval()
    batch = make_batch()
    batch.pair_index = torch.tensor([-1, -1, 3, 2])
    recon = make_recon(batch, tiny)
    for obj, fields in (
        (recon, ("vertices", "albedo")),
        (recon.codes, ("identity", "expression")),
        (recon.rendering, ("image", "landmarks_2d")),
    ):
        for f in fields:
            setattr(obj, f, getattr(obj, f).to(torch.bfloat16).float())
    reference = loss(batch, recon, make_context(tiny))
    low = dataclasses.replace(
        recon, vertices=recon.vertices.to(torch.bfloat16), albedo=recon.albedo.to(torch.bfloat16)
    )
    low.codes = dataclasses.replace(recon.codes, identity=recon.codes.identity.to(torch.bfloat16))
    low.rendering = dataclasses.replace(
        recon.rendering,
        image=recon.rendering.image.to(torch.bfloat16),
        landmarks_2d=recon.rendering.landmarks_2d.to(torch.bfloat16),
    )
    value = loss(batch, low, make_context(tiny))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-6)
