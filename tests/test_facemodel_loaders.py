"""Real face-model loaders: the generic npz format (real ICT-FaceKit) and the Surrey Face Model (eos)."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import torch
from conftest import shared_data

from facerep.common.errors import DataError
from facerep.core.registry import build, get_registry
from facerep.geometry.ibug_layout import IBUG_MIRROR
from facerep.geometry.symmetry import mirror_error
from facerep.plugins.facemodels.npz import load_npz_face_model, npz, save_npz_face_model
from facerep.plugins.facemodels.sfm import read_sfm_shape, sfm
from facerep.plugins.facemodels.synthetic import synthetic


def _check_model(m, width_mm=(120, 260)) -> None:
    """Contract facts every loaded model must satisfy."""
    n = m.num_vertices
    assert m.mean.shape == (n, 3) and m.template.shape == (n, 3) and m.uv.shape == (n, 2)
    assert m.id_basis.shape[1:] == (n, 3) and m.id_std.shape == (m.num_id,)
    assert m.albedo_mean.shape == (n, 3) and m.albedo_mean.min() >= 0 and m.albedo_mean.max() <= 1
    assert m.landmarks.shape == (68,) and m.landmarks.min() >= 0 and m.landmarks.max() < n
    assert m.mirror.shape == (n,) and m.nose_tip == m.landmarks[30]
    assert width_mm[0] < np.ptp(m.mean[:, 0]) < width_mm[1]
    v = m.mean.astype(np.float64)
    tri = m.triangles
    normal = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    assert (normal[:, 2] > 0).mean() > 0.6  # front-facing orientation
    lm = m.landmarks
    # the subject's right eye (iBUG 36-41) is at negative x; the nose tip is in front of the eyes
    assert v[lm[36], 0] < 0 < v[lm[45], 0]
    assert v[lm[30], 2] > v[lm[39], 2] and v[lm[30], 1] > v[lm[57], 1] > v[lm[8], 1]
    g = torch.Generator().manual_seed(0)
    a, e = m.sample_coefficients(2, g)
    ai, ae = m.fit(m.shape(a, e))
    assert torch.allclose(ai, a, atol=1e-2 * float(m.id_std.max()) + 1e-3)
    assert m.albedo(m.sample_albedo_coefficients(2, g)).shape == (2, n, 3)


def test_loaders_are_registered() -> None:
    names = get_registry().names("facemodel")
    for name in ("synthetic", "npz", "sfm", "bfm"):
        assert name in names


def test_npz_reads_the_real_ict_face_model_in_cm() -> None:
    path = shared_data("ict", "ict_facemodel_light_face9409.npz")
    m = build("facemodel", {"type": "npz", "path": str(path), "units": "cm"})
    _check_model(m)
    assert m.num_vertices == 9409 and m.num_id == 100 and m.num_exp == 53
    assert m.exp_names[0] == "browDown_L" and m.info["units"] == "cm"
    assert "flat skin tone" in m.info["albedo"] and m.num_tex == 3
    assert mirror_error(m.mean, m.mirror) < 0.5  # ICT is symmetric: nearest mirrored vertex is exact
    assert np.array_equal(m.mirror[m.landmarks], m.landmarks[IBUG_MIRROR])
    # the unit is guessed from the face width when not given
    guessed = npz(str(path))
    assert guessed.info["units"].startswith("cm") and np.allclose(guessed.mean, m.mean)


def test_npz_round_trip_of_the_synthetic_model_and_missing_pieces(tmp_path) -> None:
    fm = synthetic(vertices=600, n_id=20, n_exp=6, n_tex=5)
    p = save_npz_face_model(tmp_path / "syn.npz", fm)
    m = load_npz_face_model(p, centre=False)
    assert np.allclose(m.mean, fm.mean) and np.array_equal(m.landmarks, fm.landmarks)
    assert np.allclose(m.exp_std, fm.exp_std) and m.exp_names == fm.exp_names
    # a minimal file in metres: mean, triangles, identity basis only
    np.savez(
        tmp_path / "min.npz",
        mean=fm.mean / 1000,
        triangles=fm.triangles,
        id_basis=fm.id_basis.reshape(20, -1) / 1000,
        units=np.array("m"),
    )
    m = npz(str(tmp_path / "min.npz"), centre=False)
    assert m.num_exp == 0 and m.info["units"] == "m" and np.allclose(m.id_std, 1.0)
    assert np.allclose(m.mean, fm.mean, atol=1e-3)
    centred = npz(str(tmp_path / "min.npz"))
    assert np.allclose(centred.mean.min(0)[:2], -centred.mean.max(0)[:2], atol=1e-4)
    assert m.info["landmarks_filled"] == list(range(68))
    assert m.mean[m.nose_tip, 2] == m.mean[:, 2].max()
    _check_model(m)


def test_npz_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(DataError, match="face_model.path"):
        npz("")
    with pytest.raises(DataError, match="nothere.npz"):
        npz(str(tmp_path / "nothere.npz"))
    np.savez(tmp_path / "bad.npz", mean=np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"bad.npz.*lacks \['triangles', 'id_basis'\]"):
        npz(str(tmp_path / "bad.npz"))
    np.savez(
        tmp_path / "units.npz", mean=np.zeros((3, 3)), triangles=[[0, 1, 2]], id_basis=np.zeros((1, 3, 3))
    )
    with pytest.raises(DataError, match="unknown length unit 'furlong'"):
        npz(str(tmp_path / "units.npz"), units="furlong")


def test_sfm_reads_the_real_surrey_face_model() -> None:
    folder = shared_data("sfm")
    m = sfm(str(folder))
    _check_model(m)
    assert m.num_vertices == 3448 and m.num_id == 63 and len(m.triangles) == 6736
    assert m.exp_names == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert np.isclose(m.id_std[0] ** 2, 56502.367, rtol=1e-5)  # eigenvalues are variances
    # 50 landmarks come from ibug_to_sfm.txt (1-based iBUG 31 = nose tip = vertex 114)
    assert m.landmarks[30] == 114 and m.landmarks[8] == 33 and m.landmarks[36] == 177
    # the jaw contour is filled from the contour file, mirror pairs on mirrored vertices
    assert np.array_equal(m.mirror[m.landmarks[:17]], m.landmarks[:17][::-1])
    assert m.mean[m.landmarks[0], 1] < m.mean[m.landmarks[36], 1] + 1  # jaw starts below the eye corner
    assert mirror_error(m.mean, m.mirror) < 1.5
    assert m.uv.min() >= 0 and m.uv.max() <= 1


def test_sfm_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="sfm_shape_3448.bin.*patrikhuber/eos"):
        sfm(str(tmp_path))
    folder = shared_data("sfm")
    broken = tmp_path / "sfm_shape_3448.bin"
    broken.write_bytes((folder / "sfm_shape_3448.bin").read_bytes()[:5000])
    with pytest.raises(DataError, match="truncated"):
        read_sfm_shape(broken)
    broken.write_bytes(struct.pack("<I", 1) + struct.pack("<ii", 10**6, 10**6))
    with pytest.raises(DataError, match="implausible"):
        read_sfm_shape(broken)
    # without blendshapes, contours and symmetry list the model still loads
    shutil.copy(folder / "sfm_shape_3448.bin", tmp_path / "sfm_shape_3448.bin")
    shutil.copy(folder / "ibug_to_sfm.txt", tmp_path / "ibug_to_sfm.txt")
    m = sfm(str(tmp_path))
    assert m.num_exp == 0 and m.info["landmarks_filled"] == [k for k in range(17) if k != 8]
