"""A stage's ``train`` section: its options, their defaults and their checks."""

from __future__ import annotations

from typing import Any

from facerep.common.errors import RecipeError
from facerep.core.recipe import Recipe, options_with_defaults

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
    "landmark_pretrain": None,  # {steps, lr, batch, neutral}: facerep.train.landmark_pretrain
    "freeze": None,  # parameter-name prefixes the stage does not train (facerep.train.freeze)
    "lr_warmup": 0,  # steps of linear warm-up of the model's learning rate at the start of the stage
    "lr_decay": "none",  # "none" or "cosine" (to lr_final x the recipe's rate at the stage's last step)
    "lr_final": 0.0,
}

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
    from facerep.train.freeze import freeze_prefixes
    from facerep.train.landmark_pretrain import pretrain_config

    pretrain_config(stage)  # its keys and values, checked with the rest
    freeze_prefixes(stage)
    return config
