"""The component registry: built-ins, third-party entry points, collisions, broken plugins, errors."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from facerep.common.errors import RecipeError
from facerep.core.registry import Component, Registry, hookimpl


def _plugin(*components: Component, raises: Exception | None = None) -> types.SimpleNamespace:
    @hookimpl
    def facerep_components() -> list[Component]:
        if raises is not None:
            raise raises
        return list(components)

    return types.SimpleNamespace(facerep_components=facerep_components)


def scale(factor: float = 1.0, offset: float = 0.0) -> tuple[float, float]:
    return factor, offset


def needs_model(face_model, size: int = 3) -> tuple[object, int]:  # noqa: ANN001
    return face_model, size


@pytest.fixture
def registry() -> Registry:
    return Registry(builtins=True, entry_points=False)


def test_builtin_optimizers_are_registered_with_origin(registry: Registry) -> None:
    comp = registry.get("optimizer", "adam")
    assert comp.package == "facerep"
    assert comp.version
    assert {"adam", "rmsprop", "sgd"} <= set(registry.names("optimizer"))


def test_build_injects_params_and_checks_kwargs(registry: Registry) -> None:
    weight = torch.nn.Parameter(torch.ones(2))
    opt = registry.build("optimizer", {"type": "rmsprop", "lr": 0.5}, {"params": [weight]})
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.param_groups[0]["lr"] == 0.5


def test_unknown_name_suggests_closest(registry: Registry) -> None:
    with pytest.raises(RecipeError) as info:
        registry.build("optimizer", {"type": "adma"}, address="optim.model", locate=lambda a: "r.yaml:7")
    message = str(info.value)
    assert "did you mean 'adam'" in message
    assert "r.yaml:7" in message and "optim.model.type" in message
    assert "rmsprop" in message  # lists the valid names


def test_unknown_argument_lists_valid_ones(registry: Registry) -> None:
    with pytest.raises(RecipeError, match=r"no argument 'lrr' \(did you mean 'lr'\?\).*eps"):
        registry.check("optimizer", {"type": "adam", "lrr": 1.0})


def test_unknown_kind_and_missing_type(registry: Registry) -> None:
    with pytest.raises(RecipeError, match="did you mean 'encoder'"):
        registry.get("encodr", "resnet")
    with pytest.raises(RecipeError, match="has no 'type'"):
        registry.check("optimizer", {"lr": 1.0})
    with pytest.raises(RecipeError, match="must be a mapping"):
        registry.check("optimizer", "adam")


def test_injected_names_cannot_be_set_and_are_required() -> None:
    reg = Registry(builtins=False, entry_points=False)
    reg.register(_plugin(Component("critic", "m", needs_model, "")), name="p", package="pkg")
    assert reg.build("critic", {"type": "m", "size": 4}, {"face_model": "FM"}) == ("FM", 4)
    with pytest.raises(RecipeError, match="provided by the run"):
        reg.check("critic", {"type": "m", "face_model": 1})
    with pytest.raises(RecipeError, match="needs 'face_model' from the run"):
        reg.build("critic", {"type": "m"}, {})


def test_missing_required_argument() -> None:
    def needs_root(root: str) -> str:
        return root

    reg = Registry(builtins=False, entry_points=False)
    reg.register(_plugin(Component("dataset", "d", needs_root)), name="p", package="pkg")
    with pytest.raises(RecipeError, match="needs argument"):
        reg.check("dataset", {"type": "d"})
    assert reg.build("dataset", {"type": "d", "root": "/x"}) == "/x"


def test_name_collision_names_both_packages_and_is_resolvable() -> None:
    reg = Registry(builtins=False, entry_points=False)
    reg.register(_plugin(Component("loss", "l1", scale)), name="a", package="pkg_a")
    reg.register(
        _plugin(Component("loss", "l1", lambda factor=2.0: ("b", factor))), name="b", package="pkg_b"
    )
    with pytest.raises(RecipeError) as info:
        reg.get("loss", "l1")
    assert "pkg_a" in str(info.value) and "pkg_b" in str(info.value)
    assert reg.build("loss", {"type": "pkg_b:l1"}) == ("b", 2.0)
    assert reg.build("loss", {"type": "pkg_a:l1", "factor": 3.0}) == (3.0, 0.0)
    with pytest.raises(RecipeError, match="no loss named 'pkg_c:l1'"):
        reg.get("loss", "pkg_c:l1")


def test_a_plugin_whose_hook_raises_is_reported_and_the_rest_works() -> None:
    reg = Registry(builtins=True, entry_points=False)
    reg.register(_plugin(raises=RuntimeError("boom")), name="bad", package="pkg_bad")
    assert [(e.package, e.plugin) for e in reg.load_errors] == [("pkg_bad", "bad")]
    assert "RuntimeError: boom" in reg.load_errors[0].error
    assert reg.get("optimizer", "adam").package == "facerep"


def _write_distribution(site: Path, dist: str, module: str, body: str, version: str = "1.2.3") -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[facerep]\n{module} = {module}\n")


def test_third_party_entry_points_are_discovered_and_broken_ones_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_distribution(
        tmp_path,
        "facerep-test-extra",
        "facerep_test_extra",
        """
        from facerep.core.registry import Component, hookimpl

        def halve(value: float = 1.0) -> float:
            return value / 2

        @hookimpl
        def facerep_components():
            return [Component("loss", "halve", halve, "halves a number")]
        """,
    )
    _write_distribution(
        tmp_path, "facerep-test-broken", "facerep_test_broken", "raise ImportError('missing native lib')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry(builtins=True, entry_points=True)
    comp = reg.get("loss", "halve")
    assert (comp.package, comp.version, comp.summary) == ("facerep-test-extra", "1.2.3", "halves a number")
    assert reg.build("loss", {"type": "halve", "value": 3.0}) == 1.5
    broken = [e for e in reg.load_errors if e.package == "facerep-test-broken"]
    assert broken and "ImportError: missing native lib" in broken[0].error
    assert reg.get("optimizer", "sgd").package == "facerep"
    sys.modules.pop("facerep_test_extra", None)


def test_a_string_where_a_number_is_expected_is_a_recipe_error(registry: Registry) -> None:
    with pytest.raises(RecipeError, match=r"'lr' must be a number, got the string 'fast'"):
        registry.check("optimizer", {"type": "adam", "lr": "fast"}, address="optim.model")


def test_builtins_are_facerep_own_entry_points_and_third_party_lookup_skips_them() -> None:
    from facerep.core.registry import builtin_entry_points

    names = [ep.name for ep in builtin_entry_points()]
    assert names == sorted(names) and "facerep.plugins.optimizers" in names
    assert all(ep.group == "facerep" and ep.module == ep.name for ep in builtin_entry_points())
    assert (
        Registry(builtins=False, entry_points=True).names("optimizer") == []
    )  # not twice, not as third party


class _Metadata:
    """A stand-in for facerep's installed metadata: `version` and the entry points it declares."""

    def __init__(self, entry_points: list) -> None:
        self.version = "0.0.1"
        self.entry_points = entry_points


def test_missing_facerep_metadata_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from facerep.common.errors import FacerepError

    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter(()))
    with pytest.raises(FacerepError, match=r"metadata is missing, .*never installed.*pip install -e \."):
        Registry(entry_points=False)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter([_Metadata([])]))
    with pytest.raises(FacerepError, match=r"\(0\.0\.1\) declares no built-in plugins .* stale.*pip install"):
        Registry(entry_points=False)


def test_an_old_metadata_without_plugins_does_not_hide_the_installed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    gone = importlib.metadata.EntryPoint("facerep.plugins.gone", "facerep.plugins.gone", "facerep")
    optimizers = importlib.metadata.EntryPoint(
        "facerep.plugins.optimizers", "facerep.plugins.optimizers", "facerep"
    )
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda **kw: iter([_Metadata([]), _Metadata([optimizers])])
    )
    assert {"adam", "rmsprop", "sgd"} <= set(Registry(entry_points=False).names("optimizer"))
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda **kw: iter([_Metadata([gone, optimizers])])
    )
    from facerep.common.errors import FacerepError

    with pytest.raises(
        FacerepError, match=r"declares the plugin module 'facerep.plugins.gone', which does not exist"
    ):
        Registry(entry_points=False)
