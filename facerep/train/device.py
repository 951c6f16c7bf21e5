"""The torch device of a command: ``auto`` (the default everywhere) is CUDA when available, else CPU."""

from __future__ import annotations

import torch

from facerep.common.errors import FacerepError

#: The default of every ``--device`` option.
DEFAULT_DEVICE = "auto"
#: The help text of every ``--device`` option.
DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N."


def resolve_device(spec: str | torch.device | None = DEFAULT_DEVICE) -> torch.device:
    """``auto`` / None -> ``cuda`` when CUDA is available, else ``cpu``; any other value as torch reads it.

    A name torch does not know, or a CUDA device on a machine without one, is a `FacerepError` saying so.
    """
    if isinstance(spec, torch.device):
        return spec
    text = (spec or DEFAULT_DEVICE).strip()
    if text == DEFAULT_DEVICE:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise FacerepError(f"--device {text!r}: not a torch device ({exc}); use {DEVICE_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FacerepError(f"--device {text!r}: CUDA is not available on this machine (use auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FacerepError(
                f"--device {text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def describe_device(device: torch.device) -> str:
    """The line a command prints first: ``device: cuda:0 (NVIDIA H200)``, ``device: cpu (4 threads)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"device: cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"device: {device} ({torch.get_num_threads()} threads)"
