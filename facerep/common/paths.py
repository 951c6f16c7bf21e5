"""Where facerep keeps derived data (mesh hierarchies, the generated synthetic world)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$FACEREP_CACHE`` if set, else ``$XDG_CACHE_HOME/facerep`` or ``~/.cache/facerep``."""
    explicit = os.environ.get("FACEREP_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facerep"
    root.mkdir(parents=True, exist_ok=True)
    return root
