"""The embedded synthetic face model: symmetry, bases, residual, landmarks, resolutions, fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facerep.core.registry import build
from facerep.geometry.ibug_layout import IBUG_MIRROR
from facerep.plugins.facemodels.synthetic import SyntheticFaceModel, synthetic

REFLECT = np.array([-1.0, 1.0, 1.0], dtype=np.float32)


@pytest.fixture(scope="module")
def fm() -> SyntheticFaceModel:
    return synthetic(vertices=2000)


def test_registered_memoised_and_sized(fm: SyntheticFaceModel) -> None:
    built = build("facemodel", {"type": "synthetic", "vertices": 2000})
    assert built is fm  # memoised by its arguments
    assert fm.num_vertices == 2000 and fm.num_id == 80 and fm.num_exp == 29 and fm.num_tex == 40
    assert fm.triangles.dtype == np.int64 and fm.mean.dtype == np.float32
    assert synthetic(vertices=777).num_vertices == 777  # exact vertex counts
    width = fm.mean[:, 0].max() - fm.mean[:, 0].min()
    assert 140 < width < 160
    assert len(fm.exp_names) == 29
    for name in ("jaw_open", "smile", "pout", "brow_raise", "eye_close"):
        assert name in fm.exp_names


def test_mean_is_exactly_symmetric(fm: SyntheticFaceModel) -> None:
    m = fm.mirror
    assert np.array_equal(m[m], np.arange(fm.num_vertices))
    assert np.abs(fm.mean[m] * REFLECT - fm.mean).max() <= 1e-6
    assert np.abs(fm.albedo_mean[m] - fm.albedo_mean).max() <= 1e-6
    # each basis vector is exactly symmetric or antisymmetric
    for basis in (fm.id_basis, fm.exp_basis):
        mirrored = basis[:, m] * REFLECT
        sym = np.abs(mirrored - basis).max(axis=(1, 2)) <= 1e-6
        anti = np.abs(mirrored + basis).max(axis=(1, 2)) <= 1e-6
        assert np.all(sym | anti)
        assert sym.any() and anti.any()


def test_triangles_face_the_camera(fm: SyntheticFaceModel) -> None:
    v = fm.mean[fm.triangles].astype(np.float64)
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (n[:, 2] > 0).mean() > 0.99


def test_bases_orthonormal_and_stds_falling(fm: SyntheticFaceModel) -> None:
    for basis, std in ((fm.id_basis, fm.id_std), (fm.exp_basis, fm.exp_std)):
        b = basis.reshape(len(basis), -1).astype(np.float64)
        gram = b @ b.T / fm.num_vertices  # unit RMS per basis vector
        assert np.allclose(np.diag(gram), 1.0, atol=0.05)
        assert np.abs(gram - np.diag(np.diag(gram))).max() < 0.05  # exact in the continuous inner product
        assert np.all(np.diff(std) <= 1e-9) and std.min() > 0
    # expression 2-sigma displacements are physically plausible (mm)
    peak = np.abs(fm.exp_basis * fm.exp_std[:, None, None]).max(axis=(1, 2))
    assert peak.max() < 20 and peak.min() > 0.3


def test_residual_is_small_nonlinear_and_outside_the_span(fm: SyntheticFaceModel) -> None:
    g = torch.Generator().manual_seed(0)
    a, _ = fm.sample_coefficients(64, g)
    r = fm.residual(a)
    rms = r.square().sum(-1).mean().sqrt().item()
    assert 1.0 < rms < 3.0
    mean = torch.as_tensor(fm.mean)
    ai, ae = fm.fit(mean + r)
    in_span = fm.shape(ai, ae) - mean
    assert in_span.norm() / r.norm() < 0.06  # orthogonal up to quadrature error at 2k vertices
    # nonlinear: r(2a) != 2 r(a), and identity-specific (depends on a only)
    assert (fm.residual(2 * a) - 2 * r).norm() / r.norm() > 0.2
    assert torch.allclose(fm.true_shape(a) - fm.shape(a), r, atol=1e-5)
    assert fm.residual(torch.zeros(1, fm.num_id)).abs().max() == 0


def test_same_faces_at_two_resolutions() -> None:
    coarse, dense = synthetic(vertices=900), synthetic(vertices=3000)
    g = torch.Generator().manual_seed(3)
    a, e = coarse.sample_coefficients(2, g)
    on_coarse = coarse.true_shape(a, e)
    via_dense = dense.true_shape_at(coarse.surface_params, a, e)
    assert (on_coarse - via_dense).abs().max() < 1e-3
    # and the dense mesh's own vertices lie on that surface: the nose tips agree
    tip_c = coarse.true_shape(a, e)[:, coarse.nose_tip]
    tip_d = dense.true_shape(a, e)[:, dense.nose_tip]
    assert (tip_c - tip_d).norm(dim=-1).max() < 1.0


def test_landmarks_on_their_features(fm: SyntheticFaceModel) -> None:
    lm, v = fm.landmarks, fm.mean
    assert lm.shape == (68,) and len(np.unique(lm)) > 60
    assert fm.nose_tip == lm[30] and v[fm.nose_tip, 0] == 0
    assert v[fm.nose_tip, 2] >= v[:, 2].max() - 0.5  # the most frontal vertex
    assert v[fm.nose_tip, 2] - v[lm[0], 2] > 40  # well in front of the jaw contour
    # mirror pairs map to mirror vertices
    assert np.array_equal(fm.mirror[lm], lm[IBUG_MIRROR])
    # subject's right (iBUG 36, outer eye corner) has x < 0; eyes above the nose above the mouth
    assert v[lm[36], 0] < v[lm[39], 0] < 0 < v[lm[42], 0] < v[lm[45], 0]
    assert v[lm[37], 1] > v[lm[30], 1] > v[lm[51], 1] > v[lm[57], 1] > v[lm[8], 1]
    # eye sockets sit behind the brows and the cheekbones
    assert v[lm[39], 2] < v[lm[21], 2]


def test_fit_recovers_coefficients_and_sample_draws_from_prior(fm: SyntheticFaceModel) -> None:
    g = torch.Generator().manual_seed(1)
    a, e = fm.sample_coefficients(8, g)
    ai, ae = fm.fit(fm.shape(a, e))
    assert torch.allclose(ai, a, atol=1e-3) and torch.allclose(ae, e, atol=1e-3)
    s = fm.sample(256, torch.Generator().manual_seed(2))
    assert s.shape == (256, 2000, 3)
    ai, _ = fm.fit(s)
    ratio = ai.std(0) / torch.as_tensor(fm.id_std)
    assert 0.8 < ratio[:10].mean() < 1.2
    # the prior-weighted fit shrinks towards zero
    ai_reg, _ = fm.fit(fm.shape(a, e), prior_weight=10.0)
    assert ai_reg.norm() < ai.norm() * 10 and ai_reg.norm() < a.norm()


def test_albedo_in_range_and_true_albedo_adds_detail(fm: SyntheticFaceModel) -> None:
    g = torch.Generator().manual_seed(4)
    t = fm.sample_albedo_coefficients(4, g)
    a, _ = fm.sample_coefficients(4, g)
    alb = fm.albedo(t)
    assert alb.shape == (4, 2000, 3) and alb.min() >= 0 and alb.max() <= 1
    lips, forehead = fm.landmarks[51], int(np.argmax(fm.mean[:, 1]))
    assert (
        fm.albedo_mean[lips, 0] - fm.albedo_mean[lips, 1]
        > fm.albedo_mean[forehead, 0] - fm.albedo_mean[forehead, 1]
    )  # redder lips
    detail = fm.true_albedo(t, a) - alb
    assert 0.005 < detail.square().mean().sqrt() < 0.05


def test_deterministic_from_seed() -> None:
    kw = {"vertices": 600, "n_id": 30, "n_exp": 10, "n_tex": 12}
    a = synthetic(seed=5, **kw)
    b = SyntheticFaceModel(seed=5, **kw)
    c = synthetic(seed=6, **kw)
    assert np.array_equal(a.id_basis, b.id_basis) and np.array_equal(a.res_basis, b.res_basis)
    assert not np.allclose(a.res_basis, c.res_basis)
    assert np.array_equal(a.mean, c.mean)  # the mean face does not depend on the seed


def test_pickles_by_its_arguments(fm: SyntheticFaceModel) -> None:
    import pickle

    fm.tensor("mean")  # a cached torch copy must not break pickling
    blob = pickle.dumps(fm)
    assert len(blob) < 10_000  # arguments, not arrays
    assert pickle.loads(blob) is fm  # same process: the memoised instance
