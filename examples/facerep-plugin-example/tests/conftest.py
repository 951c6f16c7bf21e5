"""Make the plugin known to facerep even when the tests run from a source checkout (not installed)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
os.environ.setdefault("FACEREP_CACHE", tempfile.mkdtemp(prefix="facerep-plugin-example-cache-"))


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest.Config
    from facerep.core.registry import get_registry

    registry = get_registry()
    if "spiral" not in registry.names("shape_decoder"):  # not installed: register the module directly
        try:
            import facerep_plugin_example
        except ImportError:  # a source checkout: import from src/
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
            import facerep_plugin_example
        from facerep_plugin_example import plugin

        registry.register(
            plugin,
            name="facerep_plugin_example",
            package="facerep-plugin-example",
            version=facerep_plugin_example.__version__,
        )
