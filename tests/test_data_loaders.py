"""Dataset plugins on real files (AFLW2000-3D) and on fixtures written in the real datasets' field layouts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

from facerep.common.errors import DataError
from facerep.core.registry import get_registry
from facerep.data.matfile import FIELDS_300WLP, save_mat
from facerep.data.micc import MICC
from facerep.data.mjpeg import write_mjpeg
from facerep.data.objfile import write_obj
from facerep.data.sidecars import landmark_sidecar, mask_sidecar, write_mask, write_pts, write_video_landmarks
from facerep.plugins.datasets.aflw2000 import AFLW2000
from facerep.plugins.datasets.celeba import CelebA
from facerep.plugins.datasets.w300lp import W300LP, source_identity


def _face_points(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """68 plausible landmarks (jaw arc, brows, eyes, nose, mouth) inside a w x h image, 0-based px."""
    cx, cy, r = w / 2, h / 2, min(w, h) / 4
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([cx - r * np.cos(t), cy + r * 0.2 + r * np.sin(t) * 0.9], 1)
    brows = np.stack([np.linspace(cx - r * 0.8, cx + r * 0.8, 10), np.full(10, cy - r * 0.6)], 1)
    nose = np.stack([np.full(9, cx) + np.r_[0, 0, 0, 0, -10, -5, 0, 5, 10] * r / 40,
                     cy - r * 0.4 + np.r_[0, 10, 20, 30, 35, 36, 37, 36, 35] * r / 40], 1)  # fmt: skip
    eye_x = np.r_[np.linspace(cx - r * 0.6, cx - r * 0.2, 6), np.linspace(cx + r * 0.2, cx + r * 0.6, 6)]
    eyes = np.stack([eye_x, np.full(12, cy - r * 0.35)], 1)
    mouth = np.stack([cx + r * 0.4 * np.cos(np.linspace(0, 2 * np.pi, 20)),
                      cy + r * 0.55 + r * 0.1 * np.sin(np.linspace(0, 2 * np.pi, 20))], 1)  # fmt: skip
    pts = np.concatenate([jaw, brows, nose, eyes, mouth])
    return (pts + rng.normal(0, 0.5, pts.shape)).astype(np.float32)


def _jpeg(path: Path, w: int, h: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, quality=90)


# -- AFLW2000-3D: the real files ---------------------------------------------------------------------------


def test_aflw2000_reads_the_real_files() -> None:
    root = shared_data("aflw2000")
    data = AFLW2000(root, image_size=64)
    assert len(data) == len(list(root.glob("*.jpg"))) >= 16 and data.skipped == []
    for i in range(len(data)):
        s = data[i]
        assert s["image"].shape == (3, 64, 64) and s["image"].min() >= 0 and s["image"].max() <= 1
        assert s["id_params"].shape == (199,) and s["exp_params"].shape == (29,)  # BFM layout
        raw = s["landmarks_3d"]
        with Image.open(root / s["sample_id"]) as im:
            w, h = im.size
        assert (
            (raw[:, 0] >= 0).all()
            and (raw[:, 0] < w).all()
            and (raw[:, 1] >= 0).all()
            and (raw[:, 1] < h).all()
        )
        lm = s["landmarks"]
        assert (lm >= 0).all() and (lm < 64).all()  # inside the landmark crop
        assert lm[36, 0] < lm[45, 0] and lm[27, 1] < lm[57, 1]  # iBUG order, upright faces
    # the crop keeps the face: mean colour under the landmark hull differs from the border
    assert data.labelled and data.num_identities == len(data)


def test_aflw2000_built_through_the_registry() -> None:
    root = shared_data("aflw2000")
    data = get_registry().build("dataset", {"type": "aflw2000", "root": str(root)}, {"image_size": 32})
    assert data[0]["image"].shape == (3, 32, 32)


# -- 300W-LP fixture ---------------------------------------------------------------------------------------


def _write_300wlp(root: Path, names: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = {}
    for k, rel in enumerate(names):
        _jpeg(root / f"{rel}.jpg", 120, 120, k)
        pts = _face_points(120, 120, rng)
        fields = {name: rng.normal(0, 1, shape).astype(np.float64) for name, shape in FIELDS_300WLP.items()}
        fields["pt2d"] = (pts.T + 1.0 - 0.5).astype(np.float64)  # MATLAB 1-based: centre of pixel 1 is 1.0
        fields["Pose_Para"] = fields["Pose_Para"].astype(np.float32)
        fields["roi"] = np.array([[10, 10, 100, 100]], dtype=np.int16)
        save_mat(root / f"{rel}.mat", fields)
        truth[rel] = {"pts": pts, "Shape_Para": fields["Shape_Para"], "Exp_Para": fields["Exp_Para"]}
    return truth


W300_NAMES = ["AFW/AFW_134212_1_0", "AFW/AFW_134212_1_1", "AFW/AFW_134212_2_0", "HELEN/HELEN_232194_1_0",
              "HELEN/HELEN_232194_1_10", "AFW_Flip/AFW_134212_1_0", "IBUG/IBUG_image_003_1_0"]  # fmt: skip


def test_w300lp_real_layout_identities_params_and_flips(tmp_path) -> None:
    truth = _write_300wlp(tmp_path, W300_NAMES)
    data = W300LP(tmp_path, image_size=60, crop="center")
    assert [f"{f[:-4]}" for f in data.files] == sorted(n for n in W300_NAMES if "_Flip" not in n)
    assert source_identity("HELEN_232194_1_10") == "HELEN_232194_1"
    ids = dict(zip(data.files, data.identities, strict=True))
    assert ids["AFW/AFW_134212_1_0.jpg"] == ids["AFW/AFW_134212_1_1.jpg"] != ids["AFW/AFW_134212_2_0.jpg"]
    assert ids["HELEN/HELEN_232194_1_0.jpg"] == ids["HELEN/HELEN_232194_1_10.jpg"]
    assert data.num_identities == 4 and data.labelled
    s = data[data.files.index("AFW/AFW_134212_1_1.jpg")]
    t = truth["AFW/AFW_134212_1_1"]
    np.testing.assert_allclose(s["id_params"].numpy(), t["Shape_Para"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(s["exp_params"].numpy(), t["Exp_Para"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(s["landmarks"].numpy(), t["pts"] * 0.5, atol=1e-4)  # 120 px -> 60 px
    # a BFM face model with fewer components: the leading coefficients are kept
    bfm = SimpleNamespace(name="bfm", id_basis=np.zeros((40, 1, 3)), exp_basis=np.zeros((10, 1, 3)))
    cut = W300LP(tmp_path, image_size=60, face_model=bfm)
    assert cut[0]["id_params"].shape == (40,) and cut[0]["exp_params"].shape == (10,)
    wrong = SimpleNamespace(name="synthetic", id_basis=np.zeros((80, 1, 3)), exp_basis=np.zeros((29, 1, 3)))
    with pytest.raises(DataError, match="'bfm' face model"):
        W300LP(tmp_path, image_size=60, face_model=wrong)


def test_mat_missing_a_field_is_an_error_or_a_counted_skip(tmp_path) -> None:
    _write_300wlp(tmp_path, W300_NAMES[:3])
    import scipy.io

    bad = tmp_path / "AFW/AFW_134212_1_1.mat"
    fields = {
        k: v for k, v in scipy.io.loadmat(str(bad)).items() if not k.startswith("__") and k != "Exp_Para"
    }
    save_mat(bad, fields)
    with pytest.raises(DataError, match=r"AFW_134212_1_1\.mat: missing field\(s\) \['Exp_Para'\]"):
        W300LP(tmp_path, image_size=32)
    data = W300LP(tmp_path, image_size=32, on_bad_sample="skip")
    assert len(data) == 2 and len(data.skipped) == 1 and "Exp_Para" in data.skipped[0]
    (tmp_path / "AFW/AFW_134212_2_0.mat").write_bytes(b"MATLAB garbage")
    data = W300LP(tmp_path, image_size=32, on_bad_sample="skip")
    assert len(data) == 1 and len(data.skipped) == 2
    assert "AFW_134212_2_0.mat: cannot read .mat file" in data.skipped[1]


def test_truncated_jpeg_is_an_error_or_a_replaced_skip(tmp_path) -> None:
    _write_300wlp(tmp_path, W300_NAMES[:3])
    path = tmp_path / "AFW/AFW_134212_1_0.jpg"
    path.write_bytes(path.read_bytes()[:300])
    data = W300LP(tmp_path, image_size=32)
    index = data.files.index("AFW/AFW_134212_1_0.jpg")
    with pytest.raises(DataError, match=r"AFW_134212_1_0\.jpg: corrupt or truncated"):
        data[index]
    skipping = W300LP(tmp_path, image_size=32, on_bad_sample="skip")
    sample = skipping[index]
    assert sample["sample_id"] == "AFW/AFW_134212_1_1.jpg"  # the other view of the same source photo
    assert sample["identity"] == skipping.identities[index]
    assert len(skipping.skipped) == 1 and "AFW_134212_1_0.jpg" in skipping.skipped[0]


# -- CelebA fixture ----------------------------------------------------------------------------------------


def _write_celeba(root: Path, n: int = 9, landmarks: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    rows, parts, pts = [], [], {}
    for k in range(1, n + 1):
        name = f"{k:06d}.jpg"
        _jpeg(root / "img_align_celeba" / name, 178, 218, k)  # the real aligned crop size
        rows.append(f"{name} {100 + k % 3}")
        parts.append(f"{name} {0 if k <= 6 else 1}")
        pts[name] = _face_points(178, 218, rng)
        if landmarks:
            write_pts(landmark_sidecar(root, f"img_align_celeba/{name}"), pts[name])
    (root / "identity_CelebA.txt").write_text("\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return pts


def test_celeba_real_layout_splits_identities_and_sidecars(tmp_path) -> None:
    pts = _write_celeba(tmp_path)
    mask = np.zeros((218, 178), np.float32)
    mask[60:160, 40:140] = 1
    write_mask(mask_sidecar(tmp_path, "img_align_celeba/000002.jpg"), mask)
    data = CelebA(tmp_path, image_size=89)
    assert len(data) == 6 and data.num_identities == 3 and not data.labelled
    assert len(CelebA(tmp_path, image_size=32, split="val")) == 3
    s = data[1]
    assert s["sample_id"] == "img_align_celeba/000002.jpg" and s["celeba_identity"] == 102
    # centre crop: 178 x 178 from y = 20, then x0.5
    np.testing.assert_allclose(s["landmarks"].numpy(), (pts["000002.jpg"] - [0, 20]) * 0.5, atol=1e-3)
    m = s["mask"][0]
    assert m[25:65, 25:65].min() > 0.99 and m[:15].max() == 0  # the sidecar mask, cropped like the image
    ident = [data[i]["identity"] for i in range(len(data))]
    assert ident == data.identities and sorted(set(ident)) == [0, 1, 2]


def test_celeba_missing_landmarks_names_the_file_and_the_fix(tmp_path) -> None:
    _write_celeba(tmp_path, landmarks=False)
    with pytest.raises(DataError, match=r"000001\.pts.*facerep data landmarks"):
        CelebA(tmp_path, image_size=32)
    with pytest.raises(DataError, match="no usable CelebA image"):
        CelebA(tmp_path, image_size=32, on_bad_sample="skip")


# -- MICC fixture ------------------------------------------------------------------------------------------


def test_micc_real_layout_videos_landmark_crops_and_scans(tmp_path) -> None:
    rng = np.random.default_rng(5)
    for subject in ("subject_01", "subject_02"):
        write_obj(tmp_path / subject / "Model/frontal1/obj/110920150452.obj", rng.normal(0, 50, (30, 3)),
                  rng.integers(0, 30, (20, 3)))  # fmt: skip
        for condition, suffix in (
            ("Indoor-Cooperative", ".mjpg"),
            ("PTZ-Indoor", ".mjpeg"),
            ("PTZ-Outdoor", ".mjpg"),
        ):
            video = tmp_path / subject / "Video" / f"{condition}{suffix}"
            frames = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(5)]
            write_mjpeg(video, frames)
            marks = {k: _face_points(120, 90, rng) for k in (0, 1, 3)}  # frames 2 and 4: no face found
            write_video_landmarks(video.with_name(f"{condition}.landmarks68.csv"), marks)
    data = MICC(tmp_path, image_size=48)
    assert data.subjects == ["subject_01", "subject_02"] and len(data) == 2 * 3 * 3
    assert data.num_identities == 2
    idx = data.indices("subject_02", "PTZ-Indoor")
    assert [data[i]["frame"] for i in idx] == [0, 1, 3]
    s = data[idx[0]]
    assert s["sample_id"] == "subject_02/Video/PTZ-Indoor.mjpeg#0" and s["identity"] == 1
    lm = s["landmarks"]
    assert (lm > 0).all() and (lm < 48).all()
    v, f = data.load_scan("subject_01")
    assert v.shape == (30, 3) and f.shape == (20, 3)
    only = MICC(tmp_path, image_size=48, conditions=["PTZ-Outdoor"], frame_step=2)
    assert len(only) == 2 * 2
    (tmp_path / "subject_02/Video/PTZ-Outdoor.mjpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    with pytest.raises(DataError, match="PTZ-Outdoor.mjpg"):
        MICC(tmp_path, image_size=48)
    assert len(MICC(tmp_path, image_size=48, on_bad_sample="skip")) == 2 * 3 * 3 - 3


def test_loader_samples_are_float_images_in_unit_range(tmp_path) -> None:
    _write_celeba(tmp_path)
    s = CelebA(tmp_path, image_size=40)[0]
    assert s["image"].dtype == torch.float32 and s["mask"].shape == (1, 40, 40)
