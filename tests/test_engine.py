"""The trainer end to end on a tiny synthetic world: stages, checkpoints, resume, non-finite losses."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from facerep.common.errors import FacerepError, NonFiniteLossError
from facerep.core.recipe import load_recipe
from facerep.testing.runs import tiny_recipe_text
from facerep.train import checkpoint as ckpt
from facerep.train import loop
from facerep.train.options import TrainOptions
from facerep.train.run import load_run
from facerep.train.trainer import Trainer

#: The tests' train options over the tiny recipe's (2 steps per epoch).
TRAIN = {"sample_every": 1000, "checkpoint_every": 1000, "keep_checkpoints": 2}


def tiny_recipe(
    tmp_path: Path,
    parent: str = "full",
    epochs: tuple[int, int] = (2, 1),
    train: str = "",
    extra: str = "",
    name: str = "tiny.yaml",
) -> Path:
    """The tiny recipe (`facerep.testing.runs.tiny_recipe_text`) extending `parent`, written to
    `tmp_path`/`name`: 2 steps per epoch, `epochs` per stage, `train` lines added."""
    options = {**TRAIN, **(yaml.safe_load(train) or {})}
    path = tmp_path / name
    text = tiny_recipe_text(parent, steps=2, epochs=epochs, train=options, name="tiny")
    path.write_text(text + textwrap.dedent(extra))
    return path


def train(recipe: Path, out: Path, overrides: list[str] | None = None, **options: object) -> Path:
    resolved = load_recipe(recipe, overrides=overrides)
    return Trainer(resolved, TrainOptions(out=out, **{"quiet": True, **options})).fit()


def weights(run: Path) -> dict[str, torch.Tensor]:
    last = ckpt.list_checkpoints(run / "checkpoints")[-1]
    return {k: v for k, v in ckpt.load_checkpoint(last).tensors.items() if not k.startswith("rng.")}


def test_two_stage_run_writes_everything(tmp_path: Path) -> None:
    run = train(tiny_recipe(tmp_path), tmp_path / "run")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["gcn_albedo"] * 4 + ["unet_albedo"] * 2
    for key in ("loss/photometric", "loss/recognition", "loss/shape", "loss/adversarial", "loss/critic"):
        assert all(key in r and r[key] == r[key] for r in records), key
    assert (run / "recipe.yaml").is_file() and (run / "plugins.json").is_file()
    assert len(ckpt.list_checkpoints(run / "checkpoints")) == 2  # keep_checkpoints
    assert list((run / "samples").glob("*.png"))
    loaded = load_run(run)
    assert type(loaded.model.albedo_decoder).__name__.lower().startswith("unet")
    assert loaded.neutral_expression.shape == (64,)
    codes = loaded.model.encode(torch.rand(2, 3, 32, 32))
    shape = loaded.model.decode_shape(codes.identity, codes.expression)
    assert shape.shape == (2, loaded.face_model.num_vertices, 3)


class _KilledError(Exception):
    pass


def test_resume_reaches_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(2, 0), train="checkpoint_every: 3")
    reference = weights(train(recipe, tmp_path / "ref"))

    original = loop.train_step
    calls = {"n": 0}

    def dying_step(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 4:  # mid-epoch (second epoch), after the checkpoint of step 3
            raise _KilledError
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", dying_step)
    with pytest.raises(_KilledError):
        train(recipe, tmp_path / "resumed")
    monkeypatch.setattr(loop, "train_step", original)
    with pytest.raises(FacerepError, match="--resume"):
        train(recipe, tmp_path / "resumed")  # an existing run is never overwritten
    train(recipe, tmp_path / "resumed", resume=True)
    resumed = weights(tmp_path / "resumed")
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(1, 0), train="checkpoint_every: 1")
    run = train(recipe, tmp_path / "run")
    paths = ckpt.list_checkpoints(run / "checkpoints")
    paths[-1].write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match=str(paths[-1])):
        ckpt.load_checkpoint(paths[-1])
    messages: list[str] = []
    path, _ = ckpt.load_latest(run / "checkpoints", warn=messages.append)
    assert path == paths[-2] and str(paths[-1]) in messages[0]


def test_nonfinite_loss_stops_with_names_or_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facerep.core.registry import get_registry

    loss_cls = get_registry().get("loss", "landmark").factory
    monkeypatch.setattr(loss_cls, "forward", lambda self, batch, recon, ctx: torch.tensor(float("nan")))
    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(1, 0))
    with pytest.raises(NonFiniteLossError) as info:
        train(recipe, tmp_path / "stop")
    message = str(info.value)
    assert "'landmark'" in message and "step 0" in message and "debug checkpoint" in message
    assert (info.value.loss, info.value.step) == ("landmark", 0) and info.value.samples
    assert isinstance(info.value, FloatingPointError)  # the class the losses' own checks raise
    assert list((tmp_path / "stop" / "checkpoints").glob("debug-*.safetensors"))
    skip = tiny_recipe(
        tmp_path,
        parent="gcn_albedo_only",
        epochs=(1, 0),
        train="on_nonfinite: skip",
        name="skip.yaml",
    )
    run = train(skip, tmp_path / "skip")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["nonfinite_loss"] for r in records] == ["landmark", "landmark"]
    assert records[-1]["skipped_nonfinite"] == 2 and records[-1]["skipped_sample_ids"]


@pytest.mark.parametrize(
    ("parent", "check"),
    [
        ("no_adv", lambda c: c.critic is None and "adversarial" not in c.losses),
        ("no_recog", lambda c: "recognition" not in c.losses and c.critic is not None),
        ("laplacian_smooth", lambda c: type(c.losses["smooth"]).__name__.lower().startswith("laplacian")),
        (
            "no_mask_symm",
            lambda c: "albedo_symmetry" not in c.losses and not c.losses["photometric"].use_mask,
        ),
        ("linear_3dmm", lambda c: type(c.model.shape_decoder).__name__.lower().startswith("linear")),
    ],
)
def test_ablations_build_as_intended_and_train(tmp_path: Path, parent: str, check) -> None:  # noqa: ANN001
    from facerep.train.stage import build_stage

    recipe = load_recipe(tiny_recipe(tmp_path, parent=parent))
    _, first = next(recipe.stages())
    comps = build_stage(first, device=torch.device("cpu"))
    assert check(comps)
    run = Trainer(recipe, TrainOptions(out=tmp_path / "run", quiet=True, max_steps=1)).fit()
    assert ckpt.list_checkpoints(run / "checkpoints")


def test_bf16_mixed_precision_trains_both_stages_with_float32_losses(tmp_path: Path) -> None:
    """`--precision bf16-mixed`: the model's forward under autocast; losses, including the pairwise
    loss's own decoder calls, see float32; weights and optimiser states stay float32."""
    recipe = tiny_recipe(tmp_path, epochs=(1, 1))
    run = train(recipe, tmp_path / "run", precision="bf16-mixed")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["gcn_albedo"] * 2 + ["unet_albedo"] * 2
    assert all(r["loss/total"] == r["loss/total"] and abs(r["loss/total"]) < 1e6 for r in records)
    assert all("loss/pairwise" in r for r in records)
    assert all(v.dtype != torch.bfloat16 for v in weights(run).values())


def test_resume_after_sigkill_reaches_the_same_weights(tmp_path: Path) -> None:
    """A `facerep run` process killed with SIGKILL mid-epoch, then resumed, equals an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(15, 0), train="checkpoint_every: 5")
    reference = weights(train(recipe, tmp_path / "ref"))  # 30 steps

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "facerep", "run", str(recipe), "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "step-00000005.safetensors").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = ckpt.list_checkpoints(out / "checkpoints")
    assert done and done[-1].name != "step-00000030.safetensors"  # it really stopped early

    train(recipe, out, resume=True)
    resumed = weights(out)
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_batch_sizes_processes_cannot_share_are_a_recipe_error(tmp_path: Path) -> None:
    from facerep.common.errors import RecipeError
    from facerep.train.stage import build_stage

    stage = load_recipe(tiny_recipe(tmp_path)).stage("gcn_albedo")
    message = "data.batch.labelled_pairs = 1 is not a multiple of the 2 processes"
    with pytest.raises(RecipeError, match=message) as err:
        build_stage(stage, device=torch.device("cpu"), rank=0, world_size=2)
    assert "tiny.yaml" in str(err.value)


def test_load_run_builds_with_the_identity_count_the_run_trained_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count comes from the checkpoint, not from a loss's parameters: a run without a recognition
    loss has no classifier to read it from."""
    from facerep.train import run as run_module

    recipe = tiny_recipe(
        tmp_path, parent="gcn_albedo_only", epochs=(1, 0), extra="unset: [losses.recognition]\n"
    )
    out = train(recipe, tmp_path / "run")
    meta = ckpt.load_checkpoint(ckpt.list_checkpoints(out / "checkpoints")[-1]).meta
    seen: list[int] = []
    build_model = run_module.build_model

    def spy(stage, context, registry):  # noqa: ANN001, ANN202
        seen.append(context["num_identities"])
        return build_model(stage, context, registry)

    monkeypatch.setattr(run_module, "build_model", spy)
    loaded = load_run(out)
    assert "recognition" not in loaded.recipe.get("losses")
    assert seen == [meta["num_identities"]] and meta["num_identities"] > 1
