"""The component under test and the small helpers the contract checks share.

A `Subject` is one recipe node of one kind, with the registry that builds it and a tiny build context
(`facerep.testing.fixtures.tiny_context`). Checks raise `ContractError` (an AssertionError) with a
message that names the component and what was expected, or `CheckSkipped` when they do not apply
(e.g. the CUDA check on a machine without a GPU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from facerep.core.registry import Component, Registry, get_registry


class ContractError(AssertionError):
    """A component broke its kind's contract; the message says how."""


class CheckSkipped(Exception):  # noqa: N818 - a control-flow signal, like pytest.skip.Exception
    """A check does not apply here (no GPU, no parameters, ...); the message says why."""


def as_node(node: str | Mapping[str, Any]) -> dict[str, Any]:
    """A recipe node from a node mapping or a bare component name (``"gcn"`` -> ``{"type": "gcn"}``)."""
    if isinstance(node, str):
        return {"type": node}
    if not isinstance(node, Mapping) or "type" not in node:
        raise ValueError(f"a component node is a mapping with a 'type' key (or a name), got {node!r}")
    return dict(node)


@dataclass
class Subject:
    """One component to check: its kind, its recipe node, the registry and a tiny context.

    Attributes:
        kind: component kind (``shape_decoder``, ``loss``, ...).
        node: the recipe node ``{type: NAME, **kwargs}``.
        registry: the registry that builds it (the process-wide one by default).
        context_overrides: entries replacing those of the tiny context (e.g. ``image_size``); a None
            value removes the entry (e.g. ``face_model: None`` builds a dataset without a face model).
    """

    kind: str
    node: dict[str, Any]
    registry: Registry = field(default_factory=get_registry, repr=False)
    context_overrides: dict[str, Any] = field(default_factory=dict, repr=False)
    _context: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.node["type"])

    @property
    def label(self) -> str:
        """``kind:name`` plus any recipe arguments, for messages and test ids."""
        args = ",".join(f"{k}={v}" for k, v in self.node.items() if k != "type")
        return f"{self.kind}:{self.name}" + (f"({args})" if args else "")

    @property
    def component(self) -> Component:
        return self.registry.get(self.kind, self.name)

    def context(self, device: str | torch.device = "cpu") -> dict[str, Any]:
        """The tiny build context (face model of ~600 vertices, 32 px images, ...) on `device`."""
        if self._context is None:
            from facerep.testing.fixtures import tiny_context

            overrides = self.context_overrides
            face_model = overrides.get("face_model")
            context = tiny_context(face_model, registry=self.registry)
            context.update(overrides)
            self._context = {k: v for k, v in context.items() if v is not None}
        return {**self._context, "device": torch.device(device)}

    @property
    def face_model(self) -> Any:
        context = self.context()
        if "face_model" in context:
            return context["face_model"]
        from facerep.testing.fixtures import tiny_face_model

        return tiny_face_model(registry=self.registry)

    def build(self, seed: int = 0, device: str | torch.device = "cpu") -> Any:
        """Build the component from its node through the registry, with torch seeded by `seed`."""
        torch.manual_seed(int(seed))
        return self.registry.build(self.kind, self.node, self.context(device), address=self.kind)

    def fail(self, message: str) -> ContractError:
        return ContractError(f"{self.label}: {message}")


# -- helpers on nested values (tensors inside dataclasses, lists, dicts) ---------------------------------


def named_tensors(value: Any, prefix: str = "output") -> dict[str, Tensor]:
    """Every tensor inside `value`, keyed by its path (``output.codes.identity``, ``output[0]``)."""
    found: dict[str, Tensor] = {}

    def walk(v: Any, path: str) -> None:
        if isinstance(v, Tensor):
            found[path] = v
        elif isinstance(v, list | tuple):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")
        elif isinstance(v, dict):
            for k, item in v.items():
                walk(item, f"{path}.{k}")
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            for f in dataclasses.fields(v):
                walk(getattr(v, f.name), f"{path}.{f.name}")

    walk(value, prefix)
    return found


def snapshot(value: Any) -> dict[str, Tensor]:
    """Detached copies of every tensor inside `value` (to detect mutation later)."""
    return {k: t.detach().clone() for k, t in named_tensors(value, "input").items()}


def differences(
    expected: Mapping[str, Tensor], actual: Mapping[str, Tensor], *, rtol: float = 0.0, atol: float = 0.0
) -> list[str]:
    """Keys whose tensors differ (shape, dtype or values beyond the tolerances), with the largest gap."""
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if key not in expected or key not in actual:
            problems.append(f"{key} present in only one of the two")
            continue
        a, b = expected[key].detach().cpu(), actual[key].detach().cpu()
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{key}: {tuple(a.shape)} {a.dtype} vs {tuple(b.shape)} {b.dtype}")
            continue
        if a.dtype == torch.bool or not a.is_floating_point():
            if not torch.equal(a, b):
                problems.append(f"{key}: {int((a != b).sum())} element(s) differ")
            continue
        same_nan = torch.isnan(a) & torch.isnan(b)
        a, b = torch.where(same_nan, 0.0, a), torch.where(same_nan, 0.0, b)
        if rtol == 0.0 and atol == 0.0:
            if not torch.equal(a, b):
                problems.append(f"{key}: max |difference| {float((a - b).abs().max()):.3g}")
        elif not torch.allclose(a, b, rtol=rtol, atol=atol):
            problems.append(f"{key}: max |difference| {float((a - b).abs().max()):.3g}")
    return problems


def float_tensors(value: Any, prefix: str = "output") -> dict[str, Tensor]:
    return {k: t for k, t in named_tensors(value, prefix).items() if t.is_floating_point()}


__all__ = [
    "CheckSkipped",
    "ContractError",
    "Subject",
    "as_node",
    "differences",
    "float_tensors",
    "named_tensors",
    "snapshot",
]
