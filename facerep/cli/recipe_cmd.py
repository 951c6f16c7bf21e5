"""``facerep recipe show|diff|validate``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

recipe_app = typer.Typer(help="Resolve, compare and validate recipes.", no_args_is_help=True)

SET_HELP = "Override an existing key (a.b=value) or add one (+a.b=value); value parsed as YAML."


@recipe_app.command("show")
def show(
    recipe: str = typer.Argument(..., help="Recipe file or built-in name."),
    origin: bool = typer.Option(
        False, "--origin", help="Annotate each value with the file:line it came from."
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    unset: list[str] = typer.Option([], "--unset", help="Delete a key."),
    stage: str = typer.Option(None, "--stage", help="Show the recipe as it applies in this stage."),
) -> None:
    """Print the fully resolved recipe."""
    from facerep.core.recipe import load_recipe

    resolved = load_recipe(recipe, overrides=set_, unsets=unset)
    if stage is not None:
        resolved = resolved.stage(stage)
    text = resolved.to_yaml(with_origins=origin)
    console = Console()
    if console.is_terminal:
        console.print(Syntax(text, "yaml", theme="ansi_dark", word_wrap=True))
    else:
        typer.echo(text, nl=False)


@recipe_app.command("diff")
def diff(a: str = typer.Argument(...), b: str = typer.Argument(...)) -> None:
    """Print what differs between two resolved recipes."""
    from facerep.core.recipe import diff as recipe_diff
    from facerep.core.recipe import load_recipe

    ra, rb = load_recipe(a), load_recipe(b)
    rows = recipe_diff(ra, rb)
    console = Console()
    if not rows:
        console.print("the recipes resolve to the same values")
        return
    table = Table(title=f"{a} -> {b}")
    for column in ("", "key", a, b):
        table.add_column(column)
    style = {"+": "green", "-": "red", "~": "yellow"}
    for key, change, va, vb in rows:
        table.add_row(
            f"[{style[change]}]{change}[/]",
            key,
            "" if change == "+" else repr(va),
            "" if change == "-" else repr(vb),
        )
    console.print(table)


@recipe_app.command("validate")
def validate(
    recipe: str = typer.Argument(...),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    unset: list[str] = typer.Option([], "--unset"),
    data: bool = typer.Option(
        False, "--data", help="Also check the data: each source's root exists and its first samples load."
    ),
) -> None:
    """Check the recipe as `facerep run` does before training, without reading data: every key and value,
    every component against the registry, and each stage's face model, networks, losses and optimizers
    built once on the CPU. Exit 0 when valid, 2 with the error (file:line, key, cause) otherwise."""
    from facerep.core.recipe import load_recipe
    from facerep.train.recipe_check import check_recipe

    resolved = load_recipe(recipe, overrides=set_, unsets=unset)
    checked = check_recipe(resolved, build=True)
    Console(highlight=False).print(
        f"ok: {resolved.source} ({len(checked)} components over {len(resolved.stage_names())} stage(s))",
        markup=False,
        soft_wrap=True,
    )

    if data:
        from facerep.data.source_check import check_sources

        for line in check_sources(resolved):
            Console(highlight=False).print(f"data ok: {line}", markup=False)
