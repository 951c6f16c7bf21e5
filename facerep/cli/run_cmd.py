"""``facerep run RECIPE``: train a recipe (also under torchrun for DDP)."""

from __future__ import annotations

from pathlib import Path

import typer

from facerep.cli.options import device_option
from facerep.cli.recipe_cmd import SET_HELP
from facerep.common.errors import RecipeError
from facerep.core.recipe import Recipe


def run(
    recipe: str = typer.Argument(..., help="Recipe file or built-in name (full, demo, no_adv, ...)."),
    out: Path = typer.Option(None, "--out", help="Run directory (default: runs/<recipe name>)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    unset: list[str] = typer.Option([], "--unset", help="Delete a key."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from the run directory's newest readable checkpoint (start afresh if it has none).",
    ),
    allow_recipe_change: bool = typer.Option(
        False,
        "--allow-recipe-change",
        help="With --resume: go on with a recipe unlike the one the run was trained with (by default "
        "refused, with the differences); the old recipe.yaml is kept as recipe.before-step-N.yaml.",
    ),
    device: str = device_option(),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="At most this many steps per stage."),
    precision: str = typer.Option(None, "--precision", help="32 or bf16-mixed (default: the recipe's)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display (logs still written)."),
    compile_: bool = typer.Option(
        False, "--compile", help="torch.compile the encoder and decoders (GPU speed)."
    ),
) -> None:
    """Train a recipe stage by stage; checkpoints, metrics and sample sheets go to the run directory.

    A run directory holds one run: a fresh run refuses a folder with an earlier run's outputs, and two
    runs cannot use one folder at once (it is locked while training).
    """
    import os

    from facerep.cli.options import start_device
    from facerep.core.recipe import load_recipe
    from facerep.train.options import TrainOptions
    from facerep.train.trainer import Trainer

    resolved = load_recipe(recipe, overrides=set_, unsets=unset)
    device = str(start_device(device))  # auto: CUDA when available, else the CPU
    if device.startswith("cuda") and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    options = TrainOptions(
        out=out or default_run_dir(resolved),
        device=device,
        resume=resume,
        max_steps=max_steps,
        quiet=quiet,
        precision=precision,
        compile=compile_,
        allow_recipe_change=allow_recipe_change,
    )
    Trainer(resolved, options).fit()


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<recipe name>``; a name that is not a plain folder name (``..``, ``a/b``, an absolute path)
    is a recipe error, so a recipe can never choose a folder outside ``runs/``."""
    name = recipe.name
    bad = (
        not name.strip()
        or name in (".", "..")
        or any(sep in name for sep in ("/", "\\", "\0"))
        or Path(name).is_absolute()
        or any(ord(c) < 32 for c in name)
    )
    if bad:
        raise RecipeError(
            f"the recipe name {name!r} cannot name a run folder (runs/<name>): use a plain name without "
            "'/' or '..', or pass --out",
            where=recipe.locate("name"),
            address="name",
        )
    return Path("runs") / name
