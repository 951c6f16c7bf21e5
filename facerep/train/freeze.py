"""``train.freeze``: parameters a stage does not train, named by prefix.

A stage's ``train.freeze`` lists prefixes of the model's parameter names (as in its state dict:
``encoder.landmark_heads``, ``shape_decoder``, ``encoder.layers.0`` ...); every parameter whose name
is a prefix match (the whole name, or the prefix followed by ``.``) gets ``requires_grad = False``
and stays out of the stage's optimiser. Buffers (batch-norm running statistics) are not parameters
and still update in training mode. A prefix that names no parameter is a recipe error at its line,
with the closest names. Landmark pre-training (`facerep.train.landmark_pretrain`) trains the
encoder's landmark branch and the shape decoder whatever this freezes: a stage may pre-train them
and then keep them fixed while the image heads learn.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from facerep.common.errors import RecipeError, did_you_mean
from facerep.core.recipe import Recipe

ADDRESS = "train.freeze"


def freeze_prefixes(stage: Recipe) -> list[str]:
    """The stage's ``train.freeze`` prefixes ([] when absent or null); a recipe error unless a list of
    non-empty strings."""
    node = (stage.get("train") or {}).get("freeze")
    if node is None:
        return []
    if not isinstance(node, list) or not all(isinstance(p, str) and p.strip(".") for p in node):
        raise RecipeError(
            f"{ADDRESS} must be a list of parameter-name prefixes (e.g. [shape_decoder, "
            f"encoder.landmark_heads]), got {node!r}",
            where=stage.locate(ADDRESS),
            address=ADDRESS,
        )
    return [p.strip(".") for p in node]


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def freeze_parameters(stage: Recipe, model: nn.Module) -> int:
    """Set ``requires_grad = False`` on `model`'s parameters under the stage's ``train.freeze``
    prefixes; returns how many tensors were frozen. A prefix matching nothing is a recipe error."""
    prefixes = freeze_prefixes(stage)
    if not prefixes:
        return 0
    named = dict(model.named_parameters())
    frozen = 0
    for prefix in prefixes:
        hits = [p for name, p in named.items() if _matches(name, prefix)]
        if not hits:
            parts = [name.split(".") for name in named]
            prefixes_known = {".".join(p[:k]) for p in parts for k in range(1, len(p) + 1)}
            raise RecipeError(
                f"{ADDRESS}: no parameter of the model is named {prefix!r} or under it"
                f"{did_you_mean(prefix, prefixes_known)}",
                where=stage.locate(ADDRESS),
                address=ADDRESS,
            )
        for parameter in hits:
            if parameter.requires_grad:
                parameter.requires_grad_(False)
                frozen += 1
    return frozen


def trainable_flags(modules: list[Any]) -> list[tuple[nn.Parameter, bool]]:
    """Every parameter of `modules` with its ``requires_grad`` flag (to restore after a phase that
    trains them all, see `facerep.train.landmark_pretrain`)."""
    return [(p, p.requires_grad) for module in modules for p in module.parameters()]
