"""``facerep plugins``: every registered component, by kind, with its origin package."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    if kind is not None and kind not in registry.kinds():
        from facerep.common.errors import RecipeError, did_you_mean

        raise RecipeError(f"unknown kind {kind!r}{did_you_mean(kind, registry.kinds())}")
    console = Console()
    table = Table(title="facerep components", show_lines=False)
    for column in ("kind", "name", "package", "summary"):
        table.add_column(column)
    if details:
        table.add_column("arguments")
        table.add_column("parameters (demo size)", justify="right")
        context = _demo_context(registry)
    for comp in registry.components(kind):
        row = [comp.kind, comp.name, f"{comp.package} {comp.version}".strip(), comp.summary]
        if details:
            row.append(", ".join(_describe(n, p) for n, p in comp.recipe_parameters().items()))
            row.append(_parameter_count(registry, comp, context))
        table.add_row(*(Text(cell) for cell in row))  # plain text: docstrings may hold [brackets]
    console.print(table)
    for err in registry.load_errors:
        console.print(
            Text(f"plugin {err.plugin!r} from package {err.package!r} failed to load: ", style="yellow")
            + Text(str(err.error))
        )


def _describe(name: str, param) -> str:  # noqa: ANN001 - inspect.Parameter
    import inspect

    return name if param.default is inspect.Parameter.empty else f"{name}={param.default!r}"


_NETWORK_KINDS = ("encoder", "shape_decoder", "albedo_decoder", "renderer", "critic", "loss")


def _demo_context(registry) -> dict:  # noqa: ANN001 - Registry
    """The shared objects of the demo recipe (2k-vertex synthetic model, 64 px, ResNet-18)."""
    from facerep.common.paths import cache_dir
    from facerep.core.model import encoder_code_sizes
    from facerep.core.recipe import load_recipe
    from facerep.core.types import DEFAULT_IMAGE_SIZE

    demo = load_recipe("demo").stage("gcn_albedo")
    image_size = int(demo.get("data.image_size", DEFAULT_IMAGE_SIZE))
    context: dict = {"cache_dir": cache_dir(), "image_size": image_size, "num_identities": 1000}
    try:
        context["face_model"] = registry.build("facemodel", demo.get("face_model"), context)
        context["encoder"] = registry.build("encoder", demo.get("model.encoder"), context)
        context["code_sizes"] = encoder_code_sizes(context["encoder"])
    except Exception:  # components missing: counts are shown where they can be built
        pass
    return context


def _parameter_count(registry, comp, context: dict) -> str:  # noqa: ANN001
    """Trainable parameters of the component built with its defaults, or '' when not a network."""
    if comp.kind not in _NETWORK_KINDS:
        return ""
    try:
        module = registry.build(comp.kind, {"type": comp.qualified_name}, context)
    except Exception:
        return "?"
    params = getattr(module, "parameters", None)
    if params is None:
        return ""
    return f"{sum(p.numel() for p in params() if p.requires_grad):,}"


from facerep.testing.cli import check as _check_command  # noqa: E402 - `facerep plugins check NAME`

plugins_app.command("check")(_check_command)
