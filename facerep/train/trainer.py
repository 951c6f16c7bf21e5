"""The trainer: composes whatever a recipe names and trains it stage by stage.

One model step (paper sections 4-5):

1. encode the hybrid batch, decode shape and albedo, render (``FaceRepModel.forward``);
2. ``n_critic`` critic steps (WGAN-div): fake shapes are the decoded shapes (detached), real shapes are
   drawn from the face model's linear 3DMM prior;
3. the weighted sum of every recipe loss (each selects the rows it applies to) is minimised with the
   model optimiser; the adversarial loss's generator side sees the updated critic.

Stages run in recipe order; components at the same address with the same ``type`` carry their weights
into the next stage (the U-Net albedo decoder of stage 2 starts fresh, everything else carries over).
Optimisers restart at each stage. Checkpoints hold everything needed to continue bit for bit (model,
critic, loss parameters such as the recognition classifier and centres, optimisers, RNG states, sampler
position, stage and step).

Data parallelism (``torchrun --nproc-per-node N -m facerep run``): the recipe's batch is the global
batch; each process takes an equal shard of every batch (`facerep.data.sampler`), batch norm uses the
whole batch's statistics (`facerep.nn.global_batchnorm`), losses normalised by data-dependent counts
average those counts over processes, the model's gradients are averaged in one all-reduce, and the
critic trains on the gathered whole batch in every process. N processes therefore compute what one
process computes on the same recipe, up to floating-point reduction order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from facerep.common.errors import CheckpointError, FacerepError, RecipeError, literal
from facerep.common.paths import cache_dir
from facerep.core.interfaces import LossContext
from facerep.core.model import FaceRepModel, build_model
from facerep.core.recipe import Recipe, options_with_defaults
from facerep.core.registry import Registry, get_registry
from facerep.core.types import Batch
from facerep.train import checkpoint as ckpt
from facerep.train.recipe_check import check_recipe
from facerep.train.run_dir import (
    RunLock,
    check_recipe_file_is_not_overwritten,
    previous_outputs,
    recipe_changes,
    remove_temporary_files,
    set_aside,
    trim_metrics,
    write_atomically,
)

#: Labelled training samples the validator's landmark read-out reference is fitted on (at most).
READOUT_SAMPLES = 1000


class NonFiniteLossError(FacerepError):
    """A loss became NaN or Inf; the message names the loss, the step and the batch's samples."""


@dataclass
class TrainOptions:
    """Run-level options from the command line (the recipe holds everything else)."""

    out: Path
    device: str = "cpu"
    resume: bool = False
    max_steps: int | None = None  # cap per stage (smoke tests, CI)
    quiet: bool = False
    precision: str | None = None  # "32" | "bf16-mixed"; None = the recipe's train.precision
    compile: bool = False
    allow_recipe_change: bool = False  # resume with a recipe unlike the checkpoint's (see fit)

    def __post_init__(self) -> None:
        steps = self.max_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise FacerepError(f"max_steps must be a whole number of steps >= 1, got {steps!r}")


@dataclass
class TrainState:
    """Where training is: stage index, epoch within the stage, global step, batches done this epoch."""

    stage: int = 0
    epoch: int = 0
    step: int = 0
    stage_step: int = 0
    epoch_step: int = 0
    skipped_nonfinite: int = 0


TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 1,
    "n_critic": 1,
    "log_every": 50,
    "sample_every": 1000,
    "checkpoint_every": 1000,
    "keep_checkpoints": 3,
    "on_nonfinite": "stop",
    "on_bad_sample": "error",
    "precision": "32",
    "grad_clip": 0.0,
    "steps_per_epoch": 0,  # 0: one pass of the sampler
    "validate": None,  # {every, identities, source}: held-out validation (facerep.train.validation)
    "lr_warmup": 0,  # steps of linear warm-up of the model's learning rate at the start of the stage
    "lr_decay": "none",  # "none" or "cosine" (to lr_final x the recipe's rate at the stage's last step)
    "lr_final": 0.0,
}


def lr_factor(step: int, total: int, config: dict[str, Any]) -> float:
    """The model learning rate's multiplier at `step` (0-based, within a stage of `total` steps).

    Linear warm-up from 1/warmup to 1 over ``lr_warmup`` steps, then constant (``lr_decay: none``) or a
    half cosine down to ``lr_final`` at the last step (``cosine``). A pure function of the step, so a
    resumed run follows the same schedule without storing one.
    """
    warmup = int(config["lr_warmup"])
    if step < warmup:
        return (step + 1) / warmup
    if config["lr_decay"] == "none" or total <= warmup + 1:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup - 1))
    final = float(config["lr_final"])
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


#: Whole-number train options and their least value.
_TRAIN_COUNTS = {
    "epochs": 1,
    "n_critic": 1,
    "log_every": 1,
    "sample_every": 1,
    "checkpoint_every": 1,
    "keep_checkpoints": 0,  # 0 keeps every checkpoint
    "steps_per_epoch": 0,  # 0: one pass of the sampler
}


def train_config(stage: Recipe) -> dict[str, Any]:
    """The stage's ``train`` section with defaults; unknown keys and bad values are recipe errors."""
    config = options_with_defaults(stage, "train", stage.get("train", {}), TRAIN_DEFAULTS)
    for key, least in _TRAIN_COUNTS.items():
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise RecipeError(
                f"{key} must be a whole number >= {least}, got {value!r}", where=stage.locate(f"train.{key}")
            )
    if config["on_nonfinite"] not in ("stop", "skip"):
        raise RecipeError("on_nonfinite must be 'stop' or 'skip'", where=stage.locate("train.on_nonfinite"))
    if config["lr_decay"] not in ("none", "cosine"):
        raise RecipeError("lr_decay must be 'none' or 'cosine'", where=stage.locate("train.lr_decay"))
    warmup = config["lr_warmup"]
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise RecipeError(
            f"lr_warmup must be a whole number of steps >= 0, got {warmup!r}",
            where=stage.locate("train.lr_warmup"),
        )
    if not isinstance(config["lr_final"], int | float) or not 0.0 <= float(config["lr_final"]) <= 1.0:
        raise RecipeError("lr_final must be a number in [0, 1]", where=stage.locate("train.lr_final"))
    return config


# -- building ------------------------------------------------------------------------------------------


@dataclass
class Components:
    """Everything one stage trains with."""

    face_model: Any
    model: FaceRepModel
    critic: nn.Module | None
    losses: dict[str, nn.Module]
    data: Any  # facerep.train.data_setup.TrainingData
    model_optimizer: torch.optim.Optimizer
    critic_optimizer: torch.optim.Optimizer | None
    context: dict[str, Any]


def build_stage(
    stage: Recipe,
    *,
    device: torch.device,
    registry: Registry | None = None,
    previous: Components | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> Components:
    """Build every component of one stage through the registry (weights carried from `previous`)."""
    from facerep.train.data_setup import build_training_data

    registry = registry or get_registry()
    locate = stage.locate
    context: dict[str, Any] = {"cache_dir": cache_dir(), "device": device}
    face_model = registry.build(
        "facemodel", stage.get("face_model"), context, address="face_model", locate=locate
    )
    context["face_model"] = face_model
    data = build_training_data(stage, face_model, registry=registry, rank=rank, world_size=world_size)
    context["num_identities"] = data.num_identities
    context["image_size"] = data.image_size

    model = build_model(stage, context, registry)
    critic = None
    if stage.get("critic") is not None:
        critic = registry.build("critic", stage.get("critic"), context, address="critic", locate=locate)
    losses = {
        role: registry.build("loss", node, context, address=f"losses.{role}", locate=locate)
        for role, node in (stage.get("losses") or {}).items()
    }
    if previous is not None:
        _carry_weights(previous, model, critic, losses, stage)
    if world_size > 1:  # normalise with the whole batch's statistics, as one process would
        from facerep.nn.global_batchnorm import use_global_batchnorm

        use_global_batchnorm(model)
    model.to(device)
    if critic is not None:
        critic.to(device)
    for loss in losses.values():
        loss.to(device)
    model_params = [p for p in model.parameters() if p.requires_grad]
    model_params += [p for loss in losses.values() for p in loss.parameters() if p.requires_grad]
    model_optimizer = registry.build(
        "optimizer", stage.get("optim.model"), {"params": model_params}, address="optim.model", locate=locate
    )
    critic_optimizer = None
    if critic is not None:
        if stage.get("optim.critic") is None:
            raise RecipeError(
                "a critic needs an optimizer at 'optim.critic'", where=locate("critic"), address="critic"
            )
        critic_optimizer = registry.build(
            "optimizer",
            stage.get("optim.critic"),
            {"params": list(critic.parameters())},
            address="optim.critic",
            locate=locate,
        )
    if any(getattr(loss, "has_critic", False) for loss in losses.values()) and critic is None:
        raise RecipeError("an adversarial loss needs a 'critic'", where=locate("losses"), address="losses")
    return Components(face_model, model, critic, losses, data, model_optimizer, critic_optimizer, context)


def _carry_weights(
    previous: Components,
    model: FaceRepModel,
    critic: nn.Module | None,
    losses: dict[str, nn.Module],
    stage: Recipe,
) -> None:
    """Copy weights of components whose class is unchanged from the previous stage."""
    for name in ("encoder", "shape_decoder", "albedo_decoder", "renderer"):
        old, new = getattr(previous.model, name), getattr(model, name)
        if type(old) is type(new):
            new.load_state_dict(old.state_dict())
    if critic is not None and previous.critic is not None and type(critic) is type(previous.critic):
        critic.load_state_dict(previous.critic.state_dict())
    for role, loss in losses.items():
        old = previous.losses.get(role)
        if old is not None and type(old) is type(loss):
            loss.load_state_dict(old.state_dict())


# -- the trainer ---------------------------------------------------------------------------------------


class Trainer:
    """Trains a resolved recipe into a run directory."""

    def __init__(self, recipe: Recipe, options: TrainOptions, registry: Registry | None = None) -> None:
        self.recipe = recipe
        self.options = options
        self.registry = registry or get_registry()
        self.out = options.out
        self.device = torch.device(options.device)
        self.rank, self.world_size = _distributed_rank()
        self.is_main = self.rank == 0
        self.state = TrainState()
        self.console = _console(options.quiet or not self.is_main)
        self._warnings = _console(not self.is_main)  # shown even with --quiet
        self._tb = None
        self._restored_critic_generator: Tensor | None = None
        self._validator: Any = None
        self.last_validation: dict[str, float] | None = None
        # every check `recipe validate` makes, component factories included, before anything is written
        # (a factory error in stage 2 must not wait for stage 1 to train)
        check_recipe(recipe, self.registry, build=True)

    # -- run directory ---------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def _warn(self, message: str) -> None:
        from rich.markup import escape

        self._warnings.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def _note(self, message: str) -> None:
        from rich.markup import escape

        self.console.print(escape(message), highlight=False, soft_wrap=True)

    def _write_run_files(self, recipe_files: bool) -> None:
        """plugins.json, and recipe.yaml / recipe.origins.yaml when asked or missing (atomically)."""
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if recipe_files or not (self.out / "recipe.yaml").is_file():
            write_atomically(self.out / "recipe.yaml", self.recipe.to_yaml())
            write_atomically(self.out / "recipe.origins.yaml", self.recipe.to_yaml(with_origins=True))
        versions = {c.qualified_name + f"@{c.kind}": c.version for c in self.registry.components()}
        write_atomically(
            self.out / "plugins.json",
            json.dumps({"torch": torch.__version__, "components": versions}, indent=1),
        )

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self._tb.add_scalar(key, value, record["step"])

    def _prepare_run_dir(self) -> tuple[Path, ckpt.CheckpointData] | None:
        """Check the run folder before anything is written (see `fit`); the checkpoint to resume from.

        Every refusal comes before the first change to the folder.
        """
        if self.is_main:
            check_recipe_file_is_not_overwritten(self.recipe, self.out)
        for folder in (self.checkpoint_dir, self.out / "samples"):
            if folder.exists() and not folder.is_dir():
                raise FacerepError(f"{folder} is not a folder: move it aside (nothing was changed)")
        found: tuple[Path, ckpt.CheckpointData] | None = None
        skipped: list[tuple[Path, str]] = []
        if self.options.resume:
            latest = ckpt.find_latest(self.checkpoint_dir)
            skipped = latest.skipped
            if latest.path is None and skipped:
                raise CheckpointError(
                    f"no readable checkpoint in {self.checkpoint_dir} to resume from: "
                    + "; ".join(f"{p.name}: {reason}" for p, reason in skipped)
                    + " (move them aside to start the run over; nothing was changed)"
                )
            if latest.path is not None and latest.data is not None:
                found = (latest.path, latest.data)
        elif self.is_main:  # (the other processes of a data-parallel run start after it has written)
            left = previous_outputs(self.out)
            if left:
                raise FacerepError(
                    f"{self.out} already holds an earlier run's {', '.join(left)}: pass --resume to continue "
                    "it, or choose another --out (nothing was changed)"
                )
        changes, step = self._recipe_changes(found)
        if not self.is_main:
            return found
        older = found[0].name if found is not None else ""
        for path, reason in skipped:  # (skipped files are newer than the one found)
            kept = set_aside(path, path.name + ".unreadable")
            self._warn(
                f"skipped checkpoint {path} ({reason}); resuming from the older {older} "
                f"(the skipped file is kept as {kept.name})"
            )
        if changes and (self.out / "recipe.yaml").is_file():
            kept = set_aside(self.out / "recipe.yaml", f"recipe.before-step-{step:08d}.yaml")
            self._warn(
                f"going on with a changed recipe (--allow-recipe-change); the previous one is kept as "
                f"{kept}: " + "; ".join(changes)
            )
        ckpt.remove_temporary_files(self.checkpoint_dir)
        remove_temporary_files(self.out)
        if self.options.resume:
            if found is None:
                self._note(f"no checkpoint in {self.checkpoint_dir}; starting from scratch")
            through = int(found[1].meta["step"]) if found is not None else -1
            trim_metrics(self.out / "metrics.jsonl", through, self._warn)  # those steps are trained again
        self._write_run_files(recipe_files=bool(changes) or not self.options.resume)
        return found

    def _recipe_changes(self, found: tuple[Path, ckpt.CheckpointData] | None) -> tuple[list[str], int]:
        """How this recipe differs from the one the run folder was trained with (its newest checkpoint's,
        else its recipe.yaml's), and the step it was trained to; refuses a difference unless
        ``allow_recipe_change``."""
        folder_recipe = self.out / "recipe.yaml"
        if found is not None:
            before, step = found[1].meta["recipe"], found[1].meta["step"]
            what = f"this recipe differs from the one {self.out} was trained with (its {found[0].name})"
        elif folder_recipe.is_file():
            from facerep.core.recipe import load_yaml

            what, step = f"{folder_recipe} holds another recipe than this one", 0
            try:
                before = load_yaml(folder_recipe)[0]
            except RecipeError as exc:
                before = {"(recipe.yaml)": f"unreadable: {exc}"}
        else:
            return [], 0
        changes = recipe_changes(before, self.recipe.data)
        if changes and not self.options.allow_recipe_change:
            raise FacerepError(
                f"{what}:\n  "
                + "\n  ".join(changes)
                + "\npass --allow-recipe-change to go on with this recipe (the old recipe.yaml is kept "
                "beside it), or choose another --out; nothing was changed"
            )
        return changes, int(step)

    def _resume_state(self, path: Path, meta: dict[str, Any], names: list[str]) -> bool:
        """Set the counters from a checkpoint; True when it ends a stage (the next one starts afresh)."""
        skipped = int(meta.get("skipped_nonfinite", 0) or 0)
        done = meta.get("stage_complete")
        if done is not None:
            if done not in names:
                raise CheckpointError(
                    f"{path} ends stage {done!r}, which this recipe does not have "
                    f"(stages: {', '.join(names)})"
                )
            index = names.index(done) + 1
            self.state = TrainState(stage=index, step=meta["step"], skipped_nonfinite=skipped)
            if index < len(names):
                self._note(
                    f"resuming from {path}: stage {done} finished at step {meta['step']}; "
                    f"starting stage {names[index]}"
                )
            else:
                self._note(f"{path} ends the last stage ({done}, step {meta['step']}): the run is complete")
            return True
        name = meta["stage_name"]
        if name not in names:
            raise CheckpointError(
                f"{path} is a checkpoint of stage {name!r}, which this recipe does not have "
                f"(stages: {', '.join(names)})"
            )
        self.state = TrainState(
            stage=names.index(name),
            epoch=meta["epoch"],
            step=meta["step"],
            stage_step=meta["stage_step"],
            epoch_step=meta["epoch_step"],
            skipped_nonfinite=skipped,
        )
        self._note(f"resuming from {path} (stage {name}, step {meta['step']})")
        return False

    # -- main loop --------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train every stage; returns the run directory.

        The run directory is locked while training (`facerep.train.run_dir.RunLock`). A fresh run refuses
        a folder holding an earlier run's outputs. ``resume`` continues from the newest readable
        checkpoint (newer unreadable ones are set aside as ``*.unreadable`` with a warning): mid-stage
        checkpoints restore everything, a stage's last checkpoint starts the next stage as an
        uninterrupted run would. A recipe unlike the one the folder was trained with is refused unless
        ``allow_recipe_change`` (then the old recipe.yaml is kept as ``recipe.before-step-N.yaml``).
        """
        torch.manual_seed(int(self.recipe.get("seed", 0)))
        self._started = time.perf_counter()
        if not self.is_main:
            return self._fit()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission
            raise FacerepError(f"cannot create the run directory {self.out}: {exc.strerror or exc}") from None
        with RunLock(self.out, self._warn):
            return self._fit()

    def _fit(self) -> Path:
        resume = self._prepare_run_dir()
        stages = list(self.recipe.stages())
        names = [name for name, _ in stages]
        between = resume is not None and self._resume_state(resume[0], resume[1].meta, names)
        if self.is_main:
            self._tb = _tensorboard(self.out, purge_step=self.state.step + 1 if resume is not None else None)
        previous: Components | None = None
        for index, (name, stage) in enumerate(stages):
            if index < self.state.stage:
                continue
            if resume is not None and between:
                # the RNG as the finished stage left it, so this stage's new components start as they
                # would have in an uninterrupted run
                self._restore_rng(*resume)
            comps = build_stage(
                stage,
                device=self.device,
                registry=self.registry,
                previous=previous,
                rank=self.rank,
                world_size=self.world_size,
            )
            if resume is not None:
                self._restore(comps, resume[1], resume[0], between)
                resume = None
            else:
                self.state.epoch, self.state.stage_step, self.state.epoch_step = 0, 0, 0
            self._train_stage(index, name, stage, comps)
            previous = comps
            self.state.stage = index + 1
        if self.is_main:
            keep = int(train_config(stages[-1][1])["keep_checkpoints"])
            ckpt.prune_checkpoints(self.checkpoint_dir, keep)  # a run stopped before its last prune
            self._summary()
        return self.out

    def _train_stage(self, index: int, name: str, stage: Recipe, comps: Components) -> None:
        config = train_config(stage)
        model = comps.model
        if self.options.compile:
            for part in (model.encoder, model.shape_decoder, model.albedo_decoder):
                part.compile()  # in place: state-dict keys (and checkpoints) are unchanged
        sampler = comps.data.sampler
        per_epoch = int(config["steps_per_epoch"])  # 0: a full pass of the sampler
        total = (per_epoch or comps.data.epoch_length) * int(config["epochs"])
        if self.options.max_steps is not None:
            total = min(total, self.options.max_steps)
        if total < 1:
            raise FacerepError(
                f"stage {name!r}: the data yields no batch (too few samples for the batch sizes in "
                f"{stage.locate('data.batch')})"
            )
        loss_context = LossContext(
            face_model=comps.face_model,
            shape_decoder=model.shape_decoder,
            critic=comps.critic,
            step=self.state.step,
        )
        precision = self.options.precision or str(config["precision"])
        generator = torch.Generator().manual_seed(int(self.recipe.get("seed", 0)) * 7919 + index)
        if self._restored_critic_generator is not None:
            generator.set_state(self._restored_critic_generator)
            self._restored_critic_generator = None
        validate_every = self._prepare_validation(comps)
        # the recipe's rate (an optimiser's defaults survive load_state_dict; its groups' "lr" do not)
        base_lrs = [comps.model_optimizer.defaults["lr"] for _ in comps.model_optimizer.param_groups]
        with _Progress(
            self.console, f"stage {index + 1}/{len(self.recipe.stage_names())} {name}", total
        ) as bar:
            bar.advance(self.state.stage_step)
            if validate_every and self.state.step == 0:
                self._validate(comps, name, bar)
            t_last, seen = time.perf_counter(), 0
            batch = None
            while self.state.stage_step < total:
                sampler.set_epoch(self.state.epoch)
                produced = 0
                for batch in comps.data.batches():
                    produced += 1
                    batch = batch.to(self.device)
                    factor = lr_factor(self.state.stage_step, total, config)
                    for group, base_lr in zip(comps.model_optimizer.param_groups, base_lrs, strict=True):
                        group["lr"] = base_lr * factor
                    record = self._step(model, comps, batch, loss_context, config, generator, precision)
                    self.state.step += 1
                    self.state.stage_step += 1
                    self.state.epoch_step += 1
                    seen += batch.size
                    bar.advance(1)
                    last = self.state.stage_step == total
                    if record is not None and (self.state.step % int(config["log_every"]) == 0 or last):
                        now = time.perf_counter()
                        record.update(
                            stage=name,
                            epoch=self.state.epoch,
                            step=self.state.step,
                            lr=comps.model_optimizer.param_groups[0]["lr"],
                            images_per_s=seen * self.world_size / max(now - t_last, 1e-9),
                            skipped_nonfinite=self.state.skipped_nonfinite,
                        )
                        t_last, seen = now, 0
                        self._log(record)
                        bar.update_losses(record)
                    if validate_every and (self.state.step % validate_every == 0 or last):
                        self._validate(comps, name, bar)
                    if self.is_main and self.state.step % int(config["sample_every"]) == 0:
                        self._sample_sheet(comps, batch, name)
                    epoch_full = bool(per_epoch) and self.state.epoch_step >= per_epoch
                    if last or epoch_full:
                        break
                    if self.state.step % int(config["checkpoint_every"]) == 0:
                        self._checkpoint(index, name, comps, config, generator)
                else:
                    epoch_full = True
                if produced == 0 and self.state.epoch_step == 0:
                    raise FacerepError(
                        f"stage {name!r}: the data yields no batch (too few samples for the batch sizes in "
                        f"{stage.locate('data.batch')})"
                    )
                if epoch_full:
                    self.state.epoch += 1
                    self.state.epoch_step = 0
                if self.state.stage_step < total and self.state.step % int(config["checkpoint_every"]) == 0:
                    self._checkpoint(index, name, comps, config, generator)
        skipped = {k: v for k, v in comps.data.dataset.skipped().items() if v}
        if skipped:  # recipe `on_bad_sample: skip`: say how many and which
            self._log({"stage": name, "step": self.state.step, "skipped_samples": skipped})
            count = sum(len(v) for v in skipped.values())
            note = f"stage {literal(name)}: skipped {count} bad sample(s); see metrics.jsonl"
            self.console.print(f"[yellow]{note}[/]")
        comps.neutral_expression = self._neutral_expression(comps)  # type: ignore[attr-defined]
        self._checkpoint(index, name, comps, config, generator, final=True)
        if self.is_main and batch is not None:  # None: resumed at or past a lowered --max-steps
            self._sample_sheet(comps, batch, name)

    def _step(
        self,
        model: nn.Module,
        comps: Components,
        batch: Batch,
        context: LossContext,
        config: dict[str, Any],
        generator: torch.Generator,
        precision: str,
    ) -> dict[str, Any]:
        model.train()
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if precision == "bf16-mixed"
            else contextlib.nullcontext()
        )
        with autocast:
            recon = model(batch.images)
        if precision == "bf16-mixed":  # losses (and the decoders they call) run in float32
            recon = recon.float()
        record: dict[str, Any] = {}
        adversarial = [
            loss
            for loss in comps.losses.values()
            if getattr(loss, "has_critic", False) and float(getattr(loss, "weight", 1.0)) != 0.0
        ]  # a critic whose only adversarial term is weighted 0 would train for nothing
        if comps.critic is not None and adversarial:
            # The critic trains on the whole batch in every process (fakes gathered from every shard,
            # in single-process order; real shapes drawn identically everywhere), so its gradients are
            # equal across processes without an all-reduce, and equal to a single process's.
            fake = _whole_batch(recon.vertices.detach().float(), comps.data.sampler, self.world_size)
            for _ in range(int(config["n_critic"])):
                real = comps.face_model.sample(fake.shape[0], generator=generator).to(fake)
                try:
                    critic_loss = adversarial[0].critic_loss(real, fake, comps.critic)
                except FloatingPointError:  # the loss's own NaN/Inf check (facerep.plugins.losses)
                    return self._nonfinite("critic", batch, comps, config)
                if not torch.isfinite(critic_loss):
                    return self._nonfinite("critic", batch, comps, config)
                comps.critic_optimizer.zero_grad(set_to_none=True)
                critic_loss.backward()
                comps.critic_optimizer.step()
            record["loss/critic"] = float(critic_loss.detach())
        context._items["step"] = self.state.step
        total = torch.zeros((), device=self.device)
        for role, loss in comps.losses.items():
            weight = float(getattr(loss, "weight", 1.0))
            if weight == 0.0:
                continue
            try:
                value = loss(batch, recon, context)
            except FloatingPointError:  # the loss's own NaN/Inf check (facerep.plugins.losses)
                return self._nonfinite(role, batch, comps, config)
            if not torch.isfinite(value):
                return self._nonfinite(role, batch, comps, config)
            record[f"loss/{role}"] = float(value.detach())
            total = total + weight * value
        record["loss/total"] = float(total.detach())
        comps.model_optimizer.zero_grad(set_to_none=True)
        total.backward()
        _average_gradients(comps.model_optimizer, self.world_size)
        if config["grad_clip"]:
            params = [p for g in comps.model_optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, float(config["grad_clip"]))
        comps.model_optimizer.step()
        if self.world_size > 1:
            _synchronise_buffers([comps.model, *comps.losses.values()], self.world_size)
        return record

    def _nonfinite(
        self, name: str, batch: Batch, comps: Components, config: dict[str, Any]
    ) -> dict[str, Any]:
        """Skip the step (``on_nonfinite: skip``; returns its log record) or stop with a debug checkpoint."""
        if config["on_nonfinite"] == "skip":
            self.state.skipped_nonfinite += 1
            comps.model_optimizer.zero_grad(set_to_none=True)
            if comps.critic_optimizer is not None:
                comps.critic_optimizer.zero_grad(set_to_none=True)
            return {"nonfinite_loss": name, "skipped_sample_ids": list(batch.sample_ids)}
        debug = self.out / "checkpoints" / f"debug-step-{self.state.step:08d}.safetensors"
        if self.is_main:
            ckpt.save_checkpoint(debug, self._checkpoint_data(self.state.stage, "debug", comps, None))
        ids = ", ".join(batch.sample_ids[:16]) + (" ..." if len(batch.sample_ids) > 16 else "")
        raise NonFiniteLossError(
            f"loss {name!r} is not finite at step {self.state.step} (batch samples: {ids}); "
            f"debug checkpoint: {debug}; set train.on_nonfinite: skip to skip such steps"
        )

    # -- validation -------------------------------------------------------------------------------

    def _prepare_validation(self, comps: Components) -> int:
        """Build the held-out validator once (the split is the same in every stage); its period or 0."""
        heldout = comps.data.heldout
        if heldout is None or not self.is_main:
            return 0
        if self._validator is None:
            from facerep.train.validation import Validator

            trained = comps.data.heldout_source
            reference = [trained[i] for i in range(min(len(trained), READOUT_SAMPLES))]
            self._validator = Validator(
                [heldout[i] for i in range(len(heldout))], comps.face_model, reference
            )
        return int(comps.data.validation["every"])

    def _validate(self, comps: Components, stage: str, bar: Any) -> None:
        """Score the held-out identities; log (metrics.jsonl, TensorBoard), show, and redraw curves.png."""
        metrics = self._validator.evaluate(comps.model, self.device)
        self.last_validation = metrics
        elapsed = time.perf_counter() - self._started
        self._log({"stage": stage, "step": self.state.step, "elapsed_s": round(elapsed, 2), **metrics})
        bar.update_validation(metrics)
        from facerep.train.curves import write_curves

        try:
            write_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        except Exception as exc:  # a plot must never stop training
            self.console.print(f"[yellow]could not draw curves.png: {literal(exc)}[/]")

    # -- checkpoints ------------------------------------------------------------------------------

    def _checkpoint_data(
        self, index: int, name: str, comps: Components, generator: torch.Generator | None
    ) -> ckpt.CheckpointData:
        tensors: dict[str, Tensor] = {}
        modules = _modules(comps)
        for address, module in modules.items():
            tensors.update({f"{address}.{k}": v for k, v in module.state_dict().items()})
        opt_meta = {}
        for role, opt in (("model", comps.model_optimizer), ("critic", comps.critic_optimizer)):
            if opt is not None:
                t, m = ckpt.optimizer_to_tensors(opt, f"optim.{role}")
                tensors.update(t)
                opt_meta[role] = m
        rng_t, rng_m = ckpt.rng_state()
        tensors.update(rng_t)
        if generator is not None:
            tensors["rng.critic"] = generator.get_state()
        neutral = getattr(comps, "neutral_expression", None)
        if neutral is not None:
            tensors["neutral_expression"] = neutral
        meta = {
            "stage": index,
            "stage_name": name,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "stage_step": self.state.stage_step,
            "epoch_step": self.state.epoch_step,
            "skipped_nonfinite": self.state.skipped_nonfinite,
            "sampler": {
                **comps.data.sampler.state_dict(),
                "epoch": self.state.epoch,
                "batches_done": self.state.epoch_step,
            },
            "optimizers": opt_meta,
            "rng": rng_m,
            "classes": {address: _class_name(module) for address, module in modules.items()},
            "recipe": self.recipe.data,
            "recipe_source": str(self.recipe.source),
        }
        return ckpt.CheckpointData(tensors, meta)

    def _checkpoint(
        self,
        index: int,
        name: str,
        comps: Components,
        config: dict[str, Any],
        generator: torch.Generator,
        final: bool = False,
    ) -> None:
        if not self.is_main:
            return
        data = self._checkpoint_data(index, name, comps, generator)
        if final:
            data.meta["stage"] = index + 1  # a resumed run starts at the next stage
            data.meta["stage_complete"] = name
        path = ckpt.checkpoint_path(self.checkpoint_dir, self.state.step)
        if path.exists():
            try:
                existing = ckpt.read_meta(path)
            except CheckpointError:
                existing = None  # an unreadable file is replaced
            if existing is not None and existing["stage_name"] != name:
                raise CheckpointError(
                    f"refusing to overwrite {path} (a checkpoint of stage {existing['stage_name']!r}) with "
                    f"one of stage {name!r} at the same step; nothing was overwritten"
                )
        ckpt.save_checkpoint(path, data)
        ckpt.prune_checkpoints(self.checkpoint_dir, int(config["keep_checkpoints"]))

    def _restore(self, comps: Components, data: ckpt.CheckpointData, path: Path, between: bool) -> None:
        """Load a checkpoint into freshly built components.

        Mid-stage checkpoints restore everything. A stage's last checkpoint (`between`: the run stopped
        between stages) restores the weights of components whose class is unchanged, as the stage switch
        does; the others start fresh. A component or state that does not fit raises `CheckpointError`
        naming the file and the component.
        """
        meta = data.meta
        classes = meta.get("classes") or {}
        for address, module in _modules(comps).items():
            saved = classes.get(address)
            if saved != _class_name(module):
                if between:
                    continue
                raise CheckpointError(
                    f"{path}: its {address} is {'a ' + saved if saved else 'missing'}, the recipe builds a "
                    f"{_class_name(module)} (was it trained with another recipe?)"
                )
            ckpt.load_module_state(module, data.section(address), f"{path} ({address})")
        if between:
            return
        try:
            ckpt.optimizer_from_tensors(
                comps.model_optimizer, data, "optim.model", meta["optimizers"]["model"]
            )
            if comps.critic_optimizer is not None and "critic" in meta["optimizers"]:
                ckpt.optimizer_from_tensors(
                    comps.critic_optimizer, data, "optim.critic", meta["optimizers"]["critic"]
                )
            comps.data.sampler.load_state_dict(meta["sampler"])
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: cannot restore the optimiser or sampler state ({type(exc).__name__}: {exc}); "
                "it does not fit this recipe"
            ) from None
        self._restored_critic_generator = data.tensors.get("rng.critic")
        self._restore_rng(path, data)

    def _restore_rng(self, path: Path, data: ckpt.CheckpointData) -> None:
        try:
            ckpt.restore_rng_state(data, data.meta["rng"])
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: cannot restore the random number generators ({type(exc).__name__}: {exc})"
            ) from None

    # -- outputs ----------------------------------------------------------------------------------

    def _neutral_expression(self, comps: Components) -> Tensor:
        """The expression code decoded as "neutral" (stored in checkpoints, used by benchmarks).

        It is the mean expression code of labelled training images whose 3DMM expression coefficients
        are smallest (the most neutral quarter, at most 256 images seen); without labelled data, zeros.
        """
        from facerep.train.data_setup import neutral_candidates

        size = int(comps.model.encoder.code_sizes["expression"])
        images = neutral_candidates(comps.data, limit=256)
        if images is None:
            return torch.zeros(size)
        comps.model.eval()
        with torch.no_grad():
            codes = [
                comps.model.encode(chunk.to(self.device)).expression.float().cpu()
                for chunk in images.split(32)
            ]
        return torch.cat(codes).mean(0)

    def _sample_sheet(self, comps: Components, batch: Batch, stage: str) -> None:
        from facerep.train.sample_sheet import write_sample_sheet

        comps.model.eval()
        with torch.no_grad():
            path = self.out / "samples" / f"{stage}-step-{self.state.step:08d}.png"
            write_sample_sheet(path, comps.model, batch, rows=min(6, batch.size))
        comps.model.train()

    def _summary(self) -> None:
        last = ckpt.list_checkpoints(self.checkpoint_dir)
        self.console.print(f"[bold green]done[/]: run directory {literal(self.out)}")
        if last:
            self.console.print(f"  last checkpoint: {literal(last[-1])}")
        out = literal(self.out)
        self.console.print(f"  metrics: {out}/metrics.jsonl   samples: {out}/samples")
        if self.last_validation is not None:
            v = self.last_validation
            self.console.print(
                f"  held-out shape error {v['val/shape_mm']:.3f} mm; "
                f"mean face {v['val/mean_face_mm']:.3f} mm "
                f"({v['val/ratio']:.3f}x; {self._validator.size} images of identities never trained on); "
                f"landmark NME {v['val/landmark_nme']:.2f}%   curves: {literal(self.out / 'curves.png')}"
            )
        self.console.print(f"  next: [bold]facerep bench {literal(self.out)}[/]")


# -- helpers ----------------------------------------------------------------------------------------


def _modules(comps: Components) -> dict[str, nn.Module]:
    """Checkpoint address -> module, for every trainable part of a stage."""
    modules: dict[str, nn.Module] = {
        f"model.{name}": getattr(comps.model, name)
        for name in ("encoder", "shape_decoder", "albedo_decoder", "renderer")
    }
    if comps.critic is not None:
        modules["critic"] = comps.critic
    modules.update({f"losses.{role}": loss for role, loss in comps.losses.items()})
    return modules


def _class_name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _distributed_rank() -> tuple[int, int]:
    """Initialise torch.distributed under torchrun (gloo on CPU, NCCL on GPU); (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    dist = torch.distributed
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _whole_batch(local: Tensor, sampler: Any, world_size: int) -> Tensor:
    """(b, ...) rows of this process's shard -> (B, ...) rows of the whole batch, in the order one process
    would hold them (all-gather; the sampler says where each process's rows sit)."""
    if world_size <= 1:
        return local
    parts = [torch.empty_like(local) for _ in range(world_size)]
    torch.distributed.all_gather(parts, local.contiguous())
    whole = local.new_empty((sum(p.shape[0] for p in parts), *local.shape[1:]))
    for rank, part in enumerate(parts):
        whole[torch.as_tensor(sampler.shard_positions(rank), device=local.device)] = part
    return whole


def _average_gradients(optimizer: torch.optim.Optimizer | None, world_size: int) -> None:
    """Data parallelism: average the gradients of `optimizer`'s parameters over all ranks.

    One flat all-reduce per optimizer (a bucket), so every rank takes the same step; explicit rather
    than DistributedDataParallel because losses call decoders outside the model's forward (pairwise
    shape loss) and the critic is stepped between forward and backward.
    """
    if world_size <= 1 or optimizer is None:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = _flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat)
    flat /= world_size
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(synced)


def _synchronise_buffers(modules: list[nn.Module], world_size: int) -> None:
    """Average floating-point buffers (BatchNorm statistics, recognition centres) over all ranks."""
    for module in modules:
        for buffer in module.buffers():
            if buffer.is_floating_point():
                torch.distributed.all_reduce(buffer)
                buffer /= world_size


def _console(quiet: bool) -> Any:
    from rich.console import Console

    return Console(quiet=quiet, stderr=True)


def _tensorboard(out: Path, purge_step: int | None = None) -> Any:
    """A TensorBoard writer (None when tensorboard is not installed); on resume, `purge_step` hides the
    events an interrupted run logged after its checkpoint."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl only
        return None
    return SummaryWriter(str(out / "tensorboard"), purge_step=purge_step)


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task
        self.validation = ""  # the last held-out figures, shown before the losses

    def advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress.advance(self.task, n)

    def update_losses(self, record: dict[str, Any]) -> None:
        if self.progress is None:
            return
        parts = [
            f"{k.split('/', 1)[1]} {v:.3g}"
            for k, v in record.items()
            if k.startswith("loss/") and math.isfinite(v)
        ]
        text = f"{record.get('images_per_s', 0):.1f} img/s  " + "  ".join(parts[:6])
        self.progress.update(self.task, losses=self.validation + text)

    def update_validation(self, metrics: dict[str, float]) -> None:
        """Show the last held-out shape error (and the mean face's) in front of the losses."""
        self.validation = f"val {metrics['val/shape_mm']:.3f}/{metrics['val/mean_face_mm']:.3f} mm  "
        if self.progress is not None:
            self.progress.update(self.task, losses=self.validation)


class _Progress:
    """A rich progress bar (stage, step, ETA, images/s, running losses); silent when quiet."""

    def __init__(self, console: Any, title: str, total: int) -> None:
        self.console, self.title, self.total = console, title, total
        self._progress = None

    def __enter__(self) -> _Bar:
        if self.console.quiet:
            return _Bar(None, None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
        )
        self._progress.__enter__()
        task = self._progress.add_task(self.title, total=self.total, losses="")
        return _Bar(self._progress, task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
