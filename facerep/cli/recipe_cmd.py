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
    """Check the recipe against the registry: exit 0 when valid, 2 with the error otherwise."""
    from facerep.core.recipe import load_recipe
    from facerep.core.recipe import validate as validate_recipe

    resolved = load_recipe(recipe, overrides=set_, unsets=unset)
    checked = validate_recipe(resolved)
    _check_training_options(resolved)
    Console().print(
        f"[green]ok[/]: {resolved.source} "
        f"({len(checked)} components over {len(resolved.stage_names())} stage(s))"
    )

    if data:
        from facerep.data.source_check import check_sources

        for line in check_sources(resolved):
            Console(highlight=False).print(f"data ok: {line}", markup=False)


def _check_training_options(resolved: object) -> None:
    """Each stage's ``train`` options and ``train.validate`` as `facerep run` checks them (recipe errors)."""
    from facerep.core.data_setup import validation_config
    from facerep.core.engine import train_config
    from facerep.core.registry import get_registry

    registry = get_registry()
    for _, stage in resolved.stages():  # type: ignore[attr-defined]
        train_config(stage)
        labelled = []
        for role, node in (stage.get("data.sources") or {}).items():
            factory = registry.get("dataset", str(node.get("type")), address=f"data.sources.{role}").factory
            if getattr(factory, "labelled", False):
                labelled.append(role)
        validation_config(stage, labelled)
