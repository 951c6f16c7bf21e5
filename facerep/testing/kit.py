"""Running the contract checks: `check_component` (plain Python), `parametrize_with_checks` (pytest).

from facerep.testing import check_component, parametrize_with_checks

results = check_component("shape_decoder", {"type": "spiral", "channels": [16, 8]})
assert all(r.passed for r in results), results

@parametrize_with_checks([("shape_decoder", {"type": "spiral"}), ("loss", "photometric")])
def test_contract(subject, check):
    check(subject)
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facerep.core.registry import Registry, get_registry
from facerep.testing.checks import Check, checks_for
from facerep.testing.subject import CheckSkipped, ContractError, Subject, as_node

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

ComponentRef = Subject | tuple[str, "str | Mapping[str, Any]"]


@dataclass
class CheckResult:
    """The outcome of one check on one component.

    Attributes:
        component: ``kind:name`` (with recipe arguments).
        check: the check's name (``outputs``, ``gradients``, ...).
        status: "passed", "failed" or "skipped".
        message: why it failed or was skipped ("" when it passed).
        seconds: wall time of the check.
    """

    component: str
    check: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def __str__(self) -> str:
        text = f"{self.component} {self.check}: {self.status}"
        return f"{text} ({self.message})" if self.message else text


def make_subject(
    kind: str,
    node: str | Mapping[str, Any],
    *,
    registry: Registry | None = None,
    context: Mapping[str, Any] | None = None,
) -> Subject:
    """A `Subject` for `kind` and a node (or a bare name); `context` overrides tiny-context entries."""
    return Subject(kind, as_node(node), registry or get_registry(), dict(context or {}))


def run_check(check: Check, subject: Subject) -> CheckResult:
    """Run one check, turning failures, skips and unexpected errors into a `CheckResult`."""
    start = time.perf_counter()
    try:
        check(subject)
    except CheckSkipped as exc:
        return CheckResult(subject.label, check.name, SKIPPED, str(exc), time.perf_counter() - start)
    except ContractError as exc:
        return CheckResult(subject.label, check.name, FAILED, str(exc), time.perf_counter() - start)
    except Exception as exc:  # an unexpected error inside the component is a failure too
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" at {frame.filename}:{frame.lineno}"
        message = f"{subject.label}: {type(exc).__name__}: {exc}{where}"
        return CheckResult(subject.label, check.name, FAILED, message, time.perf_counter() - start)
    return CheckResult(subject.label, check.name, PASSED, "", time.perf_counter() - start)


def check_component(
    kind: str,
    node: str | Mapping[str, Any],
    *,
    registry: Registry | None = None,
    context: Mapping[str, Any] | None = None,
    checks: Iterable[str] | None = None,
) -> list[CheckResult]:
    """Run every contract check of `kind` (or only the named `checks`) on the component `node` names.

    Args:
        kind: component kind (``encoder``, ``shape_decoder``, ``loss``, ...).
        node: recipe node ``{type: NAME, **kwargs}`` or a bare name.
        registry: registry to build from (default: the process-wide one, with installed plugins).
        context: entries replacing those of the tiny build context (``image_size``, ``face_model``, ...).
        checks: names of the checks to run (see `facerep.testing.checks.KIND_CHECKS`); all by default.

    Returns:
        One `CheckResult` per check, in order.
    """
    subject = make_subject(kind, node, registry=registry, context=context)
    selected = checks_for(kind)
    if checks is not None:
        wanted = list(checks)
        unknown = sorted(set(wanted) - {c.name for c in selected})
        if unknown:
            raise ValueError(
                f"unknown check(s) {unknown} for {kind}; its checks: {[c.name for c in selected]}"
            )
        selected = [c for c in selected if c.name in wanted]
    return [run_check(check, subject) for check in selected]


def assert_component(kind: str, node: str | Mapping[str, Any], **kwargs: Any) -> list[CheckResult]:
    """`check_component`, raising `ContractError` listing every failed check."""
    results = check_component(kind, node, **kwargs)
    failed = [r for r in results if r.failed]
    if failed:
        raise ContractError("\n".join(str(r) for r in failed))
    return results


def _subjects(components: Iterable[ComponentRef], registry: Registry | None) -> list[Subject]:
    subjects = []
    for item in components:
        if isinstance(item, Subject):
            subjects.append(item)
            continue
        if not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(f"components are (kind, node) pairs or Subjects, got {item!r}")
        subjects.append(make_subject(item[0], item[1], registry=registry))
    return subjects


class _PytestCheck:
    """A check as a pytest test body: skips become ``pytest.skip``."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.name = check.name

    def __call__(self, subject: Subject) -> None:
        import pytest

        try:
            self.check(subject)
        except CheckSkipped as exc:
            pytest.skip(f"{subject.label} {self.check.name}: {exc}")

    def __repr__(self) -> str:
        return self.check.name


def parametrize_with_checks(
    components: Iterable[ComponentRef],
    *,
    registry: Registry | None = None,
    checks: Iterable[str] | None = None,
) -> Any:
    """A ``pytest.mark.parametrize`` over (component, check) pairs, ids ``kind:name-check``.

    The decorated test takes ``subject`` and ``check`` and calls ``check(subject)``.
    Components are ``(kind, node)`` pairs (node: a mapping or a bare name) or `Subject` objects.
    """
    import pytest

    wanted = set(checks) if checks is not None else None
    params, ids = [], []
    for subject in _subjects(components, registry):
        for check in checks_for(subject.kind):
            if wanted is not None and check.name not in wanted:
                continue
            params.append((subject, _PytestCheck(check)))
            ids.append(f"{subject.label}-{check.name}")
    return pytest.mark.parametrize(("subject", "check"), params, ids=ids)


def format_results(results: Iterable[CheckResult]) -> str:
    """One line per result, then a summary line."""
    results = list(results)
    lines = [str(r) + f" [{r.seconds:.2f}s]" for r in results]
    counts = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, SKIPPED)}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


__all__ = [
    "FAILED",
    "PASSED",
    "SKIPPED",
    "CheckResult",
    "assert_component",
    "check_component",
    "format_results",
    "make_subject",
    "parametrize_with_checks",
    "run_check",
]
