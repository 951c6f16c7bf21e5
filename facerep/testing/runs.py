"""A tiny trained run for tests of code that loads runs (applications, benchmarks, plugins).

`train_tiny_run` trains a few steps of a built-in recipe at tiny size (600-vertex synthetic face model,
32 px images of the ``tiny`` synthetic world, ResNet-18, small graph decoders) with the real engine,
so the run directory has everything a real run has (recipe, checkpoints, neutral expression).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

TINY_RECIPE = """\
extends: {parent}
name: tiny-{parent}
face_model:
  vertices: 600
data:
  world:
    preset: tiny
  image_size: 32
  batch:
    identities: 2
    photos_per_identity: 2
    labelled_pairs: 1
  num_workers: 0
model:
  encoder:
    depth: 18
  shape_decoder:
    channels: [16, 8, 8, 8]
    K: 3
  albedo_decoder:
    channels: [16, 8, 8, 8]
    K: 3
{critic}train:
  epochs: 1
  steps_per_epoch: {steps}
  log_every: 1
  sample_every: 100000
  checkpoint_every: 100000
  keep_checkpoints: 1
{stages}"""


def tiny_recipe_text(parent: str = "gcn_albedo_only", steps: int = 2) -> str:
    """The YAML of a tiny recipe extending the built-in `parent` (one epoch of `steps` steps per stage;
    the critic shrunk when the parent has one)."""
    from facerep.core.recipe import load_recipe

    base = load_recipe(parent)
    critic = "critic:\n  channels: [8, 8, 8, 8]\n  K: 3\n" if base.get("critic") is not None else ""
    names = base.stage_names() if base.get("stages") else []
    stages = "stages:\n" + "".join(f"  {n}:\n    train:\n      epochs: 1\n" for n in names) if names else ""
    text = TINY_RECIPE.format(parent=parent, steps=int(steps), critic=critic, stages=stages)
    return textwrap.dedent(text)


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
