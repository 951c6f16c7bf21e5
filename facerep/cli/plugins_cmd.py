"""``facerep plugins``: every registered component, by kind, with its origin package."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

plugins_app = typer.Typer(help="List registered components.", invoke_without_command=True)


@plugins_app.callback()
def plugins(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="Only this kind."),
    details: bool = typer.Option(False, "--details", help="Show recipe arguments."),
) -> None:
    """Every component by kind, name, origin package and summary."""
    if ctx.invoked_subcommand is not None:
        return
    from facerep.core.registry import get_registry

    registry = get_registry()
    if kind is not None:
        registry.get(kind, "__probe__") if kind not in registry.kinds() else None
    console = Console()
    table = Table(title="facerep components", show_lines=False)
    for column in ("kind", "name", "package", "summary"):
        table.add_column(column)
    if details:
        table.add_column("arguments")
    for comp in registry.components(kind):
        row = [comp.kind, comp.name, f"{comp.package} {comp.version}".strip(), comp.summary]
        if details:
            row.append(", ".join(_describe(n, p) for n, p in comp.recipe_parameters().items()))
        table.add_row(*row)
    console.print(table)
    for err in registry.load_errors:
        console.print(
            f"[yellow]plugin {err.plugin!r} from package {err.package!r} failed to load:[/] {err.error}"
        )


def _describe(name: str, param) -> str:  # noqa: ANN001 - inspect.Parameter
    import inspect

    return name if param.default is inspect.Parameter.empty else f"{name}={param.default!r}"
