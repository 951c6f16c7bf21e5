"""What a run stores in a checkpoint and how it is put back (the file format is `facerep.train.checkpoint`).

A checkpoint holds everything needed to continue bit for bit: the model, critic and loss parameters
(such as the recognition classifier and centres), optimisers, RNG states, the critic's generator, the
sampler's position, stage and step, the neutral expression, the recipe.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from facerep.common.errors import CheckpointError
from facerep.train import checkpoint as ckpt
from facerep.train.context import RunContext
from facerep.train.stage import Components

#: The model's parts, each stored under ``model.<name>``.
MODEL_PARTS: tuple[str, ...] = ("encoder", "shape_decoder", "albedo_decoder", "renderer")


def stage_modules(comps: Components) -> dict[str, nn.Module]:
    """Checkpoint address -> module, for every trainable part of a stage."""
    modules: dict[str, nn.Module] = {f"model.{name}": getattr(comps.model, name) for name in MODEL_PARTS}
    if comps.critic is not None:
        modules["critic"] = comps.critic
    modules.update({f"losses.{role}": loss for role, loss in comps.losses.items()})
    return modules


def class_name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def checkpoint_data(
    run: RunContext, index: int, name: str, comps: Components, generator: torch.Generator | None
) -> ckpt.CheckpointData:
    """The checkpoint of stage `index` (`name`) at the run's current step."""
    tensors: dict[str, Tensor] = {}
    modules = stage_modules(comps)
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
    if comps.neutral_expression is not None:
        tensors["neutral_expression"] = comps.neutral_expression
    state = run.state
    meta = {
        "stage": index,
        "stage_name": name,
        "epoch": state.epoch,
        "step": state.step,
        "stage_step": state.stage_step,
        "epoch_step": state.epoch_step,
        "skipped_nonfinite": state.skipped_nonfinite,
        "sampler": {
            **comps.data.sampler.state_dict(),
            "epoch": state.epoch,
            "batches_done": state.epoch_step,
        },
        "optimizers": opt_meta,
        "rng": rng_m,
        "classes": {address: class_name(module) for address, module in modules.items()},
        "num_identities": int(comps.context["num_identities"]),
        "recipe": run.recipe.data,
        "recipe_source": str(run.recipe.source),
    }
    return ckpt.CheckpointData(tensors, meta)


def write_checkpoint(
    run: RunContext,
    index: int,
    name: str,
    comps: Components,
    keep: int,
    generator: torch.Generator,
    final: bool = False,
) -> None:
    """Save the checkpoint of the current step (first process only) and keep the newest `keep` (0: all).

    A `final` checkpoint ends the stage: a run resumed from it starts the next stage. A checkpoint of
    another stage at the same step is never overwritten (`CheckpointError`).
    """
    if not run.is_main:
        return
    data = checkpoint_data(run, index, name, comps, generator)
    if final:
        data.meta["stage"] = index + 1  # a resumed run starts at the next stage
        data.meta["stage_complete"] = name
    path = ckpt.checkpoint_path(run.checkpoint_dir, run.state.step)
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
    ckpt.prune_checkpoints(run.checkpoint_dir, keep)


def restore(comps: Components, data: ckpt.CheckpointData, path: Path, between: bool) -> Tensor | None:
    """Load a checkpoint into freshly built components; returns the critic generator's saved state.

    Mid-stage checkpoints restore everything. A stage's last checkpoint (`between`: the run stopped
    between stages) restores the weights of components whose class is unchanged, as the stage switch
    does; the others start fresh. A component or state that does not fit raises `CheckpointError`
    naming the file and the component.
    """
    meta = data.meta
    classes = meta.get("classes") or {}
    for address, module in stage_modules(comps).items():
        saved = classes.get(address)
        if saved != class_name(module):
            if between:
                continue
            raise CheckpointError(
                f"{path}: its {address} is {'a ' + saved if saved else 'missing'}, the recipe builds a "
                f"{class_name(module)} (was it trained with another recipe?)"
            )
        ckpt.load_module_state(module, data.section(address), f"{path} ({address})")
    if between:
        return None
    try:
        ckpt.optimizer_from_tensors(comps.model_optimizer, data, "optim.model", meta["optimizers"]["model"])
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
    generator = data.tensors.get("rng.critic")
    restore_rng(path, data)
    return generator


def restore_rng(path: Path, data: ckpt.CheckpointData) -> None:
    """Set the process's random number generators as the checkpoint at `path` saved them."""
    try:
        ckpt.restore_rng_state(data, data.meta["rng"])
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot restore the random number generators ({type(exc).__name__}: {exc})"
        ) from None
