"""YAML recipes: inheritance, overrides, stages, validation, and where every value came from.

A recipe is a YAML mapping. Components live in mappings keyed by their role, so every one has an
address (``model.encoder``, ``losses.adversarial``). Resolution rules:

- ``extends: PARENT`` names one parent: a path relative to the recipe (``base.yaml``) or a built-in
  recipe name (``full``). The child is merged onto the parent: mappings merge key by key, lists and
  scalars replace.
- ``_replace_: true`` inside a child mapping replaces the parent's subtree wholesale, so the arguments
  of an old component never leak into a new ``type``.
- ``unset: [losses.adversarial, critic]`` removes paths after the merge; unsetting a path that does
  not exist is an error.
- CLI overrides apply last: ``a.b=value`` must hit an existing key, ``+a.b=value`` adds a key, and
  ``--unset a.b`` deletes one. Values are parsed as YAML.
- ``stages:`` maps stage names (in order) to overrides of the base recipe for that stage, merged with
  the same rules (``_replace_`` and ``unset`` included). A list of mappings with a ``name`` key is
  accepted too.

Every value keeps the ``file:line`` it came from (`Recipe.locate`), which errors and
``facerep recipe show --origin`` report.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from facerep.core.errors import RecipeError, did_you_mean

Path_ = tuple[str, ...]

#: Where components sit in a recipe and their kind; "*" matches any key (one per role).
COMPONENT_SLOTS: dict[str, str] = {
    "face_model": "facemodel",
    "model.encoder": "encoder",
    "model.shape_decoder": "shape_decoder",
    "model.albedo_decoder": "albedo_decoder",
    "renderer": "renderer",
    "critic": "critic",
    "losses.*": "loss",
    "data.sources.*": "dataset",
    "optim.model": "optimizer",
    "optim.critic": "optimizer",
    "bench.*": "benchmark",
}

#: Top-level keys a recipe may have.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "extends",
    "unset",
    "seed",
    "face_model",
    "data",
    "model",
    "renderer",
    "critic",
    "losses",
    "optim",
    "train",
    "stages",
    "bench",
    "output",
)

_DIRECTIVES = ("extends", "unset")


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats the YAML 1.2 way (``1e-4`` is a number, not a string)."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A command-line value parsed as YAML with `RecipeLoader` (``5e-4`` -> 0.0005)."""
    return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - RecipeLoader is a SafeLoader


def builtin_recipe_names() -> list[str]:
    """Names of the recipes shipped inside the package (``full``, ``demo``, ...)."""
    root = resources.files("facerep.recipes")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def find_recipe(ref: str | Path, *, relative_to: Path | None = None) -> Path:
    """Resolve a recipe reference: an existing path, a path relative to `relative_to`, or a built-in name."""
    text = str(ref)
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to / text)
    candidates.append(Path(text))
    for c in candidates:
        if c.is_file():
            return c
    name = Path(text).name
    stem = name.rsplit(".", 1)[0] if name.endswith((".yaml", ".yml")) else name
    if stem in builtin_recipe_names():  # a built-in name, or recipes/NAME.yaml outside the repository
        return Path(str(resources.files("facerep.recipes") / f"{stem}.yaml"))
    raise RecipeError(
        f"recipe {text!r} not found (no such file"
        + (f" relative to {relative_to}" if relative_to else "")
        + f"; built-in recipes: {', '.join(builtin_recipe_names())})"
        + did_you_mean(stem, builtin_recipe_names())
    )


# -- YAML with line numbers --------------------------------------------------------------------------


def _located(node: yaml.Node, where: str, path: Path_, origins: dict[Path_, str], loader: Any) -> Any:
    """Turn a composed YAML node into Python values, recording "file:line" of every path."""
    origins[path] = f"{where}:{node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise RecipeError(f"duplicate key {key!r}", where=f"{where}:{key_node.start_mark.line + 1}")
            out[key] = _located(value_node, where, (*path, key), origins, loader)
            origins[(*path, key)] = f"{where}:{key_node.start_mark.line + 1}"
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_located(v, where, (*path, str(i)), origins, loader) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[Path_, str]]:
    """Read one YAML file: (mapping, origins) where origins maps key paths to "file:line"."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read recipe: {exc}", where=str(path)) from None
    loader = RecipeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RecipeError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    finally:
        loader.dispose()
    if node is None:
        return {}, {}
    origins: dict[Path_, str] = {}
    loader = RecipeLoader("")
    data = _located(node, str(path), (), origins, loader)
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be a mapping, got {type(data).__name__}", where=f"{path}:1")
    return data, origins


# -- merging ----------------------------------------------------------------------------------------


def _sub_origins(origins: Mapping[Path_, str], prefix: Path_) -> dict[Path_, str]:
    n = len(prefix)
    return {p: w for p, w in origins.items() if p[:n] == prefix}


def _drop_origins(origins: dict[Path_, str], prefix: Path_) -> None:
    n = len(prefix)
    for p in [p for p in origins if p[:n] == prefix]:
        del origins[p]


def merge(
    base: dict[str, Any],
    base_origins: dict[Path_, str],
    child: Mapping[str, Any],
    child_origins: Mapping[Path_, str],
    prefix: Path_ = (),
) -> None:
    """Merge `child` onto `base` in place (mappings merge, lists and scalars replace, ``_replace_``)."""
    for key, value in child.items():
        path = (*prefix, key)
        replace = isinstance(value, Mapping) and value.get("_replace_") is True
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and not replace:
            if path in child_origins:
                base_origins.setdefault(path, child_origins[path])
            merge(base[key], base_origins, value, child_origins, path)
            continue
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "_replace_"}
        _drop_origins(base_origins, path)
        base[key] = copy.deepcopy(value)
        for p, w in _sub_origins(child_origins, path).items():
            if p[len(path) :] != ("_replace_",):
                base_origins[p] = w


def _strip_replace(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_replace(v) for k, v in data.items() if k != "_replace_"}
    if isinstance(data, list):
        return [_strip_replace(v) for v in data]
    return data


def _split(address: str) -> Path_:
    parts = tuple(address.split("."))
    if not address or any(not p for p in parts):
        raise RecipeError(f"invalid key path {address!r}")
    return parts


def _get_parent(data: dict[str, Any], path: Path_, *, create: bool, address: str, where: str | None) -> dict:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if not isinstance(node, dict):
            raise RecipeError(f"{'.'.join(path[:i])!r} is not a mapping", where=where, address=address)
        if part not in node:
            if create:
                node[part] = {}
            else:
                raise RecipeError(
                    f"no key {part!r} under {'.'.join(path[:i]) or 'the recipe root'}"
                    + did_you_mean(part, node.keys()),
                    where=where,
                    address=address,
                )
        node = node[part]
    if not isinstance(node, dict):
        raise RecipeError(f"{'.'.join(path[:-1])!r} is not a mapping", where=where, address=address)
    return node


def unset_path(
    data: dict[str, Any], origins: dict[Path_, str], address: str, *, where: str | None = None
) -> None:
    """Delete the key at dotted `address`; a missing key is an error with a suggestion."""
    path = _split(address)
    parent = _get_parent(data, path, create=False, address=address, where=where)
    if path[-1] not in parent:
        raise RecipeError(
            f"cannot unset {address!r}: no such key{did_you_mean(path[-1], parent.keys())}",
            where=where,
            address=address,
        )
    del parent[path[-1]]
    _drop_origins(origins, path)


def set_path(
    data: dict[str, Any], origins: dict[Path_, str], assignment: str, *, where: str = "--set"
) -> None:
    """Apply ``a.b=value`` (key must exist) or ``+a.b=value`` (adds the key); value parsed as YAML."""
    if "=" not in assignment:
        raise RecipeError(f"override {assignment!r} must look like key.path=value", where=where)
    address, raw = assignment.split("=", 1)
    address = address.strip()
    add = address.startswith("+")
    if add:
        address = address[1:]
    path = _split(address)
    try:
        value = parse_value(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"value {raw!r} is not valid YAML: {exc}", where=where, address=address) from None
    parent = _get_parent(data, path, create=add, address=address, where=where)
    if not add and path[-1] not in parent:
        raise RecipeError(
            f"no key {path[-1]!r} to override{did_you_mean(path[-1], parent.keys())}; "
            f"use '+{address}=...' to add a new key",
            where=where,
            address=address,
        )
    if add and path[-1] in parent:
        raise RecipeError(
            f"key {address!r} exists; drop the '+' to override it", where=where, address=address
        )
    _drop_origins(origins, path)
    parent[path[-1]] = value
    origins[path] = f"{where} {assignment}"


# -- the resolved recipe -----------------------------------------------------------------------------


@dataclass
class Recipe:
    """A resolved recipe: the merged data and the origin of every value.

    Attributes:
        data: the resolved mapping (``extends`` and ``unset`` applied and removed).
        origins: key path -> "file:line" (or "--set ...") of each value.
        source: the file it was resolved from.
        chain: the files of the ``extends`` chain, child first.
    """

    data: dict[str, Any]
    origins: dict[Path_, str]
    source: Path
    chain: list[Path] = field(default_factory=list)

    def locate(self, address: str | Path_) -> str | None:
        """ "file:line" of the value at `address`, or of its nearest located ancestor."""
        path = tuple(address.split(".")) if isinstance(address, str) else tuple(address)
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return str(self.source)

    def get(self, address: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in address.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.source.stem)

    def stage_names(self) -> list[str]:
        return list(_stage_mapping(self).keys()) or ["main"]

    def stage(self, name: str) -> Recipe:
        """The recipe as it applies in stage `name`: the base merged with that stage's overrides."""
        stages = _stage_mapping(self)
        base = {k: v for k, v in self.data.items() if k != "stages"}
        origins = {p: w for p, w in self.origins.items() if p[:1] != ("stages",)}
        if not stages and name == "main":
            return Recipe(copy.deepcopy(base), origins, self.source, self.chain)
        if name not in stages:
            raise RecipeError(
                f"no stage {name!r}{did_you_mean(name, stages)}; stages: {', '.join(stages)}",
                where=self.locate("stages"),
                address="stages",
            )
        data = copy.deepcopy(base)
        override, prefix = stages[name]
        override = dict(override)
        unsets = override.pop("unset", []) or []
        override.pop("name", None)
        sub = {p[len(prefix) :]: w for p, w in self.origins.items() if p[: len(prefix)] == prefix}
        merge(data, origins, override, sub)
        data = _strip_replace(data)
        origins = {p: w for p, w in origins.items() if p[-1:] != ("_replace_",)}
        for address in unsets:
            unset_path(data, origins, address, where=self.locate((*prefix, "unset")))
        return Recipe(data, origins, self.source, self.chain)

    def stages(self) -> Iterator[tuple[str, Recipe]]:
        for name in self.stage_names():
            yield name, self.stage(name)

    def to_yaml(self, *, with_origins: bool = False) -> str:
        """The resolved recipe as YAML; with origins, each line ends with ``# file:line``."""
        if not with_origins:
            return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False)
        out = io.StringIO()
        _dump_with_origins(self.data, self.origins, (), 0, out)
        return out.getvalue()


def _stage_mapping(recipe: Recipe) -> dict[str, tuple[dict[str, Any], Path_]]:
    stages = recipe.data.get("stages")
    if stages is None:
        return {}
    if isinstance(stages, Mapping):
        result = {}
        for name, body in stages.items():
            if not isinstance(body, Mapping):
                raise RecipeError(
                    f"stage {name!r} must be a mapping of overrides",
                    where=recipe.locate(("stages", name)),
                    address=f"stages.{name}",
                )
            result[name] = (dict(body), ("stages", name))
        return result
    if isinstance(stages, list):
        result = {}
        for i, body in enumerate(stages):
            if not isinstance(body, Mapping) or "name" not in body:
                raise RecipeError(
                    "each entry of a 'stages' list must be a mapping with a 'name'",
                    where=recipe.locate(("stages", str(i))),
                    address=f"stages.{i}",
                )
            result[str(body["name"])] = (dict(body), ("stages", str(i)))
        return result
    raise RecipeError("'stages' must be a mapping of stage name -> overrides", where=recipe.locate("stages"))


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _dump_with_origins(
    data: Any, origins: Mapping[Path_, str], path: Path_, indent: int, out: io.StringIO
) -> None:
    pad = "  " * indent
    items = data.items() if isinstance(data, dict) else ((str(i), v) for i, v in enumerate(data))
    for key, value in items:
        p = (*path, str(key))
        where = origins.get(p, "")
        label = f"{pad}- " if isinstance(data, list) else f"{pad}{key}:"
        if isinstance(value, dict | list) and value:
            out.write(f"{label}{'':<1}".rstrip() + (f"  # {where}" if where else "") + "\n")
            _dump_with_origins(value, origins, p, indent + 1, out)
        else:
            line = f"{label} {_scalar(value)}" if not isinstance(data, list) else f"{label}{_scalar(value)}"
            out.write(f"{line:<60}  # {where}\n" if where else f"{line}\n")


def _resolve_file(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[Path_, str], list[Path]]:
    real = path.resolve()
    if real in seen:
        chain = " -> ".join(str(p) for p in (*seen, real))
        raise RecipeError(f"'extends' cycle: {chain}", where=str(path))
    data, origins = load_yaml(path)
    parent_ref = data.pop("extends", None)
    unsets = data.pop("unset", None) or []
    if not isinstance(unsets, list):
        raise RecipeError(
            "'unset' must be a list of key paths", where=origins.get(("unset",)), address="unset"
        )
    unset_origins = {p: w for p, w in origins.items() if p[:1] == ("unset",)}
    chain = [path]
    if parent_ref is not None:
        if not isinstance(parent_ref, str):
            raise RecipeError(
                "'extends' must name one parent recipe", where=origins.get(("extends",)), address="extends"
            )
        try:
            parent_path = find_recipe(parent_ref, relative_to=path.parent)
        except RecipeError as exc:
            raise RecipeError(exc.message, where=origins.get(("extends",)), address="extends") from None
        base, base_origins, parent_chain = _resolve_file(parent_path, (*seen, real))
        merge(
            base,
            base_origins,
            data,
            {p: w for p, w in origins.items() if p[:1] not in (("extends",), ("unset",))},
        )
        data, origins, chain = base, base_origins, [path, *parent_chain]
    else:
        origins = {p: w for p, w in origins.items() if p[:1] not in (("extends",), ("unset",))}
    for i, address in enumerate(unsets):
        unset_path(data, origins, str(address), where=unset_origins.get(("unset", str(i)), str(path)))
    return data, origins, chain


def load_recipe(
    ref: str | Path,
    *,
    overrides: list[str] | None = None,
    unsets: list[str] | None = None,
) -> Recipe:
    """Resolve a recipe file or built-in name, apply CLI overrides and unsets, check top-level keys."""
    path = find_recipe(ref)
    data, origins, chain = _resolve_file(path, ())
    # `_replace_` has done its work once merged; inside `stages` it still has to act on the base.
    data = {k: v if k == "stages" else _strip_replace(v) for k, v in data.items()}
    origins = {p: w for p, w in origins.items() if p[-1:] != ("_replace_",) or p[:1] == ("stages",)}
    for address in unsets or []:
        unset_path(data, origins, address, where="--unset")
    for assignment in overrides or []:
        set_path(data, origins, assignment)
    recipe = Recipe(data, origins, path, chain)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError(
                f"unknown top-level key {key!r}{did_you_mean(key, TOP_LEVEL_KEYS)}; "
                f"valid keys: {', '.join(TOP_LEVEL_KEYS)}",
                where=recipe.locate((key,)),
                address=key,
            )
    return recipe


# -- validation --------------------------------------------------------------------------------------


def component_nodes(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(address, kind, node) for every component slot filled in a resolved recipe mapping."""
    for pattern, kind in COMPONENT_SLOTS.items():
        parts = pattern.split(".")
        yield from _match(data, parts, (), kind)


def _match(node: Any, parts: list[str], path: Path_, kind: str) -> Iterator[tuple[str, str, Any]]:
    if not parts:
        yield ".".join(path), kind, node
        return
    if not isinstance(node, Mapping):
        return
    head, rest = parts[0], parts[1:]
    keys = list(node.keys()) if head == "*" else ([head] if head in node else [])
    for key in keys:
        yield from _match(node[key], rest, (*path, key), kind)


def validate(recipe: Recipe, registry: Any | None = None) -> list[tuple[str, str, str]]:
    """Check every component of every stage against the registry.

    Returns (stage, address, "kind:name") for each component; raises `RecipeError` on the first problem.
    """
    if registry is None:
        from facerep.core.registry import get_registry

        registry = get_registry()
    checked = []
    for stage_name, stage in recipe.stages():
        for address, kind, node in component_nodes(stage.data):
            comp = registry.check(kind, node, address=address, locate=stage.locate)
            checked.append((stage_name, address, f"{kind}:{comp.name}"))
    return checked


def flatten(data: Any, prefix: Path_ = ()) -> dict[str, Any]:
    """Dotted path -> leaf value (empty mappings and lists are leaves)."""
    if isinstance(data, Mapping) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, (*prefix, str(k))))
        return out
    return {".".join(prefix): data}


def diff(a: Recipe, b: Recipe) -> list[tuple[str, str, Any, Any]]:
    """(address, change, value in a, value in b) for every leaf that differs; change is +, - or ~."""
    fa, fb = flatten(a.data), flatten(b.data)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        if key not in fb:
            rows.append((key, "-", fa[key], None))
        elif key not in fa:
            rows.append((key, "+", None, fb[key]))
        elif fa[key] != fb[key]:
            rows.append((key, "~", fa[key], fb[key]))
    return rows


def options_with_defaults(
    stage: Recipe, address: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """`defaults` updated with the `given` mapping at `address` (e.g. ``train``); an unknown key is a
    recipe error at its line that suggests the closest option."""
    config = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise RecipeError(
                f"unknown {address} option {key!r}{did_you_mean(key, defaults)}; options: "
                + ", ".join(defaults),
                where=stage.locate(f"{address}.{key}"),
                address=f"{address}.{key}",
            )
        config[key] = value
    return config
