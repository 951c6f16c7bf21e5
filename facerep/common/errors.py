"""Errors that users see, with the place they come from."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class FacerepError(Exception):
    """Base class of facerep's user-facing errors (the CLI prints them without a traceback)."""


class RecipeError(FacerepError):
    """A recipe (or a component node in it) is invalid.

    Attributes:
        where: "file:line" of the offending value when known, else None.
        address: dotted recipe path of the offending node or key (e.g. "model.encoder.type").
    """

    def __init__(self, message: str, *, where: str | None = None, address: str | None = None) -> None:
        self.message = message
        self.where = where
        self.address = address
        super().__init__(self.render())

    def render(self) -> str:
        head = ", ".join(p for p in (self.where, f"key {self.address!r}" if self.address else None) if p)
        return f"{head}: {self.message}" if head else self.message


class DataError(FacerepError):
    """A data file is missing, corrupt or malformed; the message names the file."""


class CheckpointError(FacerepError):
    """A checkpoint is missing or corrupt; the message names the file."""


class NonFiniteLossError(FacerepError, FloatingPointError):
    """A loss (or one of its inputs) is NaN or Inf: raised by a loss's own check, or by the trainer when
    it stops on such a step (``train.on_nonfinite: stop``).

    Attributes:
        loss: the loss's registry name or role (e.g. "photometric", "critic").
        inputs: names of the inputs that hold non-finite values (may be empty when only the result is).
        samples: sample ids of the offending rows, when the batch names them.
        step: the training step the trainer stopped at, or None (a loss's own check).
    """

    def __init__(
        self,
        loss: str,
        message: str,
        inputs: Sequence[str] = (),
        samples: Sequence[str] = (),
        *,
        step: int | None = None,
    ) -> None:
        self.loss = loss
        self.inputs = list(inputs)
        self.samples = list(samples)
        self.step = step
        head = f"loss {loss!r}:" if step is None else f"loss {loss!r} is not finite at step {step}"
        super().__init__(f"{head} {message}")


class WriteError(FacerepError):
    """An output file or folder cannot be written (read-only, disk full, outside the output folder); the
    message names it and the cause. Nothing half-written is left (`facerep.common.safe_write`)."""


def literal(text: object) -> str:
    """``str(text)`` escaped for rich console markup, so that it prints as it is: ``facerep[detect]`` keeps
    its ``[detect]`` and a path holding ``[/b]`` is text, not a closing tag. Wrap every user-supplied or
    bracketed value in a message printed with rich (``console.print(f"[green]wrote[/] {literal(path)}")``)."""
    from rich.markup import escape

    return escape(str(text))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `choices`, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
