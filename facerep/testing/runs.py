"""Tiny recipes and a tiny trained run, for tests of code that trains or loads runs (applications,
benchmarks, plugins, the trainer itself).

`tiny_recipe_text` is the one tiny version of a built-in recipe (600-vertex synthetic face model, 32 px
images of the ``tiny`` synthetic world, batches of 2 identities x 2 photos + 1 labelled pair, ResNet-18,
small graph decoders and critic). `train_tiny_run` trains a few steps of it with the real trainer, so
the run directory has everything a real run has (recipe, checkpoints, neutral expression).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The small graph network of the decoders and the critic (Chebyshev order 3).
SMALL_GRAPH: dict[str, Any] = {"channels": [16, 8, 8, 8], "K": 3}
SMALL_CRITIC: dict[str, Any] = {"channels": [8, 8, 8, 8], "K": 3}
#: ``train`` options of a tiny recipe (``steps_per_epoch`` is the `steps` argument).
TINY_TRAIN: dict[str, Any] = {
    "epochs": 1,
    "log_every": 1,
    "sample_every": 100000,
    "checkpoint_every": 100000,
    "keep_checkpoints": 1,
}


def tiny_recipe_text(
    parent: str = "gcn_albedo_only",
    steps: int = 2,
    *,
    epochs: Sequence[int] | None = None,
    train: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> str:
    """The YAML of a tiny recipe extending the built-in `parent` (named ``tiny-<parent>`` unless `name`).

    Every stage of `parent` runs ``epochs[i]`` epochs (1 each by default) of `steps` steps; `train` adds
    or replaces ``train`` options (`TINY_TRAIN`). Graph decoders and the critic are shrunk where the
    parent has them (a linear shape decoder stays as it is).
    """
    import yaml

    from facerep.core.recipe import load_recipe

    base = load_recipe(parent)
    model: dict[str, Any] = {"encoder": {"depth": 18}}
    for part in ("shape_decoder", "albedo_decoder"):
        if base.get(f"model.{part}.type") == "gcn":
            model[part] = copy.deepcopy(SMALL_GRAPH)
    recipe: dict[str, Any] = {
        "extends": parent,
        "name": name or f"tiny-{parent}",
        "face_model": {"vertices": 600},
        "data": {
            "world": {"preset": "tiny"},
            "image_size": 32,
            "batch": {"identities": 2, "photos_per_identity": 2, "labelled_pairs": 1},
            "num_workers": 0,
        },
        "model": model,
    }
    if base.get("critic") is not None:
        recipe["critic"] = copy.deepcopy(SMALL_CRITIC)
    recipe["train"] = {**TINY_TRAIN, "steps_per_epoch": int(steps), **(train or {})}
    names = base.stage_names() if base.get("stages") else []
    if names:
        counts = list(epochs) if epochs is not None else [1] * len(names)
        recipe["stages"] = {n: {"train": {"epochs": int(e)}} for n, e in zip(names, counts, strict=False)}
    return yaml.safe_dump(recipe, sort_keys=False)


def train_tiny_run(
    out: str | Path, *, parent: str = "gcn_albedo_only", steps: int = 2, seed: int = 0
) -> Path:
    """Train `steps` steps of the tiny version of `parent` into the run directory `out`; returns it."""
    from facerep.core.recipe import load_recipe
    from facerep.train.options import TrainOptions
    from facerep.train.trainer import Trainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe_path = out.parent / f"{out.name}.recipe.yaml"
    recipe_path.write_text(tiny_recipe_text(parent, steps) + f"seed: {int(seed)}\n")
    return Trainer(load_recipe(recipe_path), TrainOptions(out=out, quiet=True)).fit()
