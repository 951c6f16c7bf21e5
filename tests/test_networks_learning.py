"""Proof that the decoders can learn: fit 200 random 3DMM shapes, reconstruct held-out ones (2k template).

The codes are the shapes' whitened 3DMM coefficients (identity coefficients in the first dimensions of
the identity code, expression coefficients in the expression code, zeros elsewhere), so the decoder
has to learn the map coefficients -> vertices from 200 examples and generalise to new faces.
"""

from __future__ import annotations

import pytest
import torch

from facerep.core.types import CodeSizes
from facerep.plugins.decoders.gcn import GCNShapeDecoder
from facerep.plugins.decoders.linear import LinearShapeDecoder
from facerep.plugins.facemodels.synthetic import synthetic


@pytest.fixture(scope="module")
def face_model():  # noqa: ANN201 - SyntheticFaceModel
    return synthetic(vertices=2000)


def shapes_and_codes(face_model, n: int, generator: torch.Generator):  # noqa: ANN001, ANN201
    """n prior samples: (identity code (n, 128), expression code (n, 64), vertices (n, N, 3) mm)."""
    white_id = torch.randn(n, face_model.num_id, generator=generator)
    white_exp = torch.randn(n, face_model.num_exp, generator=generator)
    id_std = torch.as_tensor(face_model.id_std, dtype=torch.float32)
    exp_std = torch.as_tensor(face_model.exp_std, dtype=torch.float32)
    vertices = face_model.shape(white_id * id_std, white_exp * exp_std).float()
    identity = torch.zeros(n, 128)
    identity[:, : face_model.num_id] = white_id
    expression = torch.zeros(n, 64)
    expression[:, : face_model.num_exp] = white_exp
    return identity, expression, vertices


def fit(decoder: torch.nn.Module, data, steps: int, lr: float, generator: torch.Generator) -> None:  # noqa: ANN001
    """Adam with a one-cycle schedule on mean squared vertex error; mixup of pairs of training shapes
    (valid for a linear model: a blend of two 3DMM shapes is the shape of the blended coefficients)."""
    identity, expression, vertices = data
    n = len(vertices)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    for _ in range(steps):
        i = torch.randint(0, n, (32,), generator=generator)
        j = torch.randint(0, n, (32,), generator=generator)
        lam = torch.rand(32, 1, generator=generator)

        def mix(t: torch.Tensor, i=i, j=j, lam=lam) -> torch.Tensor:  # noqa: ANN001
            w = lam.view(-1, *[1] * (t.dim() - 1))
            return w * t[i] + (1 - w) * t[j]

        loss = (decoder(mix(identity), mix(expression)) - mix(vertices)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def mean_error(decoder: torch.nn.Module, data) -> float:  # noqa: ANN001
    identity, expression, vertices = data
    with torch.no_grad():
        return (decoder(identity, expression) - vertices).norm(dim=-1).mean().item()


def test_linear_decoder_learns_the_3dmm_map(face_model) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    train, test = shapes_and_codes(face_model, 200, g), shapes_and_codes(face_model, 50, g)
    torch.manual_seed(0)
    decoder = LinearShapeDecoder(face_model, CodeSizes())
    before = mean_error(decoder, test)
    fit(decoder, train, steps=300, lr=0.1, generator=g)
    after = mean_error(decoder, test)
    assert after < 0.5 and after < 0.1 * before, f"held-out mean vertex error {after:.3f} mm"


@pytest.mark.slow
def test_gcn_decoder_trained_on_200_shapes_reconstructs_held_out_ones_under_1mm(face_model) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    train, test = shapes_and_codes(face_model, 200, g), shapes_and_codes(face_model, 50, g)
    torch.manual_seed(0)
    decoder = GCNShapeDecoder(face_model, CodeSizes())
    before = mean_error(decoder, test)
    assert before > 3.0  # the mean shape alone is far from the faces
    fit(decoder, train, steps=800, lr=3e-3, generator=g)
    after = mean_error(decoder, test)
    assert after < 1.0, f"held-out mean vertex error {after:.3f} mm (mean shape: {before:.3f} mm)"
