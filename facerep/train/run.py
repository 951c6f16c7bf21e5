"""Loading a trained run: the composed model, its face model and the neutral expression code."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facerep.common.errors import CheckpointError, RecipeError
from facerep.common.paths import cache_dir
from facerep.core.interfaces import FaceModel
from facerep.core.model import FaceRepModel, build_model
from facerep.core.recipe import Recipe
from facerep.core.registry import Registry, get_registry
from facerep.core.types import DEFAULT_IMAGE_SIZE
from facerep.train import checkpoint as ckpt
from facerep.train.recipe_check import PLACEHOLDER_IDENTITIES

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained run, ready for inference.

    Attributes:
        name: the run directory's name.
        path: the run directory.
        checkpoint: the checkpoint file loaded.
        recipe: the resolved recipe of the stage the checkpoint belongs to.
        face_model: the run's face model.
        image_size: input image side in pixels.
        neutral_expression: (D_exp,) expression code decoded as neutral (see `facerep.train.neutral`).
        model: the composed `FaceRepModel` in eval mode.
    """

    name: str
    path: Path
    checkpoint: Path
    recipe: Recipe
    face_model: FaceModel
    image_size: int
    neutral_expression: torch.Tensor
    model: FaceRepModel


def _stage_for_checkpoint(recipe: Recipe, meta: dict[str, Any]) -> Recipe:
    names = recipe.stage_names()
    name = meta.get("stage_complete") or meta.get("stage_name")
    return recipe.stage(name if name in names else names[min(int(meta.get("stage", 0)), len(names) - 1)])


def load_run(
    path: str | Path,
    *,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    registry: Registry | None = None,
    warn: Callable[[str], None] | None = None,
) -> LoadedRun:
    """Load the newest readable checkpoint of a run directory (or a given checkpoint file).

    Newer checkpoints that cannot be read are skipped, each reported through `warn` (default: a
    logging warning, which the command line prints) with the reason. Raises `CheckpointError` when the
    run has no checkpoint (or none readable: each file and why) or its weights do not fit its recipe.
    """
    registry = registry or get_registry()
    warn = warn or log.warning
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    if checkpoint is not None:
        ckpt_path, data = Path(checkpoint), ckpt.load_checkpoint(Path(checkpoint))
    else:
        found = ckpt.load_latest(run_dir / "checkpoints", warn=warn)
        if found is None:
            raise CheckpointError(f"no checkpoint in {run_dir / 'checkpoints'} (has this run trained?)")
        ckpt_path, data = found
    meta = data.meta
    recipe = Recipe(meta["recipe"], {}, Path(meta.get("recipe_source", run_dir / "recipe.yaml")))
    context: dict[str, Any] = {"cache_dir": cache_dir(), "device": torch.device(device)}
    try:
        stage = _stage_for_checkpoint(recipe, meta)
        face_model = registry.build("facemodel", stage.get("face_model"), context, address="face_model")
        image_size = int(stage.get("data.image_size", DEFAULT_IMAGE_SIZE))
        context.update(face_model=face_model, image_size=image_size)
        context["num_identities"] = int(meta.get("num_identities", PLACEHOLDER_IDENTITIES))
        model = build_model(stage, context, registry)
    except RecipeError as exc:
        raise CheckpointError(
            f"{ckpt_path}: the recipe stored in it does not build a model ({exc})"
        ) from None
    ckpt.load_module_state(model, data.section("model"), str(ckpt_path))
    model.to(device).eval()
    size = int(context["code_sizes"]["expression"])
    neutral = data.tensors.get("neutral_expression")
    if neutral is None:
        neutral = torch.zeros(size)
    elif tuple(neutral.shape) != (size,):
        raise CheckpointError(
            f"{ckpt_path}: its neutral_expression has shape {tuple(neutral.shape)}, the model's expression "
            f"code has {size} values"
        )
    return LoadedRun(
        run_dir.name, run_dir, ckpt_path, stage, face_model, image_size, neutral.to(device), model
    )
