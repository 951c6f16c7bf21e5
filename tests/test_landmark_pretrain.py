"""Landmark pre-training (facerep.train.landmark_pretrain): its recipe options, the encoder's
``start_from`` and ``encode_landmarks``, the datasets' ``labels``, and a tiny run that starts its
image training below the mean face."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from facerep.common.errors import RecipeError
from facerep.core.recipe import load_recipe
from facerep.core.registry import get_registry
from facerep.nn.landmark_input import landmark_features
from facerep.testing.runs import tiny_recipe_text
from facerep.train import loop
from facerep.train.landmark_pretrain import PRETRAIN_DEFAULTS, pretrain_config, require_labelled
from facerep.train.options import TrainOptions
from facerep.train.recipe_check import check_recipe
from facerep.train.trainer import Trainer

ENCODER = {"landmark_input": True, "start_from": "landmarks"}


def _recipe(
    tmp_path: Path, pretrain: object, encoder: dict | None = None, name: str = "pretrain.yaml"
) -> Path:
    """A tiny one-stage recipe with a linear shape decoder, 300 labelled identities (20 held out for
    validation every step) and `pretrain`."""
    train = {"validate": {"every": 1, "identities": 20}, "landmark_pretrain": pretrain}
    recipe = yaml.safe_load(tiny_recipe_text("gcn_albedo_only", steps=2, train=train))
    recipe["data"]["world"]["labelled_sources"] = 300
    recipe["model"]["encoder"].update(ENCODER if encoder is None else encoder)
    recipe["model"]["shape_decoder"] = {"_replace_": True, "type": "linear"}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- options -------------------------------------------------------------------------------------


def test_options_default_when_true_and_are_off_when_absent(tmp_path: Path) -> None:
    assert pretrain_config(load_recipe(_recipe(tmp_path, True))) == PRETRAIN_DEFAULTS
    assert pretrain_config(load_recipe(_recipe(tmp_path, None))) is None
    given = pretrain_config(load_recipe(_recipe(tmp_path, {"steps": 5, "neutral": 0})))
    assert given == {**PRETRAIN_DEFAULTS, "steps": 5, "neutral": 0}


@pytest.mark.parametrize(
    ("node", "address", "words"),
    [
        ({"stesp": 5}, "train.landmark_pretrain.stesp", "did you mean 'steps'"),
        ({"steps": 0}, "train.landmark_pretrain.steps", "positive integer"),
        ({"lr": 0}, "train.landmark_pretrain.lr", "> 0"),
        ({"neutral": -1}, "train.landmark_pretrain.neutral", ">= 0"),
        ({"source": "fersh"}, "train.landmark_pretrain.source", "did you mean 'fresh'"),
        ({"source": "fresh", "noise": -0.1}, "train.landmark_pretrain.noise", ">= 0"),
        ({"noise": 0.01}, "train.landmark_pretrain.noise", "applies to source: fresh only"),
        ("fast", "train.landmark_pretrain", "mapping"),
    ],
)
def test_bad_options_are_recipe_errors_at_their_key(
    tmp_path: Path, node: object, address: str, words: str
) -> None:
    path = _recipe(tmp_path, node)
    with pytest.raises(RecipeError) as caught:
        check_recipe(load_recipe(path))
    message = str(caught.value)
    assert words in message and caught.value.address.startswith(address.rsplit(".", 1)[0])
    assert "pretrain.yaml" in message  # the file and its line


def test_an_encoder_that_does_not_read_landmarks_is_refused_before_training(tmp_path: Path) -> None:
    path = _recipe(tmp_path, {"steps": 5}, encoder={"landmark_input": False})
    with pytest.raises(RecipeError, match="needs an encoder that reads landmarks") as caught:
        check_recipe(load_recipe(path), build=True)
    assert caught.value.address == "train.landmark_pretrain"


# -- the encoder -------------------------------------------------------------------------------------


def _encoder(**options: object) -> torch.nn.Module:
    node = {"type": "resnet", "depth": 18, "id_dim": 8, "exp_dim": 4, **options}
    return get_registry().build("encoder", node, {})


def test_start_from_landmarks_makes_the_codes_the_landmark_heads_alone() -> None:
    torch.manual_seed(0)
    encoder = _encoder(**ENCODER).eval()
    for head in (encoder.id_head, encoder.exp_head):
        assert not head.weight.any() and not head.bias.any()
    images = torch.rand(3, 3, 32, 32)
    marks = 8.0 + 16.0 * torch.rand(3, 68, 2)
    codes = encoder(images, marks)
    alone = encoder.encode_landmarks(marks)
    assert alone["identity"].abs().max() > 0  # small random heads, not zero
    assert torch.equal(codes.identity, alone["identity"])
    assert torch.equal(codes.expression, alone["expression"])
    # the default start: the landmark heads at zero, the image heads random
    default = _encoder(landmark_input=True).eval()
    assert not default.encode_landmarks(marks)["identity"].any()
    assert default(images, marks).identity.abs().max() > 0


def test_start_from_and_encode_landmarks_refuse_what_they_cannot_do() -> None:
    with pytest.raises(ValueError, match="needs landmark_input"):
        _encoder(start_from="landmarks")
    with pytest.raises(ValueError, match="start_from must be one of"):
        _encoder(landmark_input=True, start_from="pixels")
    with pytest.raises(NotImplementedError, match="cannot encode landmarks alone"):
        _encoder().encode_landmarks(torch.zeros(1, 68, 2))
    with pytest.raises(ValueError, match=r"\(B, 68, 2\)"):
        _encoder(landmark_input=True).encode_landmarks(torch.zeros(1, 5, 2))


# -- the datasets' labels --------------------------------------------------------------------------


def test_labels_match_the_samples_without_reading_images(monkeypatch: pytest.MonkeyPatch) -> None:
    from facerep.data.holdout import split_identities
    from facerep.world.cache import ensure_world, source_root

    registry = get_registry()
    face_model = registry.build("facemodel", {"type": "synthetic", "vertices": 600, "seed": 0})
    root = source_root(ensure_world("tiny", 0), "w300lp")
    dataset = registry.build("dataset", {"type": "w300lp", "root": str(root)}, {"face_model": face_model})
    training, held = split_identities(dataset, 2)
    for view in (dataset, training, held):
        for index in (0, len(view) - 1):
            sample, labels = view[index], view.labels(index)
            assert labels["identity"] == sample["identity"]
            for key in ("id_params", "exp_params"):
                assert torch.allclose(torch.as_tensor(labels[key]), torch.as_tensor(sample[key]))
            # the source image's frame vs the crop's: one translation and scale apart
            crop = torch.as_tensor(sample["landmarks"])[None].float()
            source = torch.as_tensor(labels["landmarks"])[None].float()
            assert torch.allclose(landmark_features(crop), landmark_features(source), atol=1e-4)
    monkeypatch.setattr(type(dataset), "_load", lambda *a: pytest.fail("labels() read an image"))
    assert training.labels(1)["identity"] == training.identities[1]


# -- a run -----------------------------------------------------------------------------------------------


def test_a_pretrained_run_starts_its_image_training_below_the_mean_face(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = loop.pretrain_on_landmarks
    monkeypatch.setattr(loop, "pretrain_on_landmarks", lambda *a: calls.append(1) or real(*a))
    path = _recipe(tmp_path, {"steps": 600, "lr": 3e-3, "batch": 64})
    run = Trainer(load_recipe(path), TrainOptions(out=tmp_path / "run", quiet=True, max_steps=1)).fit()
    records = _records(run)
    pretrain = next(r for r in records if "landmark_pretrain/loss" in r)
    assert pretrain["step"] == 0 and pretrain["landmark_pretrain/steps"] == 600
    assert pretrain["landmark_pretrain/loss"] < 0.9 * pretrain["landmark_pretrain/loss_first"]
    first = next(r for r in records if "val/identity_ratio" in r)
    assert first["step"] == 0 and first["val/identity_ratio"] < 0.95  # before any image step
    # without pre-training the linear decoder starts at the mean face exactly
    plain = Trainer(
        load_recipe(_recipe(tmp_path, None, name="plain.yaml")),
        TrainOptions(out=tmp_path / "plain", quiet=True, max_steps=1),
    ).fit()
    start = next(r for r in _records(plain) if "val/identity_ratio" in r)
    assert start["val/identity_ratio"] == pytest.approx(1.0, abs=1e-4)
    # a resumed stage does not pre-train again: its checkpoint holds the result
    assert len(calls) == 1
    Trainer(load_recipe(path), TrainOptions(out=tmp_path / "run", quiet=True, resume=True)).fit()
    assert len(calls) == 1
    assert sum("landmark_pretrain/loss" in r for r in _records(run)) == 1


def test_fresh_faces_need_no_labelled_source_and_fit_shapes_beyond_the_3dmm(tmp_path: Path) -> None:
    fresh = load_recipe(_recipe(tmp_path, {"source": "fresh"}, name="fresh.yaml"))
    require_labelled(fresh, [])  # no labelled source needed
    with pytest.raises(RecipeError, match="source: fresh pre-trains on fresh synthetic faces instead"):
        require_labelled(load_recipe(_recipe(tmp_path, True)), [])
    path = _recipe(tmp_path, {"source": "fresh", "steps": 200, "lr": 3e-3, "batch": 32}, name="fresh.yaml")
    recipe = yaml.safe_load(path.read_text())
    recipe["model"]["shape_decoder"]["detail"] = True
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    run = Trainer(load_recipe(path), TrainOptions(out=tmp_path / "run", quiet=True, max_steps=1)).fit()
    pretrain = next(r for r in _records(run) if "landmark_pretrain/loss" in r)
    assert pretrain["landmark_pretrain/images"] == 200 * 32  # a fresh face for every row of every step
    # on faces it never saw, the landmark branch's neutral shapes are nearer than the mean face
    from facerep.apps.model import load
    from facerep.world.fresh_faces import FreshFaces

    rep = load(run, device="cpu")
    model = rep.model
    faces = FreshFaces(rep.face_model, noise=0.0).draw(256, torch.Generator().manual_seed(123))
    with torch.no_grad():
        codes = model.encoder.encode_landmarks(faces.landmarks)
        decoded = model.shape_decoder(codes["identity"], torch.zeros_like(codes["expression"]))
    mean = torch.as_tensor(rep.face_model.mean).float()
    error = (decoded - faces.neutral).norm(dim=-1).mean()
    assert error < 0.95 * (mean - faces.neutral).norm(dim=-1).mean()  # 0.92x after 200 steps
    assert model.shape_decoder.detail.weight.abs().max() > 0  # it learnt detail beyond the 3DMM span
