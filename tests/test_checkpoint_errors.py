"""Checkpoints that cannot be used: each file is named with what it is instead, a fall-back to an older
checkpoint warns, and weights or metadata that do not fit are `CheckpointError`s, not raw exceptions."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from facerep.common.errors import CheckpointError
from facerep.core.recipe import load_recipe
from facerep.train import checkpoint as ckpt
from facerep.train.options import TrainOptions
from facerep.train.run import load_run
from facerep.train.trainer import Trainer

META = {
    "stage": 0,
    "stage_name": "main",
    "step": 3,
    "epoch": 0,
    "stage_step": 3,
    "epoch_step": 3,
    "recipe": {"name": "x"},
    "classes": {},
}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A small, whole checkpoint file with the metadata the trainer writes."""
    data = ckpt.CheckpointData({"model.w": torch.arange(64.0), "rng.torch": torch.get_rng_state()}, META)
    return ckpt.save_checkpoint(tmp_path / "checkpoints" / "step-00000003.safetensors", data)


def _torch_save(path: Path) -> None:
    torch.save({"model.w": torch.zeros(3)}, path)


def _foreign(path: Path) -> None:
    save_file({"weight": torch.zeros(3)}, str(path))  # another program's safetensors file


def _meta_without_recipe(path: Path) -> None:
    meta = {k: v for k, v in META.items() if k != "recipe"}
    save_file({"model.w": torch.zeros(3)}, str(path), metadata={"facerep": json.dumps(meta)})


def _meta_not_json(path: Path) -> None:
    save_file({"model.w": torch.zeros(3)}, str(path), metadata={"facerep": "{stage: 0"})


def _step_not_a_number(path: Path) -> None:
    meta = {**META, "step": "three"}
    save_file({"model.w": torch.zeros(3)}, str(path), metadata={"facerep": json.dumps(meta)})


def _classes_not_a_mapping(path: Path) -> None:
    meta = {**META, "classes": ["model.encoder"]}
    save_file({"model.w": torch.zeros(3)}, str(path), metadata={"facerep": json.dumps(meta)})


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _broken_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone.safetensors")


def _pipe(path: Path) -> None:  # opening a named pipe for reading would wait for a writer forever
    path.unlink()
    os.mkfifo(path)


CASES = {
    "zero-byte": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "four bytes": (lambda p: p.write_bytes(b"\x01\x02\x03\x04"), "4 bytes, too short for a safetensors file"),
    "truncated data": (lambda p: p.write_bytes(p.read_bytes()[:-40]), "truncated: "),
    "truncated header": (lambda p: p.write_bytes(p.read_bytes()[:30]), "truncated: its header alone needs"),
    "random bytes": (lambda p: p.write_bytes(bytes(range(256)) * 8), "not a safetensors file"),
    "text": (lambda p: p.write_text("hello, I am not a checkpoint\n"), "not a safetensors file"),
    "torch.save": (_torch_save, "a zip archive (a torch.save file?)"),
    "foreign safetensors": (_foreign, "not a facerep checkpoint"),
    "metadata lacks recipe": (_meta_without_recipe, "its facerep metadata lacks recipe"),
    "metadata not JSON": (_meta_not_json, "its facerep metadata is not JSON"),
    "step not a number": (_step_not_a_number, "its metadata step = 'three' is not a whole number"),
    "classes not a mapping": (_classes_not_a_mapping, "its metadata recipe or classes is not a mapping"),
    "a folder": (_folder, "not a regular file"),
    "a named pipe": (_pipe, "not a regular file"),
    "a broken link": (_broken_link, "a link to a missing file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unusable_checkpoint_is_named_with_what_it_is(good: Path, case: str) -> None:
    damage, reason = CASES[case]
    damage(good)
    with pytest.raises(CheckpointError) as info:
        ckpt.load_checkpoint(good)
    message = str(info.value)
    assert message.startswith(f"unreadable checkpoint {good}: ") and reason in message, message


def test_a_whole_checkpoint_loads(good: Path) -> None:
    data = ckpt.load_checkpoint(good)
    assert data.meta == META and torch.equal(data.tensors["model.w"], torch.arange(64.0))


def test_the_fall_back_to_an_older_checkpoint_names_the_skipped_file_and_why(good: Path) -> None:
    newer = good.with_name("step-00000009.safetensors")
    newer.write_bytes(good.read_bytes()[:-40])
    newest = good.with_name("step-00000010.safetensors")
    newest.write_bytes(b"")
    messages: list[str] = []
    path, data = ckpt.load_latest(good.parent, warn=messages.append)
    assert path == good and data.meta["step"] == 3
    assert messages[0].startswith(f"skipped checkpoint {newest} (empty file (0 bytes))")
    assert messages[1].startswith(f"skipped checkpoint {newer} (truncated: ")
    assert all("step-00000003.safetensors" in m for m in messages)


def test_no_readable_checkpoint_lists_every_file_and_its_reason(good: Path) -> None:
    good.write_bytes(b"")
    _foreign(good.with_name("step-00000004.safetensors"))
    with pytest.raises(CheckpointError) as info:
        ckpt.load_latest(good.parent)
    message = str(info.value)
    assert message.startswith(f"no readable checkpoint in {good.parent}: ")
    assert "step-00000004.safetensors: not a facerep checkpoint" in message
    assert "step-00000003.safetensors: empty file (0 bytes)" in message
    assert ckpt.load_latest(good.parent.parent / "nothing-here") is None


def test_stale_temporary_files_of_a_killed_write_are_removed(good: Path) -> None:
    stale = good.parent / ".step-00000004.safetensors.abc123.tmp"
    stale.write_bytes(b"half")
    other = good.parent / "notes.tmp"
    other.write_bytes(b"mine")
    assert ckpt.remove_temporary_files(good.parent) == [stale]
    assert not stale.exists() and other.exists() and good.exists()


# -- loading a run -------------------------------------------------------------------------------------


def _run_copy(tiny_trained_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    run = Path(shutil.copytree(tiny_trained_run, tmp_path / "run"))
    return run, ckpt.list_checkpoints(run / "checkpoints")[-1]


def test_load_run_warns_naming_a_skipped_newer_checkpoint(
    tiny_trained_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run, last = _run_copy(tiny_trained_run, tmp_path)
    torn = last.with_name("step-00000099.safetensors")
    torn.write_bytes(last.read_bytes()[:-1000])
    with caplog.at_level(logging.WARNING, logger="facerep.train.run"):
        loaded = load_run(run)
    assert loaded.checkpoint == last
    assert f"skipped checkpoint {torn} (truncated: " in caplog.text


def test_load_run_of_a_run_without_a_readable_checkpoint_names_each_file(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _run_copy(tiny_trained_run, tmp_path)
    last.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError) as info:
        load_run(run)
    assert f"{last.name}: not a safetensors file" in str(info.value)
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(CheckpointError, match=r"no checkpoint in .*has this run trained"):
        load_run(run)


def test_load_run_with_weights_of_another_shape_is_a_checkpoint_error(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _run_copy(tiny_trained_run, tmp_path)
    data = ckpt.load_checkpoint(last)
    key = next(k for k in data.tensors if k.startswith("model.shape_decoder.") and k.endswith("weight"))
    data.tensors[key] = torch.zeros(7, 5)
    ckpt.save_checkpoint(last, data)
    with pytest.raises(CheckpointError) as info:
        load_run(run)
    message = str(info.value)
    assert message.startswith(f"{last} does not match the model the recipe builds")
    assert f"{key[len('model.') :]} (7, 5) in the checkpoint" in message


def test_load_run_of_a_checkpoint_whose_recipe_builds_no_model_names_the_checkpoint(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _run_copy(tiny_trained_run, tmp_path)
    data = ckpt.load_checkpoint(last)
    data.meta["recipe"] = {"name": "not a model"}
    ckpt.save_checkpoint(last, data)
    with pytest.raises(CheckpointError) as info:
        load_run(run)
    assert str(info.value).startswith(f"{last}: the recipe stored in it does not build a model (")
    assert "face_model" in str(info.value)


def test_load_run_with_missing_metadata_or_tensors_is_a_checkpoint_error(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _run_copy(tiny_trained_run, tmp_path)
    data = ckpt.load_checkpoint(last)
    del data.meta["recipe"]
    ckpt.save_checkpoint(last, data)
    with pytest.raises(CheckpointError, match="its facerep metadata lacks recipe"):
        load_run(run, checkpoint=last)
    data.meta["recipe"] = ckpt.load_checkpoint(
        ckpt.list_checkpoints(tiny_trained_run / "checkpoints")[-1]
    ).meta["recipe"]
    dropped = [k for k in data.tensors if k.startswith("model.encoder.")][:2]
    for key in dropped:
        del data.tensors[key]
    ckpt.save_checkpoint(last, data)
    with pytest.raises(CheckpointError, match=r"missing encoder\."):
        load_run(run)


# -- resuming into a recipe the checkpoint does not fit ------------------------------------------------------


def _mid_stage(tiny_trained_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny run whose checkpoint is made a mid-stage one (the stage is not marked done)."""
    run, last = _run_copy(tiny_trained_run, tmp_path)
    data = ckpt.load_checkpoint(last)
    data.meta.pop("stage_complete")
    data.meta["stage"] = 0
    ckpt.save_checkpoint(last, data)
    return run, last


def _resume(tiny_trained_run: Path, run: Path, overrides: list[str]) -> None:
    recipe = load_recipe(
        tiny_trained_run.parent / f"{tiny_trained_run.name}.recipe.yaml", overrides=overrides
    )
    options = TrainOptions(out=run, quiet=True, resume=True, allow_recipe_change=True)
    Trainer(recipe, options).fit()


def test_resuming_weights_of_another_shape_names_the_checkpoint_and_the_component(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _mid_stage(tiny_trained_run, tmp_path)
    with pytest.raises(CheckpointError) as info:
        _resume(tiny_trained_run, run, ["model.shape_decoder.channels=[16, 8, 8, 4]"])
    message = str(info.value)
    assert message.startswith(f"{last} (model.shape_decoder) does not match the model the recipe builds")
    assert "shapes differ" in message


def test_resuming_a_component_of_another_type_names_both_classes(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _mid_stage(tiny_trained_run, tmp_path)
    with pytest.raises(CheckpointError) as info:
        _resume(tiny_trained_run, run, ["model.albedo_decoder={type: unet}"])
    message = str(info.value)
    assert message.startswith(f"{last}: its model.albedo_decoder is a ") and "the recipe builds a " in message
    assert "UNet" in message or "Unet" in message


def test_resuming_without_rng_or_optimiser_state_is_a_checkpoint_error(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run, last = _mid_stage(tiny_trained_run, tmp_path)
    data = ckpt.load_checkpoint(last)
    del data.meta["optimizers"]
    ckpt.save_checkpoint(last, data)
    with pytest.raises(CheckpointError, match=r"cannot restore the optimiser or sampler state \(KeyError"):
        _resume(tiny_trained_run, run, [])
