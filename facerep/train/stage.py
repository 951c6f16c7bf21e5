"""Building one stage: every component a recipe stage names, through the registry by name.

Stages run in recipe order; components at the same address with the same ``type`` carry their weights
into the next stage (the U-Net albedo decoder of stage 2 starts fresh, everything else carries over).
Optimisers restart at each stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from facerep.common.errors import RecipeError
from facerep.common.paths import cache_dir
from facerep.core.interfaces import FaceModel
from facerep.core.model import FaceRepModel, build_model
from facerep.core.recipe import Recipe
from facerep.core.registry import Registry, get_registry
from facerep.train import data_setup
from facerep.train.freeze import freeze_parameters


@dataclass
class Components:
    """Everything one stage trains with.

    Attributes:
        neutral_expression: (D_exp,) the expression code decoded as "neutral", set when the stage ends
            (`facerep.train.neutral.neutral_expression`); None before.
    """

    face_model: FaceModel
    model: FaceRepModel
    critic: nn.Module | None
    losses: dict[str, nn.Module]
    data: data_setup.TrainingData
    model_optimizer: torch.optim.Optimizer
    critic_optimizer: torch.optim.Optimizer | None
    context: dict[str, Any]
    neutral_expression: Tensor | None = None


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
    registry = registry or get_registry()
    locate = stage.locate
    context: dict[str, Any] = {"cache_dir": cache_dir(), "device": device}
    face_model = registry.build(
        "facemodel", stage.get("face_model"), context, address="face_model", locate=locate
    )
    context["face_model"] = face_model
    data = data_setup.build_training_data(
        stage, face_model, registry=registry, rank=rank, world_size=world_size
    )
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
        carry_weights(previous, model, critic, losses)
    if world_size > 1:  # normalise with the whole batch's statistics, as one process would
        from facerep.nn.global_batchnorm import use_global_batchnorm

        use_global_batchnorm(model)
    for module in (model, critic, *losses.values()):
        if module is not None:
            module.to(device)
    freeze_parameters(stage, model)
    model_optimizer, critic_optimizer = _optimizers(stage, registry, model, critic, losses)
    return Components(face_model, model, critic, losses, data, model_optimizer, critic_optimizer, context)


def _optimizers(
    stage: Recipe,
    registry: Registry,
    model: FaceRepModel,
    critic: nn.Module | None,
    losses: dict[str, nn.Module],
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """The model's optimiser (its trainable parameters and the losses', e.g. a recognition classifier)
    and the critic's; recipe errors for a critic without an optimiser or an adversarial loss without one."""
    locate = stage.locate
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
    return model_optimizer, critic_optimizer


def carry_weights(
    previous: Components, model: FaceRepModel, critic: nn.Module | None, losses: dict[str, nn.Module]
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
