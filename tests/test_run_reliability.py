"""Interrupted and repeated runs: resume across a stage boundary, unreadable newest checkpoints, a changed
recipe, the user's recipe file, an earlier run's outputs, two runs at once, a torn metrics line, recipe
names that would leave runs/, and --max-steps below 1.

One tiny two-stage run (2 + 2 steps) is trained once per module; each test works on a copy of it.
A kill during the second stage is reproduced exactly by removing the run's last checkpoint (what a kill
before that checkpoint leaves) and, where it matters, a half-written metrics line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facerep.cli.app import main
from facerep.common.errors import FacerepError, RecipeError
from facerep.core.recipe import load_recipe
from facerep.testing.runs import tiny_recipe_text
from facerep.train import checkpoint as ckpt
from facerep.train.options import TrainOptions
from facerep.train.run_dir import LOCK_NAME, RunLock, trim_metrics
from facerep.train.trainer import Trainer

KEEP = ["train.keep_checkpoints=2"]  # keep both stage-final checkpoints


def fit(recipe: Path, out: Path, overrides: list[str] | None = None, **options: object) -> Path:
    resolved = load_recipe(recipe, overrides=[*KEEP, *(overrides or [])])
    return Trainer(resolved, TrainOptions(out=out, **{"quiet": True, **options})).fit()


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ckpt.load_checkpoint(path).tensors.items() if not k.startswith("rng.")}


def names(run: Path) -> list[str]:
    return [p.name for p in ckpt.list_checkpoints(run / "checkpoints")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(recipe, run): the tiny `full` recipe (stages gcn_albedo then unet_albedo, 2 steps each) trained."""
    root = tmp_path_factory.mktemp("two-stage")
    recipe = root / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    return recipe, fit(recipe, root / "run")


def copy_run(finished: tuple[Path, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished[1], tmp_path / "run"))


def test_the_reference_run_has_one_checkpoint_per_stage(finished: tuple[Path, Path]) -> None:
    run = finished[1]
    assert names(run) == ["step-00000002.safetensors", "step-00000004.safetensors"]
    metas = [ckpt.read_meta(p) for p in ckpt.list_checkpoints(run / "checkpoints")]
    assert [m["stage_complete"] for m in metas] == ["gcn_albedo", "unet_albedo"]


def test_a_run_stopped_in_its_second_stage_resumes_that_stage_like_an_uninterrupted_run(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, reference = finished
    run = copy_run(finished, tmp_path)
    (run / "checkpoints" / "step-00000004.safetensors").unlink()  # stopped before stage 2's checkpoint
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"stage": "unet_albedo", "loss/photo')  # and in the middle of a metrics line
    first = (run / "checkpoints" / "step-00000002.safetensors").read_bytes()

    fit(recipe, run, resume=True)

    assert names(run) == names(reference)
    assert (run / "checkpoints" / "step-00000002.safetensors").read_bytes() == first  # stage 1's, untouched
    last = ckpt.read_meta(run / "checkpoints" / "step-00000004.safetensors")
    assert (last["stage_complete"], last["step"], last["stage_step"]) == ("unet_albedo", 4, 2)
    want = tensors(reference / "checkpoints" / "step-00000004.safetensors")
    got = tensors(run / "checkpoints" / "step-00000004.safetensors")
    assert want.keys() == got.keys()
    for key in want:  # the fresh U-Net starts from the same RNG state as in the uninterrupted run
        assert torch.equal(want[key], got[key]), key
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in records] == [
        ("gcn_albedo", 1),
        ("gcn_albedo", 2),
        ("unet_albedo", 3),
        ("unet_albedo", 4),
    ]
    err = capsys.readouterr().err
    assert "metrics.jsonl:5: not a JSON record, cut short" in err

    fit(recipe, run, resume=True, quiet=False)  # resuming a finished run changes nothing
    assert names(run) == names(reference)
    assert "the run is complete" in capsys.readouterr().err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4


def test_an_unreadable_newest_checkpoint_is_set_aside_and_its_stage_trained_again(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, reference = finished
    run = copy_run(finished, tmp_path)
    newest = run / "checkpoints" / "step-00000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])  # a torn copy

    fit(recipe, run, resume=True)

    err = capsys.readouterr().err
    assert f"skipped checkpoint {newest}" in err.replace("\n", "") and "truncated" in err
    assert (run / "checkpoints" / "step-00000004.safetensors.unreadable").is_file()
    assert names(run) == names(reference)
    want, got = tensors(reference / "checkpoints" / newest.name), tensors(newest)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_resume_refuses_checkpoints_none_of_which_is_readable(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    recipe = finished[0]
    run = copy_run(finished, tmp_path)
    for path in ckpt.list_checkpoints(run / "checkpoints"):
        path.write_bytes(b"")
    with pytest.raises(FacerepError) as info:
        fit(recipe, run, resume=True)
    message = str(info.value)
    assert "step-00000002.safetensors: empty file (0 bytes)" in message
    assert "step-00000004.safetensors: empty file (0 bytes)" in message
    assert [p.stat().st_size for p in ckpt.list_checkpoints(run / "checkpoints")] == [0, 0]


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_max_steps_below_one_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: str
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    with pytest.raises(SystemExit) as info:
        main(["run", str(recipe), "--out", str(tmp_path / "run"), "--max-steps", steps, "--quiet"])
    assert info.value.code == 2
    assert "--max-steps" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(FacerepError, match="max_steps must be a whole number of steps >= 1"):
        TrainOptions(out=tmp_path / "run", max_steps=int(steps))


def test_resume_with_another_recipe_is_refused_with_the_differences_before_anything_is_written(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = finished[0]
    run = copy_run(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    args = ["run", str(recipe), "--out", str(run), "--resume", "--quiet", "--set", KEEP[0]]
    with pytest.raises(SystemExit) as info:
        main([*args, "--set", "model.encoder.depth=34", "--unset", "losses.landmark"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "step-00000004.safetensors" in err and "--allow-recipe-change" in err
    assert "model.encoder.depth: 18 -> 34" in err
    assert "losses.landmark.type: " in err and "-> (absent)" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_allow_recipe_change_goes_on_and_keeps_the_old_recipe_beside_the_new(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = finished[0]
    run = copy_run(finished, tmp_path)
    old = (run / "recipe.yaml").read_text()
    fit(recipe, run, ["train.log_every=5"], resume=True, allow_recipe_change=True)
    assert (run / "recipe.before-step-00000004.yaml").read_text() == old
    assert load_recipe(run / "recipe.yaml").get("train.log_every") == 5
    assert "train.log_every: 1 -> 5" in capsys.readouterr().err


def test_resuming_with_the_run_folders_own_recipe_file_is_allowed(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(finished, tmp_path)
    text = (run / "recipe.yaml").read_text()
    main(["run", str(run / "recipe.yaml"), "--out", str(run), "--resume"])
    assert (run / "recipe.yaml").read_text() == text
    assert "the run is complete" in capsys.readouterr().err


def test_the_users_recipe_file_in_the_run_folder_is_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    mine = exp / "recipe.yaml"
    mine.write_text("# my experiment: the tiny full model\n" + tiny_recipe_text("full", steps=2))
    text = mine.read_text()
    for extra in ([], ["--resume"]):
        with pytest.raises(SystemExit) as info:
            main(["run", str(mine), "--out", str(exp), "--quiet", *extra])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "is the recipe you passed" in err and f"--out {exp / 'run'}" in err.replace("\n", "")
        assert mine.read_text() == text
        assert sorted(p.name for p in exp.iterdir()) == ["recipe.yaml"]


def test_a_fresh_run_refuses_a_folder_holding_an_earlier_runs_outputs(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    out = tmp_path / "run"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "gcn_albedo-step-00000250.png").write_bytes(b"png")
    (out / "metrics.jsonl").write_text('{"stage": "gcn_albedo", "step": 250}\n')
    with pytest.raises(FacerepError) as info:
        fit(recipe, out)
    message = str(info.value)
    assert "metrics.jsonl" in message and "samples" in message and "--resume" in message
    assert (out / "metrics.jsonl").read_text() == '{"stage": "gcn_albedo", "step": 250}\n'
    assert not (out / "recipe.yaml").exists() and not (out / "checkpoints").exists()


def test_a_fresh_run_refuses_a_folder_whose_recipe_yaml_is_another_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    out = tmp_path / "run"
    out.mkdir()
    other = load_recipe(recipe, overrides=[*KEEP, "name=something-else"]).to_yaml()
    (out / "recipe.yaml").write_text(other)
    with pytest.raises(FacerepError) as info:
        fit(recipe, out)
    assert str(info.value).startswith(f"{out / 'recipe.yaml'} holds another recipe than this one:\n")
    assert '\n  name: "something-else" -> "tiny-full"\n' in str(info.value)
    assert (out / "recipe.yaml").read_text() == other


def test_resuming_at_or_past_a_lowered_max_steps_ends_the_stage_without_training(
    tiny_trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(tiny_trained_run, tmp_path / "run"))
    last = ckpt.list_checkpoints(run / "checkpoints")[-1]
    data = ckpt.load_checkpoint(last)  # made a mid-stage checkpoint at the stage's step 2
    data.meta.pop("stage_complete")
    data.meta["stage"] = 0
    ckpt.save_checkpoint(last, data)
    recipe = load_recipe(tiny_trained_run.parent / f"{tiny_trained_run.name}.recipe.yaml")
    Trainer(recipe, TrainOptions(out=run, quiet=True, resume=True, max_steps=1)).fit()
    assert ckpt.list_checkpoints(run / "checkpoints") == [last]
    done = ckpt.load_checkpoint(last)
    assert done.meta["stage_complete"] == data.meta["stage_name"] and done.meta["step"] == 2
    assert all(torch.equal(done.tensors[k], v) for k, v in data.tensors.items() if k.startswith("model."))


def test_a_checkpoints_entry_that_is_not_a_folder_is_refused_before_training(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("not a folder")
    with pytest.raises(FacerepError, match=r"checkpoints is not a folder: move it aside"):
        fit(recipe, out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]


def test_an_out_path_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(SystemExit) as info:
        main(["run", str(recipe), "--out", str(tmp_path / "taken"), "--quiet"])
    assert info.value.code == 2
    assert f"cannot create the run directory {tmp_path / 'taken'}" in capsys.readouterr().err.replace(
        "\n", ""
    )
    assert (tmp_path / "taken").read_text() == "a file"


def _hold_lock_in_another_process(out: Path) -> subprocess.Popen:
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom facerep.train.run_dir import RunLock\n"
        "with RunLock(Path(sys.argv[1]), print):\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_into_a_locked_folder_exits_2_naming_the_holder_and_a_dead_ones_lock_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2))
    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_lock_in_another_process(out)
    try:
        with pytest.raises(SystemExit) as info:
            main(["run", str(recipe), "--out", str(out), "--quiet"])
        assert info.value.code == 2
        err = capsys.readouterr().err.replace("\n", "")
        assert "in use by another facerep run" in err and f"pid {holder.pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, held by no one
        holder.wait()
    assert str(holder.pid) in (out / LOCK_NAME).read_text()
    messages: list[str] = []
    with RunLock(out, messages.append):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(messages) == 1 and "no longer running" in messages[0] and f"pid {holder.pid}" in messages[0]
    assert not (out / LOCK_NAME).exists()  # released and removed


def test_the_lock_is_released_when_a_run_fails(tmp_path: Path) -> None:
    messages: list[str] = []
    with pytest.raises(ValueError), RunLock(tmp_path, messages.append):
        with pytest.raises(FacerepError, match="in use by another facerep run"), RunLock(tmp_path, print):
            pass
        raise ValueError
    start = time.perf_counter()
    with RunLock(tmp_path, messages.append):
        pass
    assert messages == [] and time.perf_counter() - start < 5


def test_trim_metrics_drops_later_steps_and_damaged_lines_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n\x00\x00garbage\n{"step": 2}\n{"step": 3}\n{"step": 4, "loss/to')
    messages: list[str] = []
    trim_metrics(path, 2, messages.append)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert messages == [
        f"{path}:2: not a JSON record, damaged; dropped",
        f"{path}:5: not a JSON record, cut short (the run was stopped while writing it); dropped",
    ]
    trim_metrics(path, -1, messages.append)  # resuming without a checkpoint: start over
    assert path.read_text() == ""


def test_temporary_files_a_killed_write_left_in_the_run_folder_are_removed(tmp_path: Path) -> None:
    from facerep.train.run_dir import remove_temporary_files

    stale = [tmp_path / ".recipe.yaml.k2j3.tmp", tmp_path / ".metrics.jsonl.x1.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".my-editor.tmp", tmp_path / "recipe.yaml"]
    for path in stale + kept:
        path.write_text("x")
    assert sorted(remove_temporary_files(tmp_path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


@pytest.mark.parametrize("name", ["../../outside", "ABSOLUTE", "a/b", "..", "."])
def test_a_recipe_name_cannot_choose_a_folder_outside_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    name = str(tmp_path / "absolute-run") if name == "ABSOLUTE" else name  # stays inside tmp_path
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=2).replace("name: tiny-full", f"name: '{name}'"))
    with pytest.raises(SystemExit) as info:
        main(["run", str(recipe), "--max-steps", "1", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert f"{recipe}:2" in err and "cannot name a run folder" in err and "--out" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "tiny.yaml"]
    assert list(work.iterdir()) == []


def test_a_plain_recipe_name_chooses_runs_name() -> None:
    from facerep.cli.run_cmd import default_run_dir

    assert default_run_dir(load_recipe("demo")) == Path("runs") / "demo"
    with pytest.raises(RecipeError):
        default_run_dir(load_recipe("demo", overrides=["name=../demo"]))


def _metrics_step(out: Path) -> int:
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = [json.loads(line).get("step", 0) for line in lines if line.endswith("}")]
    return max(steps, default=0)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_step", [3, 6, 7, 9, 12])
def test_a_run_killed_anywhere_then_resumed_ends_with_the_checkpoints_of_an_uninterrupted_run(
    tmp_path: Path, kill_after_step: int
) -> None:
    """`make run` resumes: SIGKILL a `facerep run` of two 6-step stages (checkpoints every 5 steps, the
    second stage's only one at its end, as in the demo) once it has logged `kill_after_step`, then
    `facerep run --resume`: same checkpoint files and weights as an uninterrupted run."""
    import signal

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("full", steps=6))
    sets = ["--set", "train.checkpoint_every=5", "--set", KEEP[0]]
    reference = fit(recipe, tmp_path / "ref", ["train.checkpoint_every=5"])
    assert names(reference) == ["step-00000010.safetensors", "step-00000012.safetensors"]

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "facerep", "run", str(recipe), "--out", str(out), "--quiet", *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _metrics_step(out) < kill_after_step and proc.poll() is None:
        assert time.monotonic() < deadline, "the run did not reach the step in 5 minutes"
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert names(out) == names(reference)
    for name in names(reference):
        want, got = tensors(reference / "checkpoints" / name), tensors(out / "checkpoints" / name)
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want), name
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))


def test_a_factory_error_in_a_later_stage_stops_run_before_anything_is_written(tmp_path: Path) -> None:
    """`run` builds every stage's components before training: a bad value in stage 2 is a recipe error at
    its line, and the run folder stays empty (it used to train stage 1 first)."""
    from facerep.common.errors import RecipeError
    from facerep.core.recipe import load_recipe
    from facerep.testing.runs import tiny_recipe_text
    from facerep.train.options import TrainOptions
    from facerep.train.trainer import Trainer

    (tmp_path / "tiny.yaml").write_text(tiny_recipe_text("full", 1))
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "extends: tiny.yaml\nname: bad\n"
        "stages:\n  unet_albedo:\n    model:\n      encoder:\n        depth: 7\n"
    )
    out = tmp_path / "run"
    with pytest.raises(RecipeError, match="depth"):
        Trainer(load_recipe(recipe), TrainOptions(out=out, quiet=True)).fit()
    assert not out.exists() or not any(out.iterdir())
