"""One stage's training loop: epochs of batches until the stage's step count, with the learning-rate
schedule, metric records, held-out validation, sample sheets and checkpoints at their periods, and the
stage's end (its neutral expression, last checkpoint and sample sheet)."""

from __future__ import annotations

import time
from typing import Any

import torch

from facerep.common.errors import FacerepError
from facerep.core.recipe import Recipe
from facerep.core.types import Batch
from facerep.train.config import train_config
from facerep.train.context import RunContext
from facerep.train.landmark_pretrain import pretrain_config, pretrain_on_landmarks
from facerep.train.neutral import neutral_expression
from facerep.train.sample_sheet import write_step_sample_sheet
from facerep.train.schedule import lr_factor
from facerep.train.snapshot import write_checkpoint
from facerep.train.stage import Components
from facerep.train.step import train_step
from facerep.train.terminal import Bar
from facerep.train.validation import held_out_validator


def train_stage(
    run: RunContext,
    index: int,
    name: str,
    stage: Recipe,
    comps: Components,
    critic_generator_state: torch.Tensor | None = None,
) -> None:
    """Train stage `index` (`name`) from the run's counters to its last step (a resumed stage continues;
    `critic_generator_state` is the critic generator's state from its checkpoint)."""
    StageLoop(run, index, name, stage, comps, critic_generator_state).train()


class StageLoop:
    """The state of one stage's loop (its options, step count, generator, progress bar, images/s)."""

    def __init__(
        self,
        run: RunContext,
        index: int,
        name: str,
        stage: Recipe,
        comps: Components,
        critic_generator_state: torch.Tensor | None,
    ) -> None:
        self.run, self.index, self.name, self.stage, self.comps = run, index, name, stage, comps
        self.config = config = train_config(stage)
        if run.options.compile:
            for part in (comps.model.encoder, comps.model.shape_decoder, comps.model.albedo_decoder):
                part.compile()  # in place: state-dict keys (and checkpoints) are unchanged
        self.per_epoch = int(config["steps_per_epoch"])  # 0: a full pass of the sampler
        total = (self.per_epoch or comps.data.epoch_length) * int(config["epochs"])
        if run.options.max_steps is not None:
            total = min(total, run.options.max_steps)
        if total < 1:
            raise self._no_batch()
        self.total = total
        self.precision = run.options.precision or str(config["precision"])
        self.generator = torch.Generator().manual_seed(int(run.recipe.get("seed", 0)) * 7919 + index)
        if critic_generator_state is not None:
            self.generator.set_state(critic_generator_state)
        self.validate_every = self._prepare_validation()
        # the recipe's rate (an optimiser's defaults survive load_state_dict; its groups' "lr" do not)
        optimizer = comps.model_optimizer
        self.base_lrs = [optimizer.defaults["lr"] for _ in optimizer.param_groups]
        self.bar: Bar = Bar(None, None)
        self.t_last, self.seen = time.perf_counter(), 0

    def _no_batch(self) -> FacerepError:
        return FacerepError(
            f"stage {self.name!r}: the data yields no batch (too few samples for the batch sizes in "
            f"{self.stage.locate('data.batch')})"
        )

    def _prepare_validation(self) -> int:
        """Build the held-out validator once (the split is the same in every stage); its period or 0."""
        run, data = self.run, self.comps.data
        if data.heldout is None or not run.is_main:
            return 0
        if run.validator is None:
            run.validator = held_out_validator(data.heldout, data.heldout_source, self.comps.face_model)
        return int(data.validation["every"])

    def train(self) -> None:
        """Train to the stage's last step (with the progress bar), then end the stage."""
        state = self.run.state
        pretrain = pretrain_config(self.stage)
        if pretrain is not None and state.stage_step == 0:  # a resumed stage holds its result already
            pretrain_on_landmarks(self.run, self.name, self.stage, self.comps, pretrain)
        title = f"stage {self.index + 1}/{len(self.run.recipe.stage_names())} {self.name}"
        with self.run.terminal.progress(title, self.total) as bar:
            self.bar = bar
            bar.advance(state.stage_step)
            if self.validate_every and state.step == 0:
                self._validate()
            self.t_last, self.seen = time.perf_counter(), 0
            batch = None
            while state.stage_step < self.total:
                batch = self._epoch(batch)
        self._finish(batch)

    def _epoch(self, batch: Batch | None) -> Batch | None:
        """The rest of the current epoch (or of the stage); returns the last batch seen."""
        state, config = self.run.state, self.config
        self.comps.data.sampler.set_epoch(state.epoch)
        produced = 0
        epoch_full = True  # the sampler ran dry
        for loaded in self.comps.data.batches():
            produced += 1
            batch = loaded.to(self.run.device)
            last = self._step(batch)
            epoch_full = bool(self.per_epoch) and state.epoch_step >= self.per_epoch
            if last or epoch_full:
                break
            if state.step % int(config["checkpoint_every"]) == 0:
                self._checkpoint()
        if produced == 0 and state.epoch_step == 0:
            raise self._no_batch()
        if epoch_full:
            state.epoch += 1
            state.epoch_step = 0
        if state.stage_step < self.total and state.step % int(config["checkpoint_every"]) == 0:
            self._checkpoint()
        return batch

    def _step(self, batch: Batch) -> bool:
        """One step and what follows it at its period (record, validation, sample sheet); True at the
        stage's last step."""
        run, state, comps = self.run, self.run.state, self.comps
        factor = lr_factor(state.stage_step, self.total, self.config)
        for group, base_lr in zip(comps.model_optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base_lr * factor
        record = train_step(run, comps, batch, self.config, self.generator, self.precision)
        state.step += 1
        state.stage_step += 1
        state.epoch_step += 1
        self.seen += batch.size
        self.bar.advance(1)
        last = state.stage_step == self.total
        if record is not None and (state.step % int(self.config["log_every"]) == 0 or last):
            self._record(record)
        if self.validate_every and (state.step % self.validate_every == 0 or last):
            self._validate()
        if run.is_main and state.step % int(self.config["sample_every"]) == 0:
            write_step_sample_sheet(run.out, comps.model, batch, self.name, state.step)
        return last

    def _record(self, record: dict[str, Any]) -> None:
        """Log the step's record with the stage, epoch, step, learning rate and images/s since the last."""
        run, state = self.run, self.run.state
        now = time.perf_counter()
        record.update(
            stage=self.name,
            epoch=state.epoch,
            step=state.step,
            lr=self.comps.model_optimizer.param_groups[0]["lr"],
            images_per_s=self.seen * run.world_size / max(now - self.t_last, 1e-9),
            skipped_nonfinite=state.skipped_nonfinite,
        )
        self.t_last, self.seen = now, 0
        run.log.write(record)
        self.bar.update_losses(record)

    def _validate(self) -> None:
        """Score the held-out identities; log (metrics.jsonl, TensorBoard), show, and redraw curves.png."""
        run = self.run
        metrics = run.validator.evaluate(self.comps.model, run.device)
        run.last_validation = metrics
        elapsed = time.perf_counter() - run.started
        run.log.write({"stage": self.name, "step": run.state.step, "elapsed_s": round(elapsed, 2), **metrics})
        self.bar.update_validation(metrics)
        from facerep.train.curves import write_curves

        try:
            write_curves(run.out / "metrics.jsonl", run.out / "curves.png")
        except Exception as exc:  # a plot must never stop training
            run.terminal.notice(f"could not draw curves.png: {exc}")

    def _checkpoint(self, final: bool = False) -> None:
        keep = int(self.config["keep_checkpoints"])
        write_checkpoint(self.run, self.index, self.name, self.comps, keep, self.generator, final=final)

    def _finish(self, batch: Batch | None) -> None:
        """The stage's end: report skipped bad samples, store the neutral expression, write the stage's
        last checkpoint and sample sheet."""
        run, comps = self.run, self.comps
        skipped = {k: v for k, v in comps.data.dataset.skipped().items() if v}
        if skipped:  # recipe `on_bad_sample: skip`: say how many and which
            run.log.write({"stage": self.name, "step": run.state.step, "skipped_samples": skipped})
            count = sum(len(v) for v in skipped.values())
            run.terminal.notice(f"stage {self.name}: skipped {count} bad sample(s); see metrics.jsonl")
        comps.neutral_expression = neutral_expression(comps, run.device)
        self._checkpoint(final=True)
        if run.is_main and batch is not None:  # None: resumed at or past a lowered --max-steps
            write_step_sample_sheet(run.out, comps.model, batch, self.name, run.state.step)
