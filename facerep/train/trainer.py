"""The trainer: composes whatever a recipe names and trains it stage by stage into a run folder.

Each stage's components are built through the registry (`facerep.train.stage`) and trained by the loop
(`facerep.train.loop`, one step: `facerep.train.step`). Checkpoints (`facerep.train.snapshot`) hold
everything needed to continue bit for bit. Under ``torchrun --nproc-per-node N -m facerep run`` the
processes share each batch (`facerep.train.distributed`) and the first one writes the run folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from facerep.common.errors import FacerepError
from facerep.core.recipe import Recipe
from facerep.core.registry import Registry, get_registry
from facerep.train import checkpoint as ckpt
from facerep.train.config import train_config
from facerep.train.context import RunContext
from facerep.train.distributed import process_rank
from facerep.train.loop import train_stage
from facerep.train.metrics_log import MetricsLog
from facerep.train.options import TrainOptions
from facerep.train.recipe_check import check_recipe
from facerep.train.resume import prepare_run_folder, resume_state
from facerep.train.run_dir import RunLock
from facerep.train.snapshot import restore, restore_rng
from facerep.train.stage import Components, build_stage
from facerep.train.terminal import Terminal


class Trainer:
    """Trains a resolved recipe into a run directory.

    Every check ``facerep recipe validate`` makes (component factories included) runs here, before
    anything is written: a factory error in stage 2 must not wait for stage 1 to train.
    """

    def __init__(self, recipe: Recipe, options: TrainOptions, registry: Registry | None = None) -> None:
        registry = registry or get_registry()
        rank, world_size = process_rank()
        self.run = RunContext(
            recipe=recipe,
            options=options,
            registry=registry,
            device=torch.device(options.device),
            rank=rank,
            world_size=world_size,
            terminal=Terminal(options.quiet, is_main=rank == 0),
            log=MetricsLog(options.out, enabled=rank == 0),
        )
        check_recipe(recipe, registry, build=True)

    @property
    def out(self) -> Path:
        return self.run.out

    @property
    def last_validation(self) -> dict[str, float] | None:
        """The newest held-out metrics (``val/*``), or None without validation."""
        return self.run.last_validation

    def fit(self) -> Path:
        """Train every stage; returns the run directory.

        The run directory is locked while training (`facerep.train.run_dir.RunLock`). A fresh run refuses
        a folder holding an earlier run's outputs. ``resume`` continues from the newest readable
        checkpoint (newer unreadable ones are set aside as ``*.unreadable`` with a warning): mid-stage
        checkpoints restore everything, a stage's last checkpoint starts the next stage as an
        uninterrupted run would. A recipe unlike the one the folder was trained with is refused unless
        ``allow_recipe_change`` (then the old recipe.yaml is kept as ``recipe.before-step-N.yaml``).
        """
        run = self.run
        torch.manual_seed(int(run.recipe.get("seed", 0)))
        run.started = time.perf_counter()
        if not run.is_main:
            return self._fit()
        try:
            run.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission
            raise FacerepError(f"cannot create the run directory {run.out}: {exc.strerror or exc}") from None
        with RunLock(run.out, run.terminal.warn):
            return self._fit()

    def _fit(self) -> Path:
        run = self.run
        resume = prepare_run_folder(run)
        stages = list(run.recipe.stages())
        names = [name for name, _ in stages]
        between = resume is not None and resume_state(run, resume[0], resume[1].meta, names)
        if run.is_main:
            purge = run.state.step + 1 if resume is not None else None
            run.log.open_tensorboard(run.out / "tensorboard", purge_step=purge)
        previous: Components | None = None
        for index, (name, stage) in enumerate(stages):
            if index < run.state.stage:
                continue
            if resume is not None and between:
                # the RNG as the finished stage left it, so this stage's new components start as they
                # would have in an uninterrupted run
                restore_rng(*resume)
            comps = build_stage(
                stage,
                device=run.device,
                registry=run.registry,
                previous=previous,
                rank=run.rank,
                world_size=run.world_size,
            )
            generator_state = None
            if resume is not None:
                generator_state = restore(comps, resume[1], resume[0], between)
                resume = None
            else:
                run.state.epoch, run.state.stage_step, run.state.epoch_step = 0, 0, 0
            train_stage(run, index, name, stage, comps, generator_state)
            previous = comps
            run.state.stage = index + 1
        if run.is_main:
            keep = int(train_config(stages[-1][1])["keep_checkpoints"])
            ckpt.prune_checkpoints(run.checkpoint_dir, keep)  # a run stopped before its last prune
            last = ckpt.list_checkpoints(run.checkpoint_dir)
            heldout = run.validator.size if run.validator is not None else 0
            run.terminal.summary(run.out, last[-1] if last else None, run.last_validation, heldout)
        return run.out
