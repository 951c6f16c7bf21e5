"""The architecture, checked from the source (docs/architecture.md, .devexp/LAYERS.md).

- Layers: every import in facerep/ (at any depth, inside functions and ``if TYPE_CHECKING:`` too,
  relative imports resolved, ``importlib.import_module("...")`` / ``__import__("...")`` with a literal
  name) points down the table `MAY_IMPORT`; no plugin module imports another plugin module.
- Every built-in plugin module is declared as an entry point (group ``facerep``) in pyproject.toml.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "facerep"

_BASE = {"common", "recipes"}  # leaves: the errors / paths / safe writes, and the recipe files
_CORE = _BASE | {"nn", "geometry", "core"}
_BELOW_PLUGINS = _CORE | {"data", "bench"}
_ABOVE_PLUGINS = _BELOW_PLUGINS | {"world", "train"}
#: Part -> the parts it may import (itself included), bottom to top. ``facerep`` is the package's own
#: ``__init__`` / ``__main__``. Nothing above ``plugins`` imports ``plugins``: it builds components
#: through the registry by name.
MAY_IMPORT: dict[str, set[str]] = {
    "common": {"common"},
    "recipes": {"recipes"},
    "nn": {"common", "nn"},
    "geometry": {"common", "geometry"},
    "core": _CORE,
    "data": _CORE | {"data"},
    "bench": _BELOW_PLUGINS,
    "plugins": _BELOW_PLUGINS | {"plugins"},
    "world": _BELOW_PLUGINS | {"world"},
    "train": _ABOVE_PLUGINS,
    "apps": _ABOVE_PLUGINS | {"apps"},
    "testing": _ABOVE_PLUGINS | {"testing"},
    "cli": _ABOVE_PLUGINS | {"apps", "testing", "cli", "facerep"},
    "facerep": _ABOVE_PLUGINS | {"apps", "testing", "cli", "facerep"},
}


def module_name(path: Path) -> str:
    """``facerep/plugins/losses/shape.py`` -> ``facerep.plugins.losses.shape`` (a package: its folder)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part(module: str) -> str:
    """The part of a facerep module: ``facerep.core.registry`` -> ``core``; ``facerep``, ``facerep.__main__``
    -> ``facerep``."""
    pieces = module.split(".")
    if len(pieces) > 1 and (pieces[1] in MAY_IMPORT or (PACKAGE / pieces[1]).is_dir()):
        return pieces[1]
    return "facerep"  # the package itself, its __main__, or a name of its __init__ (facerep.load)


def _literal_import(node: ast.Call) -> str | None:
    """The module a ``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")`` call
    names, when its first argument is a string literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file at any depth, relative ones resolved
    (``from package import name`` imports ``package``)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.append((node.lineno, origin))
        elif isinstance(node, ast.Call):
            name = _literal_import(node)
            if name is not None:
                if name.startswith("."):
                    dots = len(name) - len(name.lstrip("."))
                    base = package.split(".")[: len(package.split(".")) - dots + 1]
                    name = ".".join(base + [name.lstrip(".")])
                found.append((node.lineno, name))
    return sorted(found)


def layer_violations() -> list[str]:
    """``file:line imports X (part P may not import part Q)`` for every import against `MAY_IMPORT`,
    and ``... (a plugin module may not import another plugin module)``."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        here = part(module)
        where = path.relative_to(ROOT)
        for line, target in imports_of(path):
            if target != "facerep" and not target.startswith("facerep."):
                continue
            there = part(target)
            if there not in MAY_IMPORT[here]:
                problems.append(f"{where}:{line} imports {target} (part {here} may not import part {there})")
            elif here == there == "plugins" and target != module:
                problems.append(
                    f"{where}:{line} imports {target} (a plugin module may not import another plugin module)"
                )
    return problems


def test_every_import_points_down_the_layers() -> None:
    parts = {part(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert parts <= set(MAY_IMPORT), f"parts missing from MAY_IMPORT: {sorted(parts - set(MAY_IMPORT))}"
    problems = layer_violations()
    assert not problems, "imports against the layering (docs/architecture.md):\n" + "\n".join(problems)


def test_the_scan_sees_imports_at_any_depth(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Function-level, relative, TYPE_CHECKING and import_module imports are all reported."""
    fake = tmp_path / "facerep"
    (fake / "core").mkdir(parents=True)
    (fake / "plugins" / "losses").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from facerep.train import loop\n"
        "def f():\n    import facerep.data.sidecars\n"
        "    from ..plugins import losses\n"
        "    return importlib.import_module('facerep.world.cache')\n"
    )
    (fake / "plugins" / "losses" / "a.py").write_text("import numpy\n\nfrom .b import helper\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    problems = layer_violations()
    assert problems == [
        "facerep/core/bad.py:3 imports facerep.train (part core may not import part train)",
        "facerep/core/bad.py:5 imports facerep.data.sidecars (part core may not import part data)",
        "facerep/core/bad.py:6 imports facerep.plugins (part core may not import part plugins)",
        "facerep/core/bad.py:7 imports facerep.world.cache (part core may not import part world)",
        "facerep/plugins/losses/a.py:3 imports facerep.plugins.losses.b "
        "(a plugin module may not import another plugin module)",
    ]


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
