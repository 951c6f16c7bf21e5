"""``facerep recipe validate`` and ``facerep run`` check a recipe alike (facerep.train.recipe_check).

Every bad recipe here extends the built-in ``demo`` and is refused by the shared check at the child
file's line, with the key and the cause, by the validate command (exit 2, one line) and by the trainer
before it writes or builds anything; factory refusals become recipe errors at the argument's line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerep.cli.app import main
from facerep.common.errors import DataError, RecipeError
from facerep.common.paths import cache_dir
from facerep.core.model import build_model
from facerep.core.recipe import load_recipe
from facerep.core.registry import get_registry
from facerep.train.options import TrainOptions
from facerep.train.recipe_check import check_recipe
from facerep.train.trainer import Trainer

# (name, YAML after "extends: demo_pixels\n", line of the offending key, its address, words of the cause)
BAD_RECIPES = [
    ("train_key", "train:\n  epochz: 3\n", 3, "train.epochz", "did you mean 'epochs'"),
    (
        "image_size_text",
        "data:\n  image_size: sixty-four\n",
        3,
        "data.image_size",
        "got the string 'sixty-four'",
    ),
    ("image_size_float", "data:\n  image_size: 64.5\n", 3, "data.image_size", "positive integer"),
    ("negative_batch", "data:\n  batch:\n    identities: -2\n", 4, "data.batch.identities", ">= 0, got -2"),
    ("empty_batch", "data:\n  batch:\n    identities: 0\n    labelled_pairs: 0\n", 4, "data.batch", "empty"),
    (
        "batch_key",
        "data:\n  batch:\n    identitiez: 2\n",
        4,
        "data.batch.identitiez",
        "did you mean 'identities'",
    ),
    ("batch_scalar", "data:\n  batch: 8\n", 3, "data.batch", "must be a mapping"),
    ("data_scalar", "data: 5\n", 2, "data", "'data' must be a mapping, got int 5"),
    ("data_key", "data:\n  imagesize: 64\n", 3, "data.imagesize", "did you mean 'image_size'"),
    ("no_sources", "data:\n  sources:\n    _replace_: true\n", 3, "data.sources", "no data sources"),
    (
        "augment_scale",
        "data:\n  augment:\n    scale: [0.9, 1.2]\n",
        4,
        "data.augment.scale",
        "0 < low <= high",
    ),
    ("augment_flip", "data:\n  augment:\n    flip: 'yes'\n", 4, "data.augment.flip", "true or false"),
    ("workers", "data:\n  num_workers: -1\n", 3, "data.num_workers", ">= 0"),
    ("world_preset", "data:\n  world:\n    preset: demoo\n", 4, "data.world.preset", "did you mean 'demo'"),
    (
        "world_size",
        "data:\n  world:\n    labeled_sources: 9\n",
        4,
        "data.world.labeled_sources",
        "'labelled_sources'",
    ),
    ("world_seed", "data:\n  world:\n    seed: -3\n", 4, "data.world.seed", ">= 0"),
    (
        "source_root",
        "data:\n  sources:\n    photos:\n      root: /no/such/folder\n",
        5,
        "data.sources.photos.root",
        "not a folder",
    ),  # fmt: skip
    (
        "source_crop",
        "data:\n  sources:\n    photos:\n      crop: centre\n",
        5,
        "data.sources.photos.crop",
        "did you mean 'center'",
    ),  # fmt: skip
    (
        "builtin_type",
        "data:\n  sources:\n    extra: {type: aflw2000, root: builtin}\n",
        4,
        "data.sources.extra.root",
        "the synthetic world has no data",
    ),  # fmt: skip
    ("train_scalar", "train: 5\n", 2, "train", "'train' must be a mapping"),
    ("checkpoint_zero", "train:\n  checkpoint_every: 0\n", 3, "train.checkpoint_every", ">= 1, got 0"),
    ("log_every_text", "train:\n  log_every: '10'\n", 3, "train.log_every", "got '10'"),
    ("precision", "train:\n  precision: bf16\n", 3, "train.precision", "did you mean 'bf16-mixed'"),
    ("grad_clip", "train:\n  grad_clip: -1\n", 3, "train.grad_clip", "number >= 0"),
    ("bad_sample", "train:\n  on_bad_sample: ignore\n", 3, "train.on_bad_sample", "'error' or 'skip'"),
    ("validate_key", "train:\n  validate:\n    evry: 3\n", 4, "train.validate.evry", "did you mean 'every'"),
    ("seed", "seed: -1\n", 2, "seed", "integer in [0,"),
    ("name", "name: [a, b]\n", 2, "name", "must be text"),
    ("model_key", "model:\n  encodr:\n    type: resnet\n", 3, "model.encodr", "did you mean 'encoder'"),
    ("optim_key", "optim:\n  critc:\n    type: adam\n", 3, "optim.critc", "did you mean 'critic'"),
    (
        "stage_key",
        "stages:\n  gcn_albedo:\n    trian:\n      epochs: 1\n",
        4,
        "trian",
        "did you mean 'train'",
    ),
    ("stage_extends", "stages:\n  gcn_albedo:\n    extends: full\n", 4, "extends", "top of a recipe file"),
    (
        "stage_value",
        "stages:\n  unet_albedo:\n    data:\n      image_size: 0\n",
        5,
        "data.image_size",
        "positive",
    ),
    ("no_renderer", "unset: [renderer]\n", 2, "renderer", "no 'renderer'"),
    ("critic_optimizer", "unset: [optim.critic]\n", 2, "critic", "needs an optimizer at 'optim.critic'"),
    ("adversarial_critic", "unset: [critic, optim.critic]\n", 2, "losses.adversarial", "needs a 'critic'"),
    (
        "bool_argument",
        "model:\n  encoder:\n    channels_last: 'yes'\n",
        4,
        "model.encoder.channels_last",
        "must be true or false, got the string 'yes'",
    ),  # fmt: skip
    ("pair_argument", "optim:\n  model:\n    betas: [0.9]\n", 4, "optim.model.betas", "a list of 2 numbers"),
    (
        "list_argument",
        "model:\n  shape_decoder:\n    channels: 5\n",
        4,
        "model.shape_decoder.channels",
        "a list of integers",
    ),  # fmt: skip
    ("nan_argument", "losses:\n  shape:\n    weight: .nan\n", 4, "losses.shape.weight", "a finite number"),
]


def bad_recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "child.yaml"
    path.write_text("extends: demo_pixels\n" + text)
    return path


def check_error(path: Path) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        check_recipe(load_recipe(path))
    return info.value


@pytest.mark.parametrize(
    ("name", "text", "line", "address", "words"), BAD_RECIPES, ids=[c[0] for c in BAD_RECIPES]
)
def test_the_shared_check_refuses_at_the_child_line(
    tmp_path: Path, name: str, text: str, line: int, address: str, words: str
) -> None:
    path = bad_recipe(tmp_path, text)
    err = check_error(path)
    assert err.address == address and words in err.message, err
    assert err.where == f"{path}:{line}", err


@pytest.mark.parametrize(
    ("name", "text", "line", "address", "words"),
    [c for c in BAD_RECIPES if c[0] in ("train_key", "negative_batch", "stage_value", "adversarial_critic")],
)
def test_the_trainer_refuses_the_same_recipes_before_writing_anything(
    tmp_path: Path, name: str, text: str, line: int | None, address: str, words: str
) -> None:
    path = bad_recipe(tmp_path, text)
    expected = check_error(path)
    out = tmp_path / "run"
    with pytest.raises(RecipeError) as info:
        Trainer(load_recipe(path), TrainOptions(out=out, quiet=True)).fit()
    assert str(info.value) == str(expected)
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "line", "address", "words"),
    [
        ("data:\n  image_size: sixty-four\n", 3, "data.image_size", "sixty-four"),
        ("data:\n  batch:\n    identities: -2\n", 4, "data.batch.identities", "-2"),
        ("data: 5\n", 2, "data", "must be a mapping"),
        ("train:\n  epochz: 3\n", 3, "train.epochz", "did you mean 'epochs'"),
        ("model:\n  encoder:\n    depth: 7\n", 4, "model.encoder.depth", "depth must be one of [18, 34, 50]"),
        (
            "model:\n  encoder:\n    weights: /no/such/weights.pth\n",
            4,
            "model.encoder.weights",
            "does not exist",
        ),
        (
            "stages:\n  unet_albedo:\n    model:\n      albedo_decoder:\n        width: -1\n",
            6,
            "model.albedo_decoder.width",
            "negative dimension",
        ),  # fmt: skip
    ],
)
def test_validate_exits_2_with_one_line_naming_file_line_key_and_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, address: str, words: str
) -> None:
    path = bad_recipe(tmp_path, text)
    with pytest.raises(SystemExit) as info:
        main(["recipe", "validate", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and err.startswith(f"error: {path}:{line}, key '{address}': ") and words in err
    )


def test_validate_says_ok_for_a_good_child(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_recipe(tmp_path, "model:\n  encoder:\n    depth: 34\ntrain:\n  epochs: 2\n")
    main(["recipe", "validate", str(path)])
    assert capsys.readouterr().out.startswith(f"ok: {path} (36 components over 2 stage(s))")


def test_factory_errors_in_a_run_are_recipe_errors_at_the_argument_line(tmp_path: Path) -> None:
    path = bad_recipe(tmp_path, "model:\n  encoder:\n    depth: 7\n")
    stage = load_recipe(path).stage("gcn_albedo")
    registry = get_registry()
    context = {"cache_dir": cache_dir(), "device": torch.device("cpu"), "image_size": 64, "num_identities": 2}
    context["face_model"] = registry.build("facemodel", stage.get("face_model"), context)
    with pytest.raises(RecipeError) as info:
        build_model(stage, context, registry)  # what `facerep run` calls for each stage
    assert info.value.where == f"{path}:4" and info.value.address == "model.encoder.depth"
    assert isinstance(info.value, ValueError)  # code catching the factory's own class still does
    assert isinstance(info.value.__cause__, ValueError)  # the factory's traceback is kept


def test_a_missing_face_model_file_is_a_recipe_error_that_is_still_a_data_error(tmp_path: Path) -> None:
    path = bad_recipe(tmp_path, "face_model:\n  _replace_: true\n  type: bfm\n  path: /no/such/bfm.mat\n")
    with pytest.raises(RecipeError) as info:
        check_recipe(load_recipe(path), build=True)
    assert info.value.where == f"{path}:5" and info.value.address == "face_model.path"
    assert isinstance(info.value, DataError) and "/no/such/bfm.mat: not found" in info.value.message


def test_an_unnamed_argument_is_blamed_by_its_quoted_value_or_as_the_latest_override(tmp_path: Path) -> None:
    # "needs k >= 0 and p > 0, got k=-1, p=6.0" names both arguments and quotes both values: k is the one
    # the child set
    path = bad_recipe(tmp_path, "losses:\n  adversarial:\n    k: -1\n")
    with pytest.raises(RecipeError) as info:
        check_recipe(load_recipe(path), build=True)
    assert info.value.where == f"{path}:4" and info.value.address == "losses.adversarial.k"
    # "expected non-negative integer" (numpy) names nothing: of the node's arguments, the --set one
    recipe = load_recipe("demo", overrides=["face_model.seed=-1"])
    with pytest.raises(RecipeError) as info:
        check_recipe(recipe, build=True)
    assert info.value.address == "face_model.seed" and info.value.where == "--set face_model.seed=-1"


def test_every_builtin_recipe_passes_the_whole_check() -> None:
    from facerep.core.recipe import builtin_recipe_names

    for name in builtin_recipe_names():
        checked = check_recipe(load_recipe(name))
        assert {entry.split(":")[0] for _, _, entry in checked} >= {"facemodel", "dataset", "optimizer"}


def test_a_top_level_key_nothing_reads_is_unknown(tmp_path: Path) -> None:
    path = bad_recipe(tmp_path, "output:\n  dir: somewhere\n")  # was accepted, then ignored
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert info.value.where == f"{path}:2" and "unknown top-level key 'output'" in info.value.message
