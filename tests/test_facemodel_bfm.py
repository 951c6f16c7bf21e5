"""The bfm loader on small files written here in each BFM layout (no real BFM file ships)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.io
import torch

from facerep.common.errors import DataError
from facerep.core.registry import build
from facerep.plugins.facemodels.bfm import bfm, load_pickle
from facerep.plugins.facemodels.synthetic import synthetic


@pytest.fixture(scope="module")
def fm():
    return synthetic(vertices=600, n_id=40, n_exp=10, n_tex=5)


def _coefs(fm, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return fm.sample_coefficients(3, torch.Generator().manual_seed(seed))


def _col(basis: np.ndarray) -> np.ndarray:
    """(K, N, 3) -> (3N, K) column layout of the BFM files."""
    return basis.reshape(basis.shape[0], -1).T.astype(np.float64)


def _front_facing(m) -> float:
    v = m.mean.astype(np.float64)
    t = m.triangles
    return float((np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])[:, 2] > 0).mean())


def test_bfm2009_with_exp_pca_trim_and_crop(tmp_path, fm) -> None:
    um = 1000.0
    scipy.io.savemat(
        tmp_path / "01_MorphableModel.mat",
        {
            "shapeMU": fm.mean.reshape(-1, 1) * um,
            "shapePC": _col(fm.id_basis) * um,
            "shapeEV": fm.id_std.reshape(-1, 1),
            "texMU": fm.albedo_mean.reshape(-1, 1) * 255,
            "texPC": _col(fm.albedo_basis) * 255,
            "texEV": fm.albedo_std.reshape(-1, 1),
            "tl": fm.triangles[:, [0, 2, 1]] + 1,  # clockwise, 1-based: the loader re-orients
        },
    )
    keep = np.flatnonzero(fm.mean[:, 1] > -80)  # Exp_Pca covers fewer vertices than the shape model
    scipy.io.savemat(tmp_path / "BFM_exp_idx.mat", {"trimIndex": (keep + 1).reshape(-1, 1)})
    exp = fm.exp_basis[:, keep] * um
    blob = np.array([exp.shape[0]], "<i4").tobytes() + np.zeros(3 * keep.size, "<f4").tobytes()
    (tmp_path / "Exp_Pca.bin").write_bytes(blob + exp.reshape(exp.shape[0], -1).astype("<f4").tobytes())
    np.savetxt(tmp_path / "std_exp.txt", fm.exp_std)

    m = build(
        "facemodel",
        {
            "type": "bfm",
            "path": str(tmp_path / "01_MorphableModel.mat"),
            "exp_path": str(tmp_path / "Exp_Pca.bin"),
            "exp_std_path": str(tmp_path / "std_exp.txt"),
            "exp_index_path": str(tmp_path / "BFM_exp_idx.mat"),
            "centre": False,
        },
    )
    assert m.num_vertices == keep.size and m.num_id == 40 and m.num_exp == 10 and m.num_tex == 5
    assert m.info["units"] == "um" and "trim" in m.info and _front_facing(m) > 0.95
    a, e = _coefs(fm)
    want = fm.shape(a, e)[:, keep]
    assert torch.allclose(m.shape(a, e), want, atol=1e-3)  # micrometres -> mm
    assert np.allclose(m.exp_std, fm.exp_std, rtol=1e-6) and np.allclose(m.id_std, fm.id_std)
    assert np.allclose(m.albedo_mean, fm.albedo_mean[keep], atol=1e-5)
    assert m.mean[m.nose_tip, 2] == m.mean[:, 2].max()  # guessed landmarks put the tip in front

    # crop by a vertex index list (the paper's face-region crop)
    crop = np.arange(0, keep.size, 2)
    np.savetxt(tmp_path / "crop.txt", crop, fmt="%d")
    c = bfm(
        str(tmp_path / "01_MorphableModel.mat"),
        exp_path=str(tmp_path / "Exp_Pca.bin"),
        exp_index_path=str(tmp_path / "BFM_exp_idx.mat"),
        crop=str(tmp_path / "crop.txt"),
        centre=False,
    )
    assert c.num_vertices == crop.size and torch.allclose(c.shape(a), m.shape(a)[:, crop], atol=1e-3)
    assert "heuristic" in c.info["exp_prior"] and np.all(np.diff(c.exp_std) < 0)


def test_deep3dfacerecon_front_model(tmp_path, fm) -> None:
    dm = 1 / 100.0
    scipy.io.savemat(
        tmp_path / "BFM_model_front.mat",
        {
            "meanshape": fm.mean.reshape(1, -1) * dm,
            "idBase": _col(fm.id_basis * fm.id_std[:, None, None]) * dm,
            "exBase": _col(fm.exp_basis * fm.exp_std[:, None, None]) * dm,
            "meantex": fm.albedo_mean.reshape(1, -1) * 255,
            "texBase": _col(fm.albedo_basis * fm.albedo_std[:, None, None]) * 255,
            "tri": fm.triangles + 1,
            "keypoints": (fm.landmarks + 1).reshape(1, -1),
        },
    )
    m = bfm(str(tmp_path / "BFM_model_front.mat"), centre=False)
    assert m.info["units"] == "dm" and np.array_equal(m.landmarks, fm.landmarks)
    a, e = _coefs(fm, 1)
    got = m.shape(a / torch.as_tensor(fm.id_std), e / torch.as_tensor(fm.exp_std))  # N(0, 1) coefficients
    assert torch.allclose(got, fm.shape(a, e), atol=1e-3)
    assert np.allclose(m.id_std, 1.0) and m.num_tex == 5


def test_3ddfa_pickle_with_and_without_param_std(tmp_path, fm) -> None:
    um = 1000.0
    d = {
        "u": fm.mean.reshape(-1, 1).astype(np.float32) * um,
        "w_shp": (_col(fm.id_basis) * um).astype(np.float32),
        "w_exp": (_col(fm.exp_basis) * um).astype(np.float32),
        "tri": fm.triangles.T.copy(),
        "keypoints": (3 * fm.landmarks[:, None] + np.arange(3)).ravel(),
    }
    (tmp_path / "bfm_noneck_v3.pkl").write_bytes(pickle.dumps(d))
    std = np.concatenate([np.ones(12), fm.id_std, fm.exp_std])
    (tmp_path / "param_mean_std.pkl").write_bytes(pickle.dumps({"mean": np.zeros(62), "std": std}))
    m = bfm(
        str(tmp_path / "bfm_noneck_v3.pkl"), param_std_path=str(tmp_path / "param_mean_std.pkl"), centre=False
    )
    a, e = _coefs(fm, 2)
    assert torch.allclose(m.shape(a, e), fm.shape(a, e), atol=1e-3)
    assert np.allclose(m.id_std, fm.id_std) and np.array_equal(m.landmarks, fm.landmarks)
    # 3DDFA_V2 keeps the rebuilt triangles in a separate tri.pkl; a stale 'tri' is a clear error
    (tmp_path / "tri.pkl").write_bytes(pickle.dumps(fm.triangles.T.copy()))
    d["tri"] = np.array([[0, 1, fm.num_vertices + 5]])
    (tmp_path / "bfm_noneck_v3.pkl").write_bytes(pickle.dumps(d))
    with pytest.raises(DataError, match="tri_path"):
        bfm(str(tmp_path / "bfm_noneck_v3.pkl"))
    h = bfm(str(tmp_path / "bfm_noneck_v3.pkl"), tri_path=str(tmp_path / "tri.pkl"))
    assert np.array_equal(np.sort(h.triangles, axis=1), np.sort(fm.triangles, axis=1))
    assert "heuristic" in h.info["prior"]
    rms = np.sqrt((h.id_basis**2).sum(-1).mean(-1)) * h.id_std
    assert np.allclose(rms[0], 3.0, rtol=1e-3)  # 1-sigma RMS displacement of the first component


def test_errors_are_clear(tmp_path) -> None:
    with pytest.raises(DataError, match="faces.dmi.unibas.ch"):
        bfm("")
    with pytest.raises(DataError, match="nothere.mat: not found"):
        bfm(str(tmp_path / "nothere.mat"))
    scipy.io.savemat(tmp_path / "other.mat", {"foo": np.zeros(3)})
    with pytest.raises(DataError, match=r"not a BFM file.*shapeMU.*found \['foo'\]"):
        bfm(str(tmp_path / "other.mat"))
    (tmp_path / "junk.mat").write_bytes(b"definitely not matlab")
    with pytest.raises(DataError, match="junk.mat"):
        bfm(str(tmp_path / "junk.mat"))
    scipy.io.savemat(
        tmp_path / "m.mat",
        {"shapeMU": np.zeros((9, 1)), "shapePC": np.zeros((9, 1)), "shapeEV": [[1]], "tl": [[1, 2, 3]]},
    )
    (tmp_path / "Exp_Pca.bin").write_bytes(np.array([5], "<i4").tobytes() + b"\0" * 10)
    with pytest.raises(DataError, match="does not fit Exp_Pca.bin"):
        bfm(str(tmp_path / "m.mat"), exp_path=str(tmp_path / "Exp_Pca.bin"))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"u": Evil()}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_pickle(tmp_path / "evil.pkl")
