"""The verification benchmark: pair scores from identity codes, the metrics, the files, the synthetic set."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from facerep.data.photos import load_face_photo
from facerep.plugins.benchmarks.verification import VerificationBenchmark, cosine_scores, identity_codes
from tests.conftest import shared_data


class ColourRun:
    """A stand-in run whose identity code is the crop's mean colour in its left and right halves (6-D)."""

    name = "colour"
    path = Path("runs/colour")
    checkpoint = "step-00000007.safetensors"
    image_size = 32
    face_model = None

    def encode(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> SimpleNamespace:
        half = images.shape[-1] // 2
        code = torch.cat([images[..., :half].mean(dim=(2, 3)), images[..., half:].mean(dim=(2, 3))], dim=1)
        return SimpleNamespace(identity=code)


def _brute_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (pos.size * neg.size)


def test_cosine_scores_and_flip_averaging() -> None:
    codes = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    np.testing.assert_allclose(cosine_scores(codes, np.array([0, 0, 1]), np.array([1, 2, 2])),
                               [0.0, 1 / np.sqrt(2), 1 / np.sqrt(2)])  # fmt: skip
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = identity_codes(ColourRun(), images)
    flipped = identity_codes(ColourRun(), images, flip=True)
    assert not np.allclose(plain, identity_codes(ColourRun(), images.flip(-1)))  # the code sees left / right
    np.testing.assert_allclose(flipped, identity_codes(ColourRun(), images.flip(-1), flip=True), atol=1e-6)


def test_real_identities_all_780_pairs(tmp_path: Path) -> None:
    root = shared_data("photos", "identities")
    out = tmp_path / "out"
    result = VerificationBenchmark(
        root=str(root), pairs="all", detector=None, dlib=False, progress=False
    ).run([ColourRun()], out)
    rows = {r.method: r for r in result["table"].rows}
    assert rows["colour"].counts == {"same": 80, "different": 700}
    # the run's scores, recomputed: the centre crops' codes and their cosines over every pair
    photos = sorted(p for p in root.glob("*/*.png"))
    crops = torch.stack([load_face_photo(p, 32, crop="center").image for p in photos])
    codes = ColourRun().encode(crops).identity.double().numpy()
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    pairs = list(combinations(range(len(photos)), 2))
    scores = np.array([unit[a] @ unit[b] for a, b in pairs])
    same = np.array([photos[a].parent == photos[b].parent for a, b in pairs])
    np.testing.assert_allclose(np.sort(result["scores"]["colour"]), np.sort(scores), atol=1e-6)
    assert rows["colour"].values["auc"] == pytest.approx(_brute_auc(scores[same], scores[~same]), abs=1e-6)
    assert rows["colour"].values["tar@0.001"] is None  # 700 different pairs: too few for FAR 1e-3
    assert rows["colour"].values["tar@0.01"] is not None
    assert 0.35 < rows["random"].values["auc"] < 0.65  # chance
    assert any("centre-cropped" in note for note in result["table"].notes)  # no detector: said so
    # files: the table (with provenance), every pair's scores, the ROC curve
    meta = json.loads((out / "verification.json").read_text())["meta"]
    assert meta["data_root"] == str(root) and meta["same_pairs"] == 80 and meta["different_pairs"] == 700
    assert meta["runs"][0]["checkpoint"] == ColourRun.checkpoint
    assert ColourRun.checkpoint in (out / "verification.csv").read_text()
    with (out / "verification_pairs.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 2 * 780  # the run and the random baseline (dlib left out)
    mine = [r for r in lines if r["method"] == "colour"]
    assert len(mine) == 780 and sum(int(r["same"]) for r in mine) == 80
    assert {(r["checkpoint"], r["data_root"]) for r in mine} == {(ColourRun.checkpoint, str(root))}
    np.testing.assert_allclose(sorted(float(r["score"]) for r in mine), np.sort(scores), atol=1e-5)
    assert Image.open(out / "verification_roc.png").size[0] > 300


def test_synthetic_verification_set(tmp_path: Path) -> None:
    from facerep.world.synth import PRESETS, VERIFICATION_PHOTOS, generate_world, verification_identities

    record: dict = {}
    generate_world(tmp_path, "tiny", 0, parts=("verification",), record=record, device="cpu")
    root = tmp_path / "verification"
    n_id = verification_identities(PRESETS["tiny"])
    result = VerificationBenchmark(root=str(root), detector=None, dlib=False, progress=False).run(
        [ColourRun()], tmp_path / "out"
    )
    pair_list = result["pairs"]
    per_id = VERIFICATION_PHOTOS * (VERIFICATION_PHOTOS - 1) // 2
    assert (pair_list.num_same, pair_list.num_different) == (n_id * per_id, n_id * per_id)
    assert len(pair_list.images) == n_id * VERIFICATION_PHOTOS
    identity = {str(root / rel): truth["identity"] for rel, truth in record["verification"].items()}
    for pair in pair_list.pairs:  # the pair list agrees with who was rendered
        assert (identity[str(pair.first)] == identity[str(pair.second)]) == pair.same
    assert len({(p.first, p.second) for p in pair_list.pairs}) == len(pair_list.pairs)  # no duplicate
    # every photo has its landmark sidecar, so every crop is a landmark crop (no detector needed)
    assert any("landmarks 48" in note for note in result["table"].notes)


@pytest.mark.slow
def test_dlib_anchor_on_real_identities(tmp_path: Path) -> None:
    from facerep.bench.dlib_faces import dlib_missing

    if dlib_missing():
        pytest.skip(dlib_missing())
    root = shared_data("photos", "identities")
    result = VerificationBenchmark(root=str(root), pairs="all", progress=False).run([ColourRun()], tmp_path)
    rows = {r.method: r for r in result["table"].rows}
    assert rows["dlib"].values["auc"] > 0.98  # a real trained recogniser tells these 8 people apart
    assert rows["dlib"].values["eer"] < 0.05
    assert result["table"].meta["detector"] == "face_detector 'dlib'"  # photos cropped by the detector kind
