"""Held-out validation: the identity split, the validator's metrics, `train.validate` in a real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facerep.common.errors import RecipeError
from facerep.core.types import Codes
from facerep.data.holdout import split_identities
from facerep.geometry.camera import project
from facerep.testing.fixtures import tiny_face_model
from facerep.train.validation import Validator
from tests.test_engine import tiny_recipe, train


class _Source:
    """A labelled source of 6 identities x 3 views (only what the split reads)."""

    labelled = True

    def __init__(self) -> None:
        self.identities = [i for i in range(6) for _ in range(3)]

    def __len__(self) -> int:
        return len(self.identities)

    def __getitem__(self, index: int) -> dict:
        return {"identity": self.identities[index], "sample_id": f"img{index}"}


def test_split_holds_out_whole_identities_and_keeps_every_sample() -> None:
    source = _Source()
    kept, held = split_identities(source, 2, seed=3)
    kept_ids = {source.identities[i] for i in kept.indices}
    held_ids = {source.identities[i] for i in held.indices}
    assert len(held_ids) == 2 and not kept_ids & held_ids
    assert sorted(kept.indices + held.indices) == list(range(len(source)))
    assert sorted(set(held.identities)) == [0, 1] and sorted(set(kept.identities)) == [0, 1, 2, 3]
    assert held[0]["sample_id"] == f"img{held.indices[0]}" and held[0]["identity"] == held.identities[0]
    assert kept.labelled and held.labelled
    again, _ = split_identities(source, 2, seed=3)
    assert again.indices == kept.indices  # the same split in every stage and process
    with pytest.raises(ValueError, match="between 1 and 5"):
        split_identities(source, 6)


class _Model(torch.nn.Module):
    """Decodes a fixed shape per image and projects with a fixed pose (stand-in for a FaceRepModel)."""

    def __init__(self, shapes: torch.Tensor, pose: torch.Tensor) -> None:
        super().__init__()
        self.shapes, self.pose, self.calls = shapes, pose, 0

    def encode(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> Codes:
        index = images[:, 0, 0, 0].long()
        return Codes(
            index[:, None].float(), torch.zeros(len(index), 1), self.pose[index], torch.zeros(len(index), 27)
        )

    def decode_shape(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        assert not self.training  # validation runs in eval mode
        return self.shapes[identity[:, 0].long()]


def _samples(face_model, n: int = 5, size: int = 32):  # noqa: ANN001, ANN202
    gen = torch.Generator().manual_seed(0)
    id_params = (
        torch.randn(n, len(face_model.id_std), generator=gen) * torch.as_tensor(face_model.id_std).float()
    )
    exp_params = torch.zeros(n, len(face_model.exp_std))
    truth = torch.as_tensor(face_model.shape(id_params, exp_params)).float()
    pose = torch.zeros(n, 6)
    pose[:, 5] = -1.0
    marks, _ = project(truth[:, face_model.landmarks], pose, size)
    images = torch.zeros(n, 3, size, size)
    images[:, 0, 0, 0] = torch.arange(n).float()  # the stand-in model reads the row index from here
    samples = [
        {"image": images[i], "landmarks": marks[i], "id_params": id_params[i], "exp_params": exp_params[i]}
        for i in range(n)
    ]
    return samples, truth, pose


def test_validator_scores_the_truth_zero_and_the_mean_face_one() -> None:
    fm = tiny_face_model()
    samples, truth, pose = _samples(fm)
    validator = Validator(samples, fm)
    perfect = validator.evaluate(_Model(truth, pose).train())
    assert perfect["val/shape_mm"] == pytest.approx(0.0, abs=1e-4)
    assert perfect["val/landmark_nme"] == pytest.approx(0.0, abs=1e-3)
    assert perfect["val/identity_mm"] == pytest.approx(0.0, abs=1e-4)  # labels have zero expression
    assert perfect["val/spread_mm"] == pytest.approx(perfect["val/true_spread_mm"], rel=1e-5)
    mean = torch.as_tensor(np.asarray(fm.mean)).float().expand_as(truth)
    expected = float((truth - mean).norm(dim=-1).mean())
    constant = validator.evaluate(_Model(mean.clone(), pose))
    assert constant["val/mean_face_mm"] == pytest.approx(expected, rel=1e-5) and expected > 0.1
    assert constant["val/ratio"] == pytest.approx(1.0, rel=1e-5)
    assert constant["val/identity_ratio"] == pytest.approx(1.0, rel=1e-5)
    assert constant["val/spread_mm"] == pytest.approx(0.0, abs=1e-5)  # a collapse reads as zero spread


def test_landmark_nme_is_in_percent_of_the_box_size() -> None:
    fm = tiny_face_model()
    samples, truth, pose = _samples(fm)
    shifted = pose.clone()
    shifted[:, 3] = 0.1  # every projected landmark moves 0.1 x 32 = 3.2 px to the right
    nme = Validator(samples, fm).evaluate(_Model(truth, shifted))["val/landmark_nme"]
    marks = torch.stack([s["landmarks"] for s in samples])
    extent = marks.amax(1) - marks.amin(1)
    expected = 100 * float((3.2 / (extent[:, 0] * extent[:, 1]).sqrt()).mean())
    assert nme == pytest.approx(expected, rel=1e-4)


def test_readout_reference_is_reported_when_training_samples_are_given() -> None:
    fm = tiny_face_model()
    samples, _, _ = _samples(fm, n=6)
    training, _, _ = _samples(fm, n=12)
    metrics = Validator(samples, fm, training).evaluate(
        _Model(torch.zeros(6, fm.num_vertices, 3), torch.zeros(6, 6))
    )
    assert np.isfinite(metrics["val/readout_mm"]) and metrics["val/readout_mm"] > 0


def test_train_validate_logs_held_out_error_draws_curves_and_summarises(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tiny_recipe(tmp_path, parent="no_adv", train="validate: {every: 2, identities: 1}")
    run = train(recipe, tmp_path / "run", quiet=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if "val/shape_mm" in r]
    assert [r["step"] for r in val] == [0, 2, 4, 6]  # before training, every 2 steps, each stage's end
    for r in val:
        assert r["val/mean_face_mm"] > 0 and np.isfinite(r["val/landmark_nme"]) and r["elapsed_s"] >= 0
    assert val[0]["val/ratio"] == pytest.approx(1.0, abs=1e-6)  # the untrained decoder is the mean face
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    closing = " ".join(capsys.readouterr().err.split())
    assert f"held-out shape error {val[-1]['val/shape_mm']:.3f} mm; mean face" in closing


def test_train_validate_errors_name_the_key(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, parent="no_adv", train="validate: {evry: 2}")
    with pytest.raises(RecipeError, match="'evry'.*every") as info:
        train(recipe, tmp_path / "a")
    assert "tiny.yaml" in str(info.value)
    recipe = tiny_recipe(tmp_path, parent="no_adv", train="validate: {identities: 99}", name="b.yaml")
    with pytest.raises(RecipeError, match="hold out 99"):
        train(recipe, tmp_path / "b")
    recipe = tiny_recipe(tmp_path, parent="no_adv", train="validate: {source: photos}", name="c.yaml")
    with pytest.raises(RecipeError, match="'photos' is not a 3DMM-labelled"):
        train(recipe, tmp_path / "c")


def test_ridge_fit_recovers_a_linear_map_and_shrinks_with_its_penalty() -> None:
    """RidgeFit (the validator's landmark read-out, and benchmarks/landmark_readout.py's): on exact
    linear data a tiny penalty recovers the map; a large one (the intercept is penalised too) pulls every
    prediction to zero."""
    from facerep.train.validation import RidgeFit

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 4, 5]) + 7.0
    a = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = x @ a + torch.tensor([1.0, -2.0, 0.5])
    fit = RidgeFit.fit(x, y, 1e-9)
    probe = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(fit(probe), probe @ a + torch.tensor([1.0, -2.0, 0.5]), atol=1e-6, rtol=0)
    assert fit.weights.shape == (6, 3)
    strong = RidgeFit.fit(x, y, 1e9)
    assert float(strong(probe).abs().max()) < 1e-3 * float(y.abs().max())
