"""The ``facerep`` command line: thin, it parses, calls core and plugins, and prints with rich."""

from __future__ import annotations

# isort: off
# First, before any import loads torch: OpenMP's wait policy (facerep/cli/threads.py).
import facerep.cli.threads  # noqa: F401

# isort: on
import re
import sys

import typer

from facerep.cli.bench_cmd import bench
from facerep.cli.data_cmd import data_app
from facerep.cli.facemodel_cmd import facemodel_app
from facerep.cli.plugins_cmd import plugins_app
from facerep.cli.recipe_cmd import recipe_app
from facerep.cli.reconstruct_cmd import reconstruct
from facerep.cli.run_cmd import run
from facerep.cli.transfer_cmd import transfer
from facerep.common.errors import FacerepError, literal


class _PlainHelpTyper(typer.Typer):
    """A Typer app whose help texts print as written (`plain_help`) when it is called."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        return plain_help(typer.main.get_command(self))(*args, **kwargs)


app = _PlainHelpTyper(
    name="facerep",
    help="Semi-supervised 3D face representation learning from photo collections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(plugins_app, name="plugins")
app.add_typer(recipe_app, name="recipe")
app.add_typer(facemodel_app, name="facemodel")
app.add_typer(data_app, name="data")
app.command("run")(run)
app.command("bench")(bench)
app.command("reconstruct")(reconstruct)
app.command("transfer")(transfer)


@app.command("version")
def version() -> None:
    """Print facerep's version."""
    from facerep import __version__

    typer.echo(__version__)


def _click_exception() -> type[Exception]:
    """The ClickException class typer uses (typer >= 0.26 vendors click as typer._click)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:
        from click import ClickException
    return ClickException


# a rich markup tag not already escaped: "[detect]" in "facerep[detect]", "[/b]"
_UNESCAPED_TAG = re.compile(r"(?<!\\)(\[[a-z#/@][^\[]*?\])")


def _plain(text: str | None) -> str | None:
    """Help text with its bracketed words escaped for rich (idempotent: an escaped bracket stays escaped)."""
    return _UNESCAPED_TAG.sub(r"\\\1", text) if text else text


def plain_help(command: object) -> object:
    """Make every help text of a click command tree plain text (typer renders help as rich markup, which
    would print ``needs facerep[detect]`` as ``needs facerep``). Returns `command`, changed in place."""
    for attr in ("help", "short_help", "epilog"):
        if isinstance(getattr(command, attr, None), str):
            setattr(command, attr, _plain(getattr(command, attr)))
    for param in getattr(command, "params", []):
        if isinstance(getattr(param, "help", None), str):
            param.help = _plain(param.help)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def print_error(message: object) -> None:
    """Print ``error: MESSAGE`` on stderr, the message as it is (no markup, no emoji codes, no wrapping)."""
    from rich.console import Console

    Console(stderr=True).print(
        f"[bold red]error:[/] {literal(message)}", highlight=False, soft_wrap=True, emoji=False
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one clear message and exit with status 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except FacerepError as exc:
        print_error(exc)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except _click_exception() as exc:  # usage errors surface here in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:  # a command's typer.Exit(n) comes back as a return value
        sys.exit(code)
