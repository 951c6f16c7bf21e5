"""How a run starts in its folder: fresh (refusing an earlier run's outputs) or resumed (from the newest
readable checkpoint, the recipe compared with the one the folder was trained with), and the run files
written before the first step (recipe.yaml, recipe.origins.yaml, plugins.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from facerep.common.errors import CheckpointError, FacerepError, RecipeError
from facerep.train import checkpoint as ckpt
from facerep.train.context import RunContext, TrainState
from facerep.train.run_dir import (
    check_recipe_file_is_not_overwritten,
    previous_outputs,
    recipe_changes,
    remove_temporary_files,
    set_aside,
    trim_metrics,
    write_atomically,
)

Found = tuple[Path, ckpt.CheckpointData]


def prepare_run_folder(run: RunContext) -> Found | None:
    """Check the run folder before anything is written (see `facerep.train.trainer.Trainer.fit`); the
    checkpoint to resume from. Every refusal comes before the first change to the folder."""
    if run.is_main:
        check_recipe_file_is_not_overwritten(run.recipe, run.out)
    for folder in (run.checkpoint_dir, run.out / "samples"):
        if folder.exists() and not folder.is_dir():
            raise FacerepError(f"{folder} is not a folder: move it aside (nothing was changed)")
    found, skipped = _checkpoint_to_resume(run)
    changes, step = _recipe_changes(run, found)
    if not run.is_main:
        return found
    older = found[0].name if found is not None else ""
    for path, reason in skipped:  # (skipped files are newer than the one found)
        kept = set_aside(path, path.name + ".unreadable")
        run.terminal.warn(
            f"skipped checkpoint {path} ({reason}); resuming from the older {older} "
            f"(the skipped file is kept as {kept.name})"
        )
    if changes and (run.out / "recipe.yaml").is_file():
        kept = set_aside(run.out / "recipe.yaml", f"recipe.before-step-{step:08d}.yaml")
        run.terminal.warn(
            f"going on with a changed recipe (--allow-recipe-change); the previous one is kept as "
            f"{kept}: " + "; ".join(changes)
        )
    ckpt.remove_temporary_files(run.checkpoint_dir)
    remove_temporary_files(run.out)
    if run.options.resume:
        if found is None:
            run.terminal.note(f"no checkpoint in {run.checkpoint_dir}; starting from scratch")
        through = int(found[1].meta["step"]) if found is not None else -1
        trim_metrics(run.out / "metrics.jsonl", through, run.terminal.warn)  # those steps are trained again
    write_run_files(run, recipe_files=bool(changes) or not run.options.resume)
    return found


def _checkpoint_to_resume(run: RunContext) -> tuple[Found | None, list[tuple[Path, str]]]:
    """With ``--resume``: the newest readable checkpoint and the newer unreadable ones (file, reason),
    refusing when there are checkpoints but none is readable. Without: refuses a folder holding an
    earlier run's outputs."""
    if not run.options.resume:
        if run.is_main:  # (the other processes of a data-parallel run start after it has written)
            left = previous_outputs(run.out)
            if left:
                raise FacerepError(
                    f"{run.out} already holds an earlier run's {', '.join(left)}: pass --resume to continue "
                    "it, or choose another --out (nothing was changed)"
                )
        return None, []
    latest = ckpt.find_latest(run.checkpoint_dir)
    if latest.path is None and latest.skipped:
        raise CheckpointError(
            f"no readable checkpoint in {run.checkpoint_dir} to resume from: "
            + "; ".join(f"{p.name}: {reason}" for p, reason in latest.skipped)
            + " (move them aside to start the run over; nothing was changed)"
        )
    found = (latest.path, latest.data) if latest.path is not None and latest.data is not None else None
    return found, latest.skipped


def _recipe_changes(run: RunContext, found: Found | None) -> tuple[list[str], int]:
    """How this recipe differs from the one the run folder was trained with (its newest checkpoint's,
    else its recipe.yaml's), and the step it was trained to; refuses a difference unless
    ``allow_recipe_change``."""
    folder_recipe = run.out / "recipe.yaml"
    if found is not None:
        before, step = found[1].meta["recipe"], found[1].meta["step"]
        what = f"this recipe differs from the one {run.out} was trained with (its {found[0].name})"
    elif folder_recipe.is_file():
        from facerep.core.recipe import load_yaml

        what, step = f"{folder_recipe} holds another recipe than this one", 0
        try:
            before = load_yaml(folder_recipe)[0]
        except RecipeError as exc:
            before = {"(recipe.yaml)": f"unreadable: {exc}"}
    else:
        return [], 0
    changes = recipe_changes(before, run.recipe.data)
    if changes and not run.options.allow_recipe_change:
        raise FacerepError(
            f"{what}:\n  "
            + "\n  ".join(changes)
            + "\npass --allow-recipe-change to go on with this recipe (the old recipe.yaml is kept "
            "beside it), or choose another --out; nothing was changed"
        )
    return changes, int(step)


def write_run_files(run: RunContext, recipe_files: bool) -> None:
    """plugins.json, and recipe.yaml / recipe.origins.yaml when asked or missing (atomically)."""
    if not run.is_main:
        return
    run.out.mkdir(parents=True, exist_ok=True)
    if recipe_files or not (run.out / "recipe.yaml").is_file():
        write_atomically(run.out / "recipe.yaml", run.recipe.to_yaml())
        write_atomically(run.out / "recipe.origins.yaml", run.recipe.to_yaml(with_origins=True))
    versions = {c.qualified_name + f"@{c.kind}": c.version for c in run.registry.components()}
    write_atomically(
        run.out / "plugins.json",
        json.dumps({"torch": torch.__version__, "components": versions}, indent=1),
    )


def resume_state(run: RunContext, path: Path, meta: dict[str, Any], names: list[str]) -> bool:
    """Set the counters from a checkpoint; True when it ends a stage (the next one starts afresh)."""
    skipped = int(meta.get("skipped_nonfinite", 0) or 0)
    done = meta.get("stage_complete")
    if done is not None:
        if done not in names:
            raise CheckpointError(
                f"{path} ends stage {done!r}, which this recipe does not have (stages: {', '.join(names)})"
            )
        index = names.index(done) + 1
        run.state = TrainState(stage=index, step=meta["step"], skipped_nonfinite=skipped)
        if index < len(names):
            run.terminal.note(
                f"resuming from {path}: stage {done} finished at step {meta['step']}; "
                f"starting stage {names[index]}"
            )
        else:
            run.terminal.note(
                f"{path} ends the last stage ({done}, step {meta['step']}): the run is complete"
            )
        return True
    name = meta["stage_name"]
    if name not in names:
        raise CheckpointError(
            f"{path} is a checkpoint of stage {name!r}, which this recipe does not have "
            f"(stages: {', '.join(names)})"
        )
    run.state = TrainState(
        stage=names.index(name),
        epoch=meta["epoch"],
        step=meta["step"],
        stage_step=meta["stage_step"],
        epoch_step=meta["epoch_step"],
        skipped_nonfinite=skipped,
    )
    run.terminal.note(f"resuming from {path} (stage {name}, step {meta['step']})")
    return False
