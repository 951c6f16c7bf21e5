"""The aflw2000 benchmark: reading AFLW2000-3D, clear errors, and the real samples end to end (bin counts,
the mean-layout baseline and a run's projected landmarks checked against independent computations)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from facerep.bench.aflw2000_source import read_aflw2000
from facerep.common.errors import DataError
from facerep.data.matfile import save_mat
from facerep.plugins.benchmarks.aflw2000 import Aflw2000Benchmark
from tests.conftest import shared_data


def _write_sample(root: Path, name: str, *, fields: dict | None = None, image: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (64, 64), (120, 90, 80)).save(root / f"{name}.jpg")
    rng = np.random.default_rng(0)
    pt3d = np.vstack([rng.uniform(10, 50, (2, 68)), rng.normal(0, 5, (1, 68))])
    data = {"pt3d_68": pt3d, "Pose_Para": np.array([[0.1, 0.3, 0.0, 0, 0, 0, 1.0]])}
    save_mat(root / f"{name}.mat", {**data, **(fields or {})} if fields is not None else data)


def test_mat_without_pt3d_68_is_a_clear_error(tmp_path: Path) -> None:
    _write_sample(tmp_path, "image00001")
    save_mat(tmp_path / "image00002.mat", {"Pose_Para": np.zeros((1, 7))})
    Image.new("RGB", (8, 8)).save(tmp_path / "image00002.jpg")
    with pytest.raises(DataError, match=r"image00002.mat: missing field\(s\) \['pt3d_68'\]"):
        read_aflw2000(tmp_path)


def test_unpaired_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    _write_sample(tmp_path / "a", "image00001", image=False)
    with pytest.raises(DataError, match=r"image00001.mat: has no image00001.jpg beside it"):
        read_aflw2000(tmp_path / "a")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.jpg")
    (tmp_path / "c").mkdir()
    (tmp_path / "b.jpg").rename(tmp_path / "c" / "image00009.jpg")
    with pytest.raises(DataError, match=r"image00009.jpg: has no image00009.mat"):
        read_aflw2000(tmp_path / "c")
    _write_sample(tmp_path / "d", "image00003", fields={"pt3d_68": np.zeros((3, 21))})
    with pytest.raises(DataError, match=r"image00003.mat: pt3d_68 has shape \(3, 21\)"):
        read_aflw2000(tmp_path / "d")
    with pytest.raises(DataError, match="AFLW2000-3D folder not found"):
        read_aflw2000(tmp_path / "nowhere")
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="no AFLW2000-3D image/.mat pair"):
        read_aflw2000(tmp_path / "e")


class MeanFaceRun:
    """A stand-in run: every image gets the face model's mean shape, frontal, centred, unit scale."""

    name = "meanface"
    path = Path("runs/meanface")
    checkpoint = "step-00000000.safetensors"
    image_size = 48

    def __init__(self, face_model: SimpleNamespace) -> None:
        self.face_model = face_model

    def encode(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> SimpleNamespace:
        b = images.shape[0]
        return SimpleNamespace(
            identity=torch.zeros(b, 1), expression=torch.zeros(b, 1), pose=torch.zeros(b, 6)
        )

    def decode_shape(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.face_model.mean, dtype=torch.float32)
        return mean[None].repeat(identity.shape[0], 1, 1)


def _truth(mat_path: Path) -> tuple[np.ndarray, float]:
    mat = scipy.io.loadmat(str(mat_path))
    return mat["pt3d_68"][:2].T.astype(np.float64), math.degrees(float(mat["Pose_Para"][0, 1]))


def _nme(pred: np.ndarray, gt: np.ndarray) -> float:
    w, h = gt.max(axis=0) - gt.min(axis=0)
    return float(np.mean(np.sqrt(((pred - gt) ** 2).sum(axis=1))) / math.sqrt(w * h))


def test_real_samples_end_to_end(tmp_path: Path) -> None:
    root = shared_data("aflw2000")
    mats = sorted(root.glob("*.mat"))
    truths = [_truth(p) for p in mats]
    # a face model whose mean is the first sample's ground truth, in mm-like units (y up)
    gt0 = truths[0][0]
    mean = np.column_stack([(gt0 - gt0.mean(axis=0)) * [0.5, -0.5], np.zeros(68)])
    face_model = SimpleNamespace(mean=mean, landmarks=np.arange(68))
    result = Aflw2000Benchmark(root=str(root), dlib=False, error_images=3, progress=False).run(
        [MeanFaceRun(face_model)], tmp_path / "out"
    )
    rows = {r.method: r for r in result["table"].rows}
    # counts per bin, from the .mat yaws by the protocol's edges
    bins = [0 if abs(y) < 30 else 1 if abs(y) < 60 else 2 for _, y in truths]
    counts = [bins.count(k) for k in range(3)]
    assert sum(counts) == len(mats) == 16
    assert [rows["meanface"].counts[f"bin{k}"] for k in range(3)] == counts == [10, 4, 2]
    # the mean-layout baseline: the layout's box centre and sqrt(w*h) moved onto the ground truth's
    layout = np.column_stack([mean[:, 0], -mean[:, 1]])
    expected = []
    for gt, _ in truths:
        lo, hi, llo, lhi = gt.min(0), gt.max(0), layout.min(0), layout.max(0)
        scale = math.sqrt(np.prod(hi - lo) / np.prod(lhi - llo))
        expected.append(_nme((layout - (llo + lhi) / 2) * scale + (lo + hi) / 2, gt))
    baseline = rows["mean_layout"].values
    assert baseline["overall"] == pytest.approx(np.mean(expected), rel=1e-9)
    per_bin = [np.mean([e for e, b in zip(expected, bins, strict=True) if b == k]) for k in range(3)]
    assert [baseline[f"bin{k}"] for k in range(3)] == pytest.approx(per_bin, rel=1e-9)
    assert baseline["balanced"] == pytest.approx(np.mean(per_bin), rel=1e-9)
    first = [s for s in result["scores"] if s["method"] == "mean_layout" and s["image"] == mats[0].stem]
    assert first[0]["nme"] == pytest.approx(0.0, abs=1e-9)  # its own layout, fitted back onto its box
    # the run: mean shape, zero pose -> crop centre + (x, -y) * side / 200 (200 mm span the crop), where
    # the crop is 1.7 x the landmarks' extent, centred on their box and moved up by a tenth of its side
    run_expected = []
    for gt, _ in truths:
        gt_px = gt - 0.5  # 1-based MATLAB pixels -> facerep's
        lo, hi = gt_px.min(0), gt_px.max(0)
        side = 1.7 * float(max(hi - lo))
        centre = (lo + hi) / 2 - (0, 0.1 * side)
        run_expected.append(_nme(centre + mean[:, :2] * [1, -1] * side / 200.0, gt_px))
    assert rows["meanface"].values["overall"] == pytest.approx(np.mean(run_expected), rel=1e-5)
    # published rows on real data, files with provenance
    assert {"3DDFA", "3DDFA_V2", "PRNet"} <= {r.method for r in result["table"].rows if r.kind == "published"}
    assert rows["3DDFA"].values["balanced"] == pytest.approx(0.0542) and rows["3DDFA"].note
    out = tmp_path / "out"
    for name in (
        "aflw2000.md",
        "aflw2000.csv",
        "aflw2000.json",
        "aflw2000_per_image.csv",
        "aflw2000_errors.png",
    ):
        assert (out / name).is_file(), name
    meta = json.loads((out / "aflw2000.json").read_text())["meta"]
    assert meta["data_root"] == str(root) and meta["images"] == 16
    assert meta["runs"] == [
        {"name": "meanface", "path": "runs/meanface", "checkpoint": MeanFaceRun.checkpoint}
    ]
    csv_text = (out / "aflw2000.csv").read_text()
    assert f"# data root: {root}" in csv_text and MeanFaceRun.checkpoint in csv_text
    assert "step-00000000.safetensors" in (out / "aflw2000.md").read_text()
    with (out / "aflw2000_per_image.csv").open() as fh:
        per_image = list(csv.DictReader(fh))
    assert len(per_image) == 2 * 16  # the run and the mean layout
    assert {(r["checkpoint"], r["data_root"]) for r in per_image if r["method"] == "meanface"} == {
        (MeanFaceRun.checkpoint, str(root))
    }
    assert Image.open(out / "aflw2000_errors.png").size[1] > 3 * 100


def test_synthetic_aflw2000_layout_reads_back(tmp_path: Path) -> None:
    from facerep.plugins.datasets.aflw2000 import AFLW2000
    from facerep.world.synth import PRESETS, aflw2000_images, generate_world

    record: dict = {}
    generate_world(tmp_path, "tiny", 0, parts=("aflw2000",), record=record, device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aflw2000"]  # one part, no world.json
    samples = read_aflw2000(tmp_path / "aflw2000")
    assert len(samples) == aflw2000_images(PRESETS["tiny"]) == 30
    bins = [0 if abs(s.yaw) < 30 else 1 if abs(s.yaw) < 60 else 2 for s in samples]
    assert [bins.count(k) for k in range(3)] == [10, 10, 10]  # even thirds over the yaw bins
    for s in samples:
        truth = record["aflw2000"][f"{s.name}.jpg"]
        np.testing.assert_allclose(s.landmarks, truth["landmarks"], atol=1e-4)
        assert s.yaw == pytest.approx(math.degrees(truth["yaw"]), abs=1e-4)
    data = AFLW2000(tmp_path / "aflw2000", image_size=32)  # the dataset plugin reads the same files
    assert len(data) == 30 and data[0]["image"].shape == (3, 32, 32)


@pytest.mark.slow
def test_dlib_baseline_on_real_samples(tmp_path: Path) -> None:
    from facerep.bench.dlib_faces import dlib_missing

    if dlib_missing():
        pytest.skip(dlib_missing())
    root = shared_data("aflw2000")
    gt0 = _truth(sorted(root.glob("*.mat"))[0])[0]
    face_model = SimpleNamespace(
        mean=np.column_stack([gt0 * [0.5, -0.5], np.zeros(68)]), landmarks=np.arange(68)
    )
    result = Aflw2000Benchmark(root=str(root), error_images=0, progress=False).run(
        [MeanFaceRun(face_model)], tmp_path
    )
    rows = {r.method: r for r in result["table"].rows}
    # a trained 68-point predictor: far better than a constant layout on the near-frontal faces
    assert rows["dlib"].values["bin0"] < 0.08 < rows["mean_layout"].values["bin0"]
    assert rows["dlib"].values["overall"] < rows["mean_layout"].values["overall"]
    assert "undetected" in rows["dlib"].note
