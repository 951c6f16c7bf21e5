"""Options shared by several commands."""

from __future__ import annotations

import typer

from facerep.train.device import DEFAULT_DEVICE, DEVICE_HELP


def device_option() -> str:
    """The ``--device`` option every command that runs a network takes (default ``auto``)."""
    return typer.Option(DEFAULT_DEVICE, "--device", help=DEVICE_HELP)


def start_device(device: str, console: object | None = None) -> object:
    """Resolve ``--device`` (`facerep.train.device.resolve_device`) and print the line naming it on stderr
    (the command's output stays clean); returns the `torch.device`."""
    from rich.console import Console

    from facerep.train.device import describe_device, resolve_device

    resolved = resolve_device(device)
    (console if console is not None else Console(stderr=True)).print(
        describe_device(resolved), highlight=False
    )
    return resolved
