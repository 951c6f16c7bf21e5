"""The architecture, checked from the source: every built-in plugin is declared as an entry point."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "facerep"


def module_name(path: Path) -> str:
    """``facerep/plugins/losses/shape.py`` -> ``facerep.plugins.losses.shape`` (a package: its folder)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def plugin_modules() -> list[str]:
    """Modules under facerep/plugins defining ``facerep_components`` at top level (read, not imported)."""
    found = []
    for path in sorted((PACKAGE / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        defines = any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "facerep_components"
            for node in tree.body
        )
        if defines:
            found.append(module_name(path))
    return found


def declared_entry_points() -> dict[str, str]:
    """pyproject.toml's ``[project.entry-points.facerep]`` table, name -> module (3.10 has no tomllib)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.entry-points.facerep]\n", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^"([^"]+)"\s*=\s*"([^"]+)"', section, flags=re.MULTILINE))


def test_every_builtin_plugin_module_is_declared_as_an_entry_point() -> None:
    declared = declared_entry_points()
    modules = plugin_modules()
    assert len(modules) >= 30
    missing = sorted(set(modules) - set(declared.values()))
    assert not missing, (
        f"plugin modules not declared under [project.entry-points.facerep] in pyproject.toml: {missing}"
    )
    extra = sorted(set(declared.values()) - set(modules))
    assert not extra, f"entry points naming no plugin module (no facerep_components): {extra}"
    assert all(name == value for name, value in declared.items()), "built-in entry points are named by module"


def test_the_installed_metadata_declares_the_same_builtins_as_pyproject() -> None:
    from facerep.core.registry import builtin_entry_points

    declared = declared_entry_points()
    installed = {ep.name: ep.value for ep in builtin_entry_points()}
    assert installed == declared, "the installed facerep is stale: run `pip install -e .` (or `make`)"
