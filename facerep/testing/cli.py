"""``facerep plugins check NAME``: the contract checks of `facerep.testing`, without pytest."""

from __future__ import annotations

import typer


def _parse_sets(values: list[str]) -> dict[str, object]:
    import yaml

    from facerep.common.errors import RecipeError

    node: dict[str, object] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set expects KEY=VALUE, got {item!r}")
        node[key.strip()] = yaml.safe_load(text)
    return node


def check(
    name: str = typer.Argument(..., help="Component name (a recipe's 'type'; PACKAGE:NAME picks a package)."),
    kind: str = typer.Option(None, "--kind", help="Only the component of this kind (default: every kind)."),
    set_: list[str] = typer.Option([], "--set", help="Recipe argument KEY=VALUE (YAML value); repeatable."),
    only: list[str] = typer.Option([], "--check", help="Run only this check (repeatable)."),
) -> None:
    """Run the contract checks on a registered component (exit status 1 when one fails)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from facerep.common.errors import RecipeError, did_you_mean
    from facerep.core.registry import get_registry
    from facerep.testing.kit import check_component

    registry = get_registry()
    short = name.split(":", 1)[-1]
    kinds = [k for k in registry.kinds() if short in registry.names(k)]
    if kind is not None:
        if kind not in registry.kinds():
            raise RecipeError(f"unknown kind {kind!r}{did_you_mean(kind, registry.kinds())}")
        kinds = [kind] if kind in kinds else []
    if not kinds:
        every = sorted({c.name for c in registry.components(kind)})
        raise RecipeError(
            f"no {kind or 'component'} named {short!r}{did_you_mean(short, every)}; see `facerep plugins`"
        )
    node = {"type": name, **_parse_sets(set_)}
    console = Console()
    failed = 0
    for k in kinds:
        comp = registry.get(k, name)
        table = Table(title=f"{k} {comp.name} ({comp.package} {comp.version})".strip(), title_justify="left")
        for column in ("check", "status", "seconds", "message"):
            table.add_column(column)
        results = check_component(k, node, registry=registry, checks=only or None)
        colours = {"passed": "green", "failed": "bold red", "skipped": "yellow"}
        for r in results:
            status = Text(r.status, style=colours[r.status])
            table.add_row(Text(r.check), status, f"{r.seconds:.2f}", Text(r.message))  # messages are text
        console.print(table)
        failed += sum(r.failed for r in results)
    if failed:
        console.print(f"[bold red]{failed} check(s) failed[/]")
        raise SystemExit(1)  # not typer.Exit: click returns its code silently when not standalone
    console.print("[green]all checks passed[/]")
