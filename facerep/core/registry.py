"""The component registry: one pluggy hook, built-in and third-party plugins alike.

A plugin is any module or object with a ``facerep_components`` function marked with `hookimpl`
that returns a list of `Component` records::

    from facerep.core.registry import Component, hookimpl

    @hookimpl
    def facerep_components():
        return [Component("shape_decoder", "spiral", SpiralDecoder, "spiral-convolution decoder")]

Every plugin is found through an entry point in the group ``facerep`` that points at its plugin
module, facerep's own (the modules under ``facerep/plugins``, declared in its pyproject.toml) exactly
as a third party's::

    [project.entry-points.facerep]
    my_plugin = "my_package.plugin"

facerep's own are registered first (sorted by name); the registry imports no plugin package itself.

A recipe node ``{type: NAME, **kwargs}`` is turned into an object by `Registry.build`, which checks
the kwargs against the factory's signature first. Factory parameters named like the run's shared
objects (see `facerep.core.interfaces.CONTEXT_NAMES`, plus ``params`` for optimizers) are injected
from the build context, never read from the recipe.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import math
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from facerep.common.errors import FacerepError, RecipeError, did_you_mean
from facerep.core.interfaces import CONTEXT_NAMES, KINDS

PROJECT = "facerep"
ENTRY_POINT_GROUP = "facerep"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Parameter names that are injected from the build context rather than read from a recipe.
INJECTED_NAMES: frozenset[str] = frozenset(CONTEXT_NAMES) | {"params"}
#: Keys of a recipe node that are not factory arguments.
NODE_META_KEYS: frozenset[str] = frozenset({"type", "_replace_"})


class _Spec:
    @hookspec
    def facerep_components(self) -> list[Component]:  # pragma: no cover - specification only
        """Return the components this plugin provides."""


@dataclass
class Component:
    """A registered component.

    Attributes:
        kind: one of `facerep.core.interfaces.KINDS` (third parties may add kinds).
        name: the recipe's ``type`` value.
        factory: class or function called with the node's arguments (and injected context).
        summary: one line shown by ``facerep plugins``.
        package: distribution that provided it ("facerep" for built-ins); set by the registry.
        version: that distribution's version; set by the registry.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str = ""
    package: str = ""
    version: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.package}:{self.name}"

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The factory's parameters, without ``self``."""
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        params = dict(inspect.signature(target).parameters)
        if inspect.isclass(self.factory):
            params.pop(next(iter(params)), None)  # self
        return params

    def recipe_parameters(self) -> dict[str, inspect.Parameter]:
        """Parameters a recipe may set (injected context names excluded)."""
        return {
            n: p
            for n, p in self.parameters().items()
            if n not in INJECTED_NAMES and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def accepts_any_keyword(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in self.parameters().values())


@dataclass
class PluginLoadError:
    """A plugin that could not be imported or whose hook raised."""

    package: str
    plugin: str
    error: str
    traceback: str = field(repr=False, default="")


Locate = Callable[[str], "str | None"]


def _no_location(_: str) -> str | None:
    return None


#: What fixes missing or stale facerep metadata (the entry points that list its built-in plugins).
REINSTALL = (
    "reinstall facerep: `pip install -e .` in its source folder (`make` does it when pyproject.toml changes)"
)


def _is_facerep(dist: importlib.metadata.Distribution) -> bool:
    return re.sub(r"[-_.]+", "-", str(dist.metadata["Name"] or "")).lower() == PROJECT


def builtin_entry_points() -> list[importlib.metadata.EntryPoint]:
    """facerep's own plugin modules: the entry points of its group in facerep's installed metadata
    (pyproject.toml's ``[project.entry-points.facerep]``), sorted by name.

    The first metadata of facerep on ``sys.path`` that declares plugins is used, so an old build's
    ``facerep.egg-info`` left in the source folder (found first when Python runs from there) does not
    hide the installed one.

    Raises:
        FacerepError: facerep's metadata is missing (a source tree that was never installed) or declares
            no plugin (installed before the list existed).
    """
    versions = []
    for dist in importlib.metadata.distributions(name=PROJECT):
        found = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if found:
            return sorted(found, key=lambda ep: ep.name)
        versions.append(dist.version)
    if not versions:
        raise FacerepError(
            "facerep's package metadata is missing, so its built-in plugins cannot be found "
            f"(it runs from a source tree that was never installed); {REINSTALL}"
        )
    raise FacerepError(
        f"facerep's installed metadata ({', '.join(versions)}) declares no built-in plugins (entry point "
        f"group {ENTRY_POINT_GROUP!r}): the install is stale; {REINSTALL}"
    )


class Registry:
    """All components known to this process, keyed by (kind, name).

    Args:
        builtins: register facerep's own plugins (its entry points).
        entry_points: register every other installed package's entry points.
    """

    def __init__(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(_Spec)
        self._import_errors: list[PluginLoadError] = []
        self._hook_errors: list[PluginLoadError] = []
        self._origins: dict[str, tuple[str, str]] = {}  # plugin name -> (package, version)
        self._components: dict[tuple[str, str], list[Component]] = {}
        if builtins:
            self._register_builtins()
        if entry_points:
            self._register_entry_points()
        self.refresh()

    # -- registration -----------------------------------------------------------------------------

    def register(self, plugin: Any, *, name: str | None = None, package: str = "", version: str = "") -> None:
        """Register a plugin object (module or instance) under `package` and refresh the table."""
        registered = self.pm.register(plugin, name=name)
        if registered is None:  # already registered
            return
        self._origins[registered] = (package or "unknown", version)
        self.refresh()

    def _register_builtins(self) -> None:
        for ep in builtin_entry_points():
            try:
                module = ep.load()
            except ModuleNotFoundError as exc:
                if exc.name is None or not ep.module.startswith(exc.name):
                    raise  # a module the plugin imports is missing: facerep's own bug or dependency
                raise FacerepError(
                    f"facerep's installed metadata declares the plugin module {ep.module!r}, which does "
                    f"not exist: the install is stale; {REINSTALL}"
                ) from None
            plugin_name = self.pm.register(module, name=ep.name)
            dist = getattr(ep, "dist", None)
            self._origins[plugin_name] = (PROJECT, dist.version if dist is not None else "")

    def _register_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            if dist is not None and _is_facerep(dist):
                continue  # facerep's own: registered (or left out) by _register_builtins
            package = dist.metadata["Name"] if dist is not None else ep.value.split(":")[0]
            version = dist.version if dist is not None else ""
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the registry
                self._import_errors.append(
                    PluginLoadError(package, ep.name, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                )
                continue
            plugin_name = self.pm.register(plugin, name=ep.name)
            if plugin_name is not None:
                self._origins[plugin_name] = (package, version)

    def refresh(self) -> None:
        """Call every plugin's hook and rebuild the component table."""
        table: dict[tuple[str, str], list[Component]] = {}
        errors: list[PluginLoadError] = []
        for impl in self.pm.hook.facerep_components.get_hookimpls():
            package, version = self._origins.get(impl.plugin_name, ("unknown", ""))
            try:
                records = list(impl.function())
            except Exception as exc:
                err = PluginLoadError(
                    package, impl.plugin_name, f"{type(exc).__name__}: {exc}", traceback.format_exc()
                )
                errors.append(err)
                continue
            for record in records:
                comp = Component(record.kind, record.name, record.factory, record.summary, package, version)
                table.setdefault((comp.kind, comp.name), []).append(comp)
        self._hook_errors = errors
        self._components = table

    @property
    def load_errors(self) -> list[PluginLoadError]:
        """Plugins that failed to import or whose hook raised; the rest of the registry works."""
        return self._import_errors + self._hook_errors

    # -- lookup -----------------------------------------------------------------------------------

    def kinds(self) -> list[str]:
        extra = sorted({k for k, _ in self._components} - set(KINDS))
        return list(KINDS) + extra

    def components(self, kind: str | None = None) -> list[Component]:
        """Every component (of one kind), sorted by kind order then name."""
        order = {k: i for i, k in enumerate(self.kinds())}
        found = [c for comps in self._components.values() for c in comps if kind in (None, c.kind)]
        return sorted(found, key=lambda c: (order.get(c.kind, 99), c.name, c.package))

    def names(self, kind: str) -> list[str]:
        return sorted({name for k, name in self._components if k == kind})

    def get(self, kind: str, name: str, *, where: str | None = None, address: str | None = None) -> Component:
        """The component `name` of `kind`; ``package:name`` picks one of several with one name."""
        if kind not in self.kinds():
            raise RecipeError(
                f"unknown component kind {kind!r}; kinds are {', '.join(self.kinds())}"
                + did_you_mean(kind, self.kinds()),
                where=where,
                address=address,
            )
        if not isinstance(name, str) or not name:
            raise RecipeError(
                f"the {kind} needs a 'type' naming one of: {', '.join(self.names(kind))}",
                where=where,
                address=address,
            )
        package = None
        short = name
        if ":" in name:
            package, short = name.split(":", 1)
        candidates = self._components.get((kind, short), [])
        if package is not None:
            candidates = [c for c in candidates if c.package == package]
        if not candidates:
            valid = self.names(kind)
            raise RecipeError(
                f"no {kind} named {name!r}{did_you_mean(short, valid)}; valid {kind} names: "
                + (", ".join(valid) if valid else "(none registered)"),
                where=where,
                address=address,
            )
        if len(candidates) > 1:
            origins = ", ".join(sorted(c.package for c in candidates))
            raise RecipeError(
                f"{len(candidates)} plugins provide a {kind} named {short!r} (packages: {origins}); "
                f"choose one with 'type: PACKAGE:{short}', e.g. {candidates[0].qualified_name!r}",
                where=where,
                address=address,
            )
        return candidates[0]

    # -- building ---------------------------------------------------------------------------------

    def check(
        self, kind: str, node: Mapping[str, Any], *, address: str = "", locate: Locate = _no_location
    ) -> Component:
        """Validate a recipe node against the registry without building it; return its component."""
        if not isinstance(node, Mapping):
            raise RecipeError(
                f"a {kind} must be a mapping with a 'type' key, got {type(node).__name__} {node!r}",
                where=locate(address),
                address=address,
            )
        if "type" not in node:
            raise RecipeError(
                f"the {kind} has no 'type'; valid {kind} names: {', '.join(self.names(kind))}",
                where=locate(address),
                address=address,
            )
        type_address = f"{address}.type" if address else "type"
        comp = self.get(kind, node["type"], where=locate(type_address), address=type_address)
        allowed = comp.recipe_parameters()
        for key in node:
            if key in NODE_META_KEYS:
                continue
            key_address = f"{address}.{key}" if address else key
            if key in INJECTED_NAMES and key in comp.parameters():
                raise RecipeError(
                    f"{key!r} of {kind} {comp.name!r} is provided by the run and cannot be set in a recipe",
                    where=locate(key_address),
                    address=key_address,
                )
            if key not in allowed and not comp.accepts_any_keyword():
                names = sorted(allowed)
                raise RecipeError(
                    f"{kind} {comp.name!r} has no argument {key!r}{did_you_mean(key, names)}; "
                    f"its arguments: {', '.join(names) if names else '(none)'}",
                    where=locate(key_address),
                    address=key_address,
                )
            expected = argument_mismatch(allowed[key], node[key]) if key in allowed else None
            if expected is not None:
                raise RecipeError(
                    f"{kind} {comp.name!r} argument {key!r} must be {expected}, got {_shown(node[key])}",
                    where=locate(key_address),
                    address=key_address,
                )
        missing = [n for n, p in allowed.items() if p.default is inspect.Parameter.empty and n not in node]
        if missing:
            raise RecipeError(
                f"{kind} {comp.name!r} needs argument(s) {', '.join(missing)}",
                where=locate(address),
                address=address,
            )
        return comp

    def build(
        self,
        kind: str,
        node: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
        *,
        address: str = "",
        locate: Locate = _no_location,
    ) -> Any:
        """Build the component a recipe node names; inject the context its factory asks for."""
        comp = self.check(kind, node, address=address, locate=locate)
        kwargs = {k: v for k, v in node.items() if k not in NODE_META_KEYS}
        context = context or {}
        for name, param in comp.parameters().items():
            if name in INJECTED_NAMES:
                if name in context:
                    kwargs[name] = context[name]
                elif param.default is inspect.Parameter.empty:
                    raise RecipeError(
                        f"{kind} {comp.name!r} needs {name!r} from the run, which this build did not provide",
                        where=locate(address),
                        address=address,
                    )
        try:
            return comp.factory(**kwargs)
        except FACTORY_ERRORS as exc:
            error = factory_error(exc, kind, comp.name, node, address=address, locate=locate)
            if error is exc:
                raise
            raise error from exc


#: Exceptions a factory raises for arguments it refuses (a bad value, a missing or unreadable file);
#: `Registry.build` reports them as recipe errors at the argument's line.
FACTORY_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    OSError,
    RuntimeError,  # torch's, e.g. a negative layer width
    FacerepError,
)


def factory_error(
    exc: BaseException, kind: str, name: str, node: Mapping[str, Any], *, address: str, locate: Locate
) -> RecipeError:
    """A factory's exception as a `RecipeError` at the line of the argument it is about.

    The argument is the one whose name (or, failing that, whose text value) the message mentions; when
    none or several do, the error points at the component node. A `RecipeError` that already names a
    place is returned unchanged. The result is also an instance of the factory's exception class.
    """
    if isinstance(exc, RecipeError):
        if exc.where is not None:
            return exc
        message = exc.message
    else:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in message:
            message = f"{message}: {exc.filename}"
    blamed = _blamed_argument(message, node, address, locate)
    key_address = (f"{address}.{blamed}" if address else blamed) if blamed else address
    return _recipe_error_class(type(exc))(
        f"{kind} {name!r} refused its arguments: {message}",
        where=locate(key_address),
        address=key_address or None,
    )


def _blamed_argument(message: str, node: Mapping[str, Any], address: str, locate: Locate) -> str | None:
    """The argument of `node` a factory's error `message` is most likely about, or None.

    The first rule that singles out one argument wins: the message names it (as a word); of the
    arguments it names, it is the one whose value it quotes too; it is the one argument whose value the
    message quotes. Otherwise, of those candidates (or of all arguments when there are none), the one
    set last: by ``--set``, else in the recipe file nearest the child of the ``extends`` chain.
    """
    arguments = [k for k in node if k not in NODE_META_KEYS]

    def word(text: str) -> str:
        return rf"(?<![\w.-]){re.escape(text)}(?![\w-]|\.\d)"

    def quoted(key: str) -> bool:  # the value, or an item of a list value, appears in the message
        values = node[key] if isinstance(node[key], list | tuple) else [node[key]]
        for value in values:
            if isinstance(value, str) and len(value) > 2 and value in message:
                return True
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and re.search(word(str(value)), message):
                return True
        return False

    named = [k for k in arguments if re.search(word(k), message)]
    named_quoted = [k for k in named if quoted(k)]
    all_quoted = [k for k in arguments if quoted(k)]
    for candidates in (named, named_quoted, all_quoted):
        if len(candidates) == 1:
            return candidates[0]
    candidates = named_quoted or all_quoted or named or arguments
    ranks = {k: _layer(locate(f"{address}.{k}" if address else k), locate) for k in candidates}
    first = [k for k in candidates if ranks[k] == min(ranks.values(), default=0)]
    return first[0] if len(first) == 1 else None


def _layer(where: str | None, locate: Locate) -> int:
    """How late a value was set: `facerep.core.recipe.Recipe.layer` when `locate` is a recipe's (0 for
    ``--set``, then the files of the ``extends`` chain, child first), else 0 for ``--set`` and 1."""
    recipe = getattr(locate, "__self__", None)
    if hasattr(recipe, "layer"):
        return int(recipe.layer(where))
    return 0 if where is not None and where.startswith("--") else 1


_RECIPE_ERROR_CLASSES: dict[type, type[RecipeError]] = {}


def _recipe_error_class(cls: type[BaseException]) -> type[RecipeError]:
    """A `RecipeError` that is also a `cls` (a `ValueError`, a `DataError` ...), so that code catching
    the factory's own exception class still catches it; plain `RecipeError` when they cannot combine."""
    if issubclass(cls, RecipeError):
        return RecipeError
    if cls not in _RECIPE_ERROR_CLASSES:
        try:
            combined = type(f"Recipe{cls.__name__}", (RecipeError, cls), {"__str__": BaseException.__str__})
        except TypeError:  # incompatible layouts or metaclasses
            combined = RecipeError
        _RECIPE_ERROR_CLASSES[cls] = combined
    return _RECIPE_ERROR_CLASSES[cls]


# -- argument types, from the factory's annotations ---------------------------------------------------

_PATH_NAMES = frozenset({"Path", "PathLike", "os.PathLike", "pathlib.Path", "StrPath"})
_SEQUENCE_NAMES = frozenset({"Sequence", "list", "List", "Iterable", "Collection"})


def argument_mismatch(param: inspect.Parameter, value: Any) -> str | None:
    """What a factory parameter's annotation expects, when `value` (from a recipe) is not that; else None.

    Understands ``int``, ``float``, ``bool``, ``str``, ``Path``, ``None``, unions (``|``, ``Optional``),
    ``Sequence[...]`` / ``list[...]``, ``tuple[...]`` and ``Literal[...]``, written as text (``from
    __future__ import annotations``) or as objects. Anything else is not checked. A recipe's numbers
    are YAML's: an integer is a valid ``float``, ``true`` is not a valid ``int``.
    """
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    if isinstance(value, float) and not math.isfinite(value) and _matches(text, 1.0):
        return "a finite number"  # no argument means nan or infinity (a weight, a rate, a size)
    return None if _matches(text, value) is not False else _describe(text)


def _split_top(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _head_args(text: str) -> tuple[str, list[str] | None]:
    """``"tuple[float, float]"`` -> ("tuple", ["float", "float"]); a bare name has args None."""
    text = text.strip()
    if text.endswith("]") and "[" in text:
        head, inner = text.split("[", 1)
        return head.strip().removeprefix("typing.").removeprefix("collections.abc."), _split_top(
            inner[:-1], ","
        )
    return text.removeprefix("typing.").removeprefix("collections.abc."), None


def _matches(text: str, value: Any) -> bool | None:
    """True / False when `value` does / does not fit annotation `text`; None when `text` is not understood."""
    alternatives = _split_top(text, "|")
    if len(alternatives) > 1:
        results = [_matches(a, value) for a in alternatives]
        return True if True in results else None if None in results else False
    head, args = _head_args(text)
    if head in ("Optional", "Union") and args:
        return _matches(" | ".join(args + (["None"] if head == "Optional" else [])), value)
    if head in ("None", "NoneType"):
        return value is None
    if head == "bool":
        return isinstance(value, bool)
    if head == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if head == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if head == "str" or head in _PATH_NAMES:
        return isinstance(value, str)
    if head == "Literal" and args:
        try:
            choices = [ast.literal_eval(a) for a in args]
        except (ValueError, SyntaxError):
            return None
        return any(value == c and type(value) is type(c) for c in choices)
    if head in _SEQUENCE_NAMES or head in ("tuple", "Tuple"):
        if not isinstance(value, list | tuple):  # a recipe's lists; tuples from nodes built in code
            return False
        if not args:
            return True
        if head in ("tuple", "Tuple") and not (len(args) == 2 and args[1] == "..."):
            if len(value) != len(args):
                return False
            results = [_matches(a, v) for a, v in zip(args, value, strict=True)]
        else:
            results = [_matches(args[0], v) for v in value]
        return False if False in results else None if None in results else True
    return None


def _describe(text: str) -> str:
    """Annotation `text` in words: "an integer", "a list of 2 numbers", "one of 'a', 'b'", ..."""
    alternatives = _split_top(text, "|")
    if len(alternatives) > 1:
        words = [_describe(a) for a in alternatives if _head_args(a)[0] not in ("None", "NoneType")]
        return " or ".join(words) + (" or null" if len(words) < len(alternatives) else "")
    head, args = _head_args(text)
    if head in ("Optional", "Union") and args:
        return _describe(" | ".join(args + (["None"] if head == "Optional" else [])))
    simple = {"None": "null", "NoneType": "null", "bool": "true or false", "int": "an integer",
              "float": "a number", "str": "text"}  # fmt: skip
    if head in simple:
        return simple[head]
    if head in _PATH_NAMES:
        return "a path"
    if head == "Literal" and args:
        return "one of " + ", ".join(args)
    if head in ("tuple", "Tuple") and args and not (len(args) == 2 and args[1] == "..."):
        kinds = {_plural(a) for a in args}
        return (
            f"a list of {len(args)} {kinds.pop()}" if len(kinds) == 1 else f"a list like [{', '.join(args)}]"
        )
    if args:
        return f"a list of {_plural(args[0])}"
    return "a list" if head in _SEQUENCE_NAMES or head in ("tuple", "Tuple") else text


def _plural(text: str) -> str:
    words = {"int": "integers", "float": "numbers", "str": "strings", "bool": "true/false values"}
    return words.get(_head_args(text)[0], f"{text} values")


def _shown(value: Any) -> str:
    return f"the string {value!r}" if isinstance(value, str) else f"{type(value).__name__} {value!r}"


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (built-ins + installed entry points), created on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin at run time)."""
    global _DEFAULT
    _DEFAULT = None


def build(kind: str, node: Mapping[str, Any], context: Mapping[str, Any] | None = None, **kw: Any) -> Any:
    """Shortcut for ``get_registry().build(kind, node, context, ...)``."""
    return get_registry().build(kind, node, context, **kw)
