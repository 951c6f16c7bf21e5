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

from facerep.common.errors import RecipeError, did_you_mean

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
)

_DIRECTIVES = ("extends", "unset")

#: A dataset node's ``root`` that means "the synthetic world of ``data.world``" (generated and cached).
BUILTIN_ROOT = "builtin"


#: Deepest nesting of mappings and lists a recipe (or a ``--set`` value) may have.
MAX_NESTING = 64
#: Largest recipe file read, in bytes (recipes are a few kilobytes of text).
MAX_RECIPE_BYTES = 1 << 20
#: Longest ``extends`` chain (child, parent, grandparent, ...).
MAX_EXTENDS_DEPTH = 32

_TAG = "tag:yaml.org,2002:"
#: Tags a recipe's scalars may carry (implicitly or written out as ``!!int`` and so on).
_SCALAR_TAGS = frozenset(f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null"))
_RECIPE_CONTENTS = "recipes hold plain mappings, lists, strings, numbers, true/false and null"


class RefusedYAML(yaml.MarkedYAMLError):
    """YAML that is valid but that a recipe may not use (anchors, aliases, deep nesting).

    Attributes:
        address: dotted path of the key it was found under ("" at the root).
    """

    def __init__(self, problem: str, mark: yaml.Mark, address: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.address = address


_ALIASES = "anchors and aliases are not allowed in recipes (share settings with 'extends' or 'stages')"


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats the YAML 1.2 way (``1e-4`` is a number, not a string).

    Dates stay strings (``2024-05-01``), and composing refuses anchors and aliases (``&a`` / ``*a``: a
    few lines of aliases of aliases expand to gigabytes; recipes share settings with ``extends`` and
    ``stages``) and nesting deeper than `MAX_NESTING`.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._keys: list[str] = []  # the key path of the node being composed

    def _refuse(self, problem: str, mark: yaml.Mark) -> RefusedYAML:
        keys = self._keys
        address = ".".join(keys) if len(keys) <= 8 else ".".join(keys[:4]) + "..." + ".".join(keys[-2:])
        return RefusedYAML(problem, mark, address)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        label = index.value if isinstance(index, yaml.ScalarNode) else None if index is None else str(index)
        if label is not None:
            self._keys.append(str(label))
        try:
            if isinstance(event, yaml.AliasEvent):
                raise self._refuse(f"alias '*{event.anchor}': {_ALIASES}", event.start_mark)
            if getattr(event, "anchor", None) is not None:
                raise self._refuse(f"anchor '&{event.anchor}': {_ALIASES}", event.start_mark)
            if len(self._keys) > MAX_NESTING:
                raise self._refuse(
                    f"mappings and lists nested more than {MAX_NESTING} levels deep", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            if label is not None:
                self._keys.pop()


# YAML 1.1's implicit dates would become datetime objects, which no recipe value is (and which run
# folders' JSON metadata cannot hold): drop that resolver, so ``2024-05-01`` stays a string.
RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != f"{_TAG}timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
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


def _compose(text: str, where: str, *, in_file: bool = True) -> yaml.Node | None:
    """YAML text -> one composed node (None when empty); every problem is a `RecipeError` at its line.

    `where` names the text in errors: a file path (`in_file`: lines and keys are added) or e.g. ``--set``.
    """
    loader = None
    try:
        loader = RecipeLoader(text)
        return loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # a control character, or similar
        line = text[: exc.position].count("\n") + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise RecipeError(
            f"invalid YAML: character {char} cannot appear in a recipe ({exc.reason})",
            where=f"{where}:{line}" if in_file else where,
            address=_key_at_line(text, line) if in_file else None,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        if context and problem.startswith("but "):  # "expected a single document ... but found another"
            problem = f"{context} {problem}"
        refused = isinstance(exc, RefusedYAML)
        raise RecipeError(
            problem if refused else f"invalid YAML: {problem}",
            where=f"{where}:{mark.line + 1}" if mark and in_file else where,
            address=(exc.address or None) if refused else None,
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _key_at_line(text: str, line: int) -> str | None:
    """The dotted key whose value starts on `line` of recipe `text` (best effort, for error messages)."""
    text = yaml.reader.Reader.NON_PRINTABLE.sub(" ", text)
    try:
        node = _compose(text, "", in_file=False)
        origins: dict[Path_, str] = {}
        if node is not None:
            _located(node, "", (), origins, RecipeLoader(""))
    except RecipeError:
        return None
    found = [p for p, w in origins.items() if p and w == f":{line}"]
    return ".".join(max(found, key=len)) if found else None


def parse_value(text: str, *, where: str = "--set", address: str | None = None) -> Any:
    """A command-line value parsed as YAML with `RecipeLoader` (``5e-4`` -> 0.0005), under the same
    rules as a recipe file; a problem is a `RecipeError` naming `where`."""
    try:
        node = _compose(text, where, in_file=False)
        return None if node is None else _located(node, where, (), {}, RecipeLoader(""), lines=False)
    except RecipeError as exc:
        raise RecipeError(exc.message, where=where, address=address) from None


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
        try:
            if c.is_file():
                return c
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            continue
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


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _scalar_value(node: yaml.ScalarNode, where: str, address: str | None, loader: Any) -> Any:
    if node.tag == f"{_TAG}merge":
        raise RecipeError(
            "YAML merge keys ('<<') are not supported in recipes (use 'extends' or 'stages')",
            where=where,
            address=address,
        )
    if node.tag == f"{_TAG}value":  # a lone "=" is text
        return node.value
    if node.tag not in _SCALAR_TAGS:
        raise RecipeError(
            f"unsupported YAML tag {_tag_name(node.tag)!r}: {_RECIPE_CONTENTS}", where=where, address=address
        )
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        problem = getattr(exc, "problem", None) or exc
        raise RecipeError(
            f"cannot read {node.value!r} as {_tag_name(node.tag)} ({problem})", where=where, address=address
        ) from None


def _located(
    node: yaml.Node, where: str, path: Path_, origins: dict[Path_, str], loader: Any, *, lines: bool = True
) -> Any:
    """Turn a composed YAML node into Python values, recording "file:line" of every path.

    Only plain mappings (string keys), lists and str / int / float / bool / null scalars are accepted:
    any other tag (``!custom``, ``!!set``, ``!!binary``, on a scalar, list or mapping) is a `RecipeError`
    at its line. With `lines` false, `where` is used as is (a ``--set`` value).
    """

    def at(n: yaml.Node) -> str:
        return f"{where}:{n.start_mark.line + 1}" if lines else where

    address = ".".join(path) or None
    origins[path] = at(node)
    if isinstance(node, yaml.MappingNode):
        if node.tag != f"{_TAG}map":
            raise RecipeError(
                f"unsupported YAML tag {_tag_name(node.tag)!r} on a mapping: {_RECIPE_CONTENTS}",
                where=at(node),
                address=address,
            )
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "mapping" if isinstance(key_node, yaml.MappingNode) else "list"
                raise RecipeError(
                    f"a key must be a plain name, not a {kind}", where=at(key_node), address=address
                )
            key = _scalar_value(key_node, at(key_node), address, loader)
            if key is None or key == "":
                raise RecipeError("empty key", where=at(key_node), address=address)
            if not isinstance(key, str):  # a number or true/false used as a name: keep it as written
                key = key_node.value
            if key in out:
                raise RecipeError(
                    f"duplicate key {key!r}", where=at(key_node), address=".".join((*path, key))
                )
            out[key] = _located(value_node, where, (*path, key), origins, loader, lines=lines)
            origins[(*path, key)] = at(key_node)
            if key == "_replace_" and not isinstance(out[key], bool):
                raise RecipeError(
                    f"'_replace_' must be true or false, got {out[key]!r}",
                    where=at(key_node),
                    address=".".join((*path, key)),
                )
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != f"{_TAG}seq":
            raise RecipeError(
                f"unsupported YAML tag {_tag_name(node.tag)!r} on a list: {_RECIPE_CONTENTS}",
                where=at(node),
                address=address,
            )
        return [
            _located(v, where, (*path, str(i)), origins, loader, lines=lines)
            for i, v in enumerate(node.value)
        ]
    return _scalar_value(node, at(node), address, loader)


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[Path_, str]]:
    """Read one YAML file: (mapping, origins) where origins maps key paths to "file:line".

    The file must be UTF-8 text of at most `MAX_RECIPE_BYTES`; see `RecipeLoader` and `_located` for
    what its YAML may hold. Every problem is a `RecipeError` naming the file and line.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        raise RecipeError(f"cannot read recipe: {exc.strerror or exc}", where=str(path)) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"the file is larger than {MAX_RECIPE_BYTES >> 20} MiB; a recipe is a small text file",
            where=str(path),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} is not valid UTF-8 "
            "(save the recipe as UTF-8)",
            where=f"{path}:{line}",
            address=_key_at_line(raw.decode("utf-8", errors="replace"), line),
        ) from None
    node = _compose(text, str(path))
    if node is None:
        return {}, {}
    origins: dict[Path_, str] = {}
    data = _located(node, str(path), (), origins, RecipeLoader(""))
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
    if len(parts) > MAX_NESTING:
        raise RecipeError(f"key path {address[:60]!r}... is more than {MAX_NESTING} keys deep")
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
    data: dict[str, Any],
    origins: dict[Path_, str],
    address: str,
    *,
    where: str | None = None,
    removed: dict[Path_, str] | None = None,
) -> None:
    """Delete the key at dotted `address`; a missing key is an error with a suggestion. `removed`, when
    given, records `where` as the place the key was removed (see `Recipe.removed`)."""
    try:
        path = _split(address)
    except RecipeError as exc:
        raise RecipeError(exc.message, where=where) from None
    parent = _get_parent(data, path, create=False, address=address, where=where)
    if path[-1] not in parent:
        raise RecipeError(
            f"cannot unset {address!r}: no such key{did_you_mean(path[-1], parent.keys())}",
            where=where,
            address=address,
        )
    del parent[path[-1]]
    _drop_origins(origins, path)
    if removed is not None and where is not None:
        removed[path] = where


def set_path(
    data: dict[str, Any], origins: dict[Path_, str], assignment: str, *, where: str = "--set"
) -> None:
    """Apply ``a.b=value`` (key must exist) or ``+a.b=value`` (adds the key); value parsed as YAML.

    Errors and the value's origin name the whole assignment (``--set a.b=value``).
    """
    if "=" not in assignment:
        raise RecipeError(f"override {assignment!r} must look like key.path=value", where=where)
    located = f"{where} {assignment}"
    address, raw = assignment.split("=", 1)
    address = address.strip()
    add = address.startswith("+")
    if add:
        address = address[1:]
    try:
        path = _split(address)
    except RecipeError as exc:
        raise RecipeError(exc.message, where=located) from None
    value = parse_value(raw, where=located, address=address) if raw.strip() else None
    parent = _get_parent(data, path, create=add, address=address, where=located)
    if not add and path[-1] not in parent:
        raise RecipeError(
            f"no key {path[-1]!r} to override{did_you_mean(path[-1], parent.keys())}; "
            f"use '+{address}=...' to add a new key",
            where=located,
            address=address,
        )
    if add and path[-1] in parent:
        raise RecipeError(
            f"key {address!r} exists; drop the '+' to override it", where=located, address=address
        )
    _drop_origins(origins, path)
    parent[path[-1]] = value
    origins[path] = located
    for i in range(1, len(path)):  # mappings the '+' created come from the assignment too
        origins.setdefault(path[:i], located)


# -- the resolved recipe -----------------------------------------------------------------------------


@dataclass
class Recipe:
    """A resolved recipe: the merged data and the origin of every value.

    Attributes:
        data: the resolved mapping (``extends`` and ``unset`` applied and removed).
        origins: key path -> "file:line" (or "--set ...") of each value.
        source: the file it was resolved from.
        chain: the files of the ``extends`` chain, child first.
        removed: key path -> "file:line" (or "--unset ...") of the ``unset`` that removed it.
    """

    data: dict[str, Any]
    origins: dict[Path_, str]
    source: Path
    chain: list[Path] = field(default_factory=list)
    removed: dict[Path_, str] = field(default_factory=dict)

    def locate(self, address: str | Path_) -> str | None:
        """ "file:line" of the value at `address`, or of the ``unset`` that removed it, or of its nearest
        located ancestor."""
        path = tuple(address.split(".")) if isinstance(address, str) else tuple(address)
        while path:
            if path in self.origins:
                return self.origins[path]
            if path in self.removed:
                return self.removed[path]
            path = path[:-1]
        return str(self.source)

    def layer(self, where: str | None) -> int:
        """How late the value at `where` (a `locate` result) was set: 0 for the command line, then 1 + the
        index of its file in `chain` (the child first); unknown places last."""
        if where is None:
            return len(self.chain) + 2
        if where.startswith("--"):
            return 0
        head, _, tail = where.rpartition(":")
        file = head if head and tail.isdigit() else where
        files = [str(p) for p in self.chain]
        return 1 + files.index(file) if file in files else len(self.chain) + 1

    def locate_latest(self, address: str) -> str | None:
        """ "file:line" of the value set last at or under `address` (`layer`): where a child recipe or
        ``--set`` changed part of a parent's mapping, that change, not the mapping's first line."""
        prefix = tuple(address.split("."))
        places = [w for p, w in self.origins.items() if p[: len(prefix)] == prefix]
        return min(places, key=self.layer) if places else self.locate(address)

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
            return Recipe(copy.deepcopy(base), origins, self.source, self.chain, dict(self.removed))
        if name not in stages:
            raise RecipeError(
                f"no stage {name!r}{did_you_mean(name, stages)}; stages: {', '.join(stages)}",
                where=self.locate("stages"),
                address="stages",
            )
        data = copy.deepcopy(base)
        override, prefix = stages[name]
        override = dict(override)
        unsets = _unset_list(override.pop("unset", None), self.origins, (*prefix, "unset"))
        override.pop("name", None)
        sub = {p[len(prefix) :]: w for p, w in self.origins.items() if p[: len(prefix)] == prefix}
        merge(data, origins, override, sub)
        data = _strip_replace(data)
        origins = {p: w for p, w in origins.items() if p[-1:] != ("_replace_",)}
        removed = dict(self.removed)
        for i, address in enumerate(unsets):
            where = self.locate((*prefix, "unset", str(i)))
            unset_path(data, origins, address, where=where, removed=removed)
        return Recipe(data, origins, self.source, self.chain, removed)

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
            name = body["name"]
            if not isinstance(name, str) or not name:
                raise RecipeError(
                    f"a stage's 'name' must be text, got {name!r}",
                    where=recipe.locate(("stages", str(i), "name")),
                    address=f"stages.{i}.name",
                )
            if name in result:
                raise RecipeError(
                    f"two stages are named {name!r}",
                    where=recipe.locate(("stages", str(i), "name")),
                    address=f"stages.{i}.name",
                )
            result[name] = (dict(body), ("stages", str(i)))
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


def _unset_list(value: Any, origins: Mapping[Path_, str], path: Path_) -> list[str]:
    """An ``unset`` directive's key paths (None -> []); anything but a list of strings is an error."""
    if value is None:
        return []
    address = ".".join(path)
    if not isinstance(value, list):
        raise RecipeError(
            f"'unset' must be a list of key paths, got {type(value).__name__} {value!r}",
            where=origins.get(path),
            address=address,
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecipeError(
                f"'unset' entries must be key paths (text), got {type(item).__name__} {item!r}",
                where=origins.get((*path, str(i)), origins.get(path)),
                address=f"{address}.{i}",
            )
    return value


def _resolve_file(
    path: Path, seen: tuple[Path, ...]
) -> tuple[dict[str, Any], dict[Path_, str], list[Path], dict[Path_, str]]:
    """(data, origins, extends chain, removed keys) of one recipe file and its parents."""
    real = path.resolve()
    if real in seen:
        chain = " -> ".join(str(p) for p in (*seen, real))
        raise RecipeError(f"'extends' cycle: {chain}", where=str(path))
    if len(seen) >= MAX_EXTENDS_DEPTH:
        raise RecipeError(
            f"'extends' chain longer than {MAX_EXTENDS_DEPTH} recipes (starting at {seen[0]})",
            where=str(path),
        )
    data, origins = load_yaml(path)
    parent_ref = data.pop("extends", None)
    unsets = _unset_list(data.pop("unset", None), origins, ("unset",))
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
        base, base_origins, parent_chain, removed = _resolve_file(parent_path, (*seen, real))
        merge(
            base,
            base_origins,
            data,
            {p: w for p, w in origins.items() if p[:1] not in (("extends",), ("unset",))},
        )
        data, origins, chain = base, base_origins, [path, *parent_chain]
    else:
        origins = {p: w for p, w in origins.items() if p[:1] not in (("extends",), ("unset",))}
        removed = {}
    for i, address in enumerate(unsets):
        where = unset_origins.get(("unset", str(i)), str(path))
        unset_path(data, origins, str(address), where=where, removed=removed)
    return data, origins, chain, removed


def load_recipe(
    ref: str | Path,
    *,
    overrides: list[str] | None = None,
    unsets: list[str] | None = None,
) -> Recipe:
    """Resolve a recipe file or built-in name, apply CLI overrides and unsets, check top-level keys."""
    path = find_recipe(ref)
    data, origins, chain, removed = _resolve_file(path, ())
    # `_replace_` has done its work once merged; inside `stages` it still has to act on the base.
    data = {k: v if k == "stages" else _strip_replace(v) for k, v in data.items()}
    origins = {p: w for p, w in origins.items() if p[-1:] != ("_replace_",) or p[:1] == ("stages",)}
    for address in unsets or []:
        unset_path(data, origins, address, where=f"--unset {address}", removed=removed)
    for assignment in overrides or []:
        set_path(data, origins, assignment)
    recipe = Recipe(data, origins, path, chain, removed)
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
    check_known_keys(stage, address, given or {}, defaults)
    return {**defaults, **(given or {})}


def check_known_keys(stage: Recipe, address: str, node: Mapping[str, Any], keys: Any) -> None:
    """A recipe error at its line for the first key of the mapping `node` (at `address`) not in `keys`,
    suggesting the closest option."""
    for key in node:
        if key not in keys:
            raise RecipeError(
                f"unknown {address} option {key!r}{did_you_mean(key, keys)}; options: {', '.join(keys)}",
                where=stage.locate(f"{address}.{key}"),
                address=f"{address}.{key}",
            )
