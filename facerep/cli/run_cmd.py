"""``facerep run RECIPE``: train a recipe (also under torchrun for DDP)."""

from __future__ import annotations

from pathlib import Path

import typer

from facerep.cli.recipe_cmd import SET_HELP


def run(
    recipe: str = typer.Argument(..., help="Recipe file or built-in name (full, demo, no_adv, ...)."),
    out: Path = typer.Option(None, "--out", help="Run directory (default: runs/<recipe name>)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    unset: list[str] = typer.Option([], "--unset", help="Delete a key."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run directory's last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    max_steps: int = typer.Option(None, "--max-steps", help="At most this many steps per stage."),
    precision: str = typer.Option(None, "--precision", help="32 or bf16-mixed (default: the recipe's)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display (logs still written)."),
    compile_: bool = typer.Option(
        False, "--compile", help="torch.compile the encoder and decoders (GPU speed)."
    ),
) -> None:
    """Train a recipe stage by stage; checkpoints, metrics and sample sheets go to the run directory."""
    import os

    from facerep.core.engine import Trainer, TrainOptions
    from facerep.core.recipe import load_recipe

    resolved = load_recipe(recipe, overrides=set_, unsets=unset)
    if device.startswith("cuda") and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    options = TrainOptions(
        out=out or Path("runs") / resolved.name,
        device=device,
        resume=resume,
        max_steps=max_steps,
        quiet=quiet,
        precision=precision,
        compile=compile_,
    )
    Trainer(resolved, options).fit()
