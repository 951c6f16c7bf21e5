"""Built-in plugins: every module below this package that defines ``facerep_components``.

They register through the same pluggy hook a third-party package uses (see `facerep.core.registry`).
"""

from __future__ import annotations

import importlib
import pkgutil


def builtin_modules() -> list[str]:
    """Dotted names of the built-in plugin modules, sorted (discovered, so adding a file is enough)."""
    names = []
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        if info.ispkg:
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "facerep_components"):
            names.append(info.name)
    return sorted(names)
