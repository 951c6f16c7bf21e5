"""``train.freeze`` (facerep.train.freeze): frozen parameters stay out of the optimiser and do not move;
bad prefixes are recipe errors at their line with the closest name; landmark pre-training still
trains what the image steps keep fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from facerep.common.errors import RecipeError
from facerep.core.recipe import load_recipe
from facerep.testing.runs import tiny_recipe_text
from facerep.train import checkpoint as ckpt
from facerep.train import loop
from facerep.train.options import TrainOptions
from facerep.train.recipe_check import check_recipe
from facerep.train.trainer import Trainer


def _recipe(tmp_path: Path, freeze: object, pretrain: object = None) -> Path:
    train = {"freeze": freeze, "landmark_pretrain": pretrain}
    recipe = yaml.safe_load(tiny_recipe_text("gcn_albedo_only", steps=2, train=train))
    recipe["model"]["encoder"].update({"landmark_input": True, "start_from": "landmarks"})
    recipe["model"]["shape_decoder"] = {"_replace_": True, "type": "linear"}
    path = tmp_path / "freeze.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _final(run: Path) -> dict[str, torch.Tensor]:
    last = ckpt.list_checkpoints(run / "checkpoints")[-1]
    return ckpt.load_checkpoint(last).tensors


@pytest.mark.parametrize(
    ("freeze", "words"),
    [
        (["shape_decodr"], "did you mean 'shape_decoder'"),
        (["encoder.landmark_head"], "did you mean 'encoder.landmark_heads'"),
        ("shape_decoder", "must be a list"),
        ([""], "must be a list"),
    ],
)
def test_bad_prefixes_are_recipe_errors_with_the_closest_name(
    tmp_path: Path, freeze: object, words: str
) -> None:
    with pytest.raises(RecipeError) as caught:
        check_recipe(load_recipe(_recipe(tmp_path, freeze)), build=True)
    assert words in str(caught.value) and "freeze.yaml" in str(caught.value)
    assert caught.value.address == "train.freeze"


def test_frozen_parameters_do_not_move_and_the_rest_trains(tmp_path: Path) -> None:
    run = Trainer(
        load_recipe(_recipe(tmp_path, ["encoder.layers", "encoder.stem"])),
        TrainOptions(out=tmp_path / "run", quiet=True),
    ).fit()
    from facerep.core.registry import get_registry

    torch.manual_seed(0)  # the run's seed: the encoder as the run built it
    first = get_registry().build(
        "encoder", {"type": "resnet", "depth": 18, "landmark_input": True, "start_from": "landmarks"}, {}
    )
    after = _final(run)
    for name, value in first.state_dict().items():
        if name.startswith(("layers.", "stem.")) and not name.endswith(
            ("running_mean", "running_var", "num_batches_tracked")
        ):
            assert torch.equal(after[f"model.encoder.{name}"], value), name
    assert not torch.equal(after["model.encoder.id_head.weight"], first.id_head.weight.detach())


def test_pretraining_trains_what_the_image_steps_keep_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    after_pretrain: dict[str, torch.Tensor] = {}
    real = loop.pretrain_on_landmarks

    def spy(run, name, stage, comps, config):  # noqa: ANN001, ANN202
        record = real(run, name, stage, comps, config)
        after_pretrain.update({k: v.clone() for k, v in comps.model.shape_decoder.state_dict().items()})
        assert not any(p.requires_grad for p in comps.model.shape_decoder.parameters())  # restored
        return record

    monkeypatch.setattr(loop, "pretrain_on_landmarks", spy)
    recipe = _recipe(tmp_path, ["shape_decoder", "encoder.landmark_heads"], {"steps": 5, "batch": 4})
    run = Trainer(load_recipe(recipe), TrainOptions(out=tmp_path / "run", quiet=True)).fit()
    final = _final(run)
    weight = final["model.shape_decoder.fc.weight"]
    assert weight.abs().max() > 0  # pre-training moved the zero-started decoder
    assert torch.equal(weight, after_pretrain["fc.weight"])  # the image steps did not
