"""pytest plugin (registered through the ``pytest11`` entry point): fixtures for plugin authors.

Once facerep is installed every pytest session has these fixtures (session-scoped where building is
costly; treat the shared objects as read-only):

- ``tiny_face_model``: the built-in synthetic face model at ~600 vertices;
- ``tiny_context``: the shared objects a factory may ask for (face_model, image_size 32, code_sizes,
  num_identities, encoder, cache_dir, device);
- ``tiny_face_batch``: a 4-row hybrid `Batch` (2 unlabelled rows of one identity, 2 labelled paired rows);
- ``tiny_codes``: `Codes` for 4 rows; ``tiny_reconstruction``: a `Reconstruction` of leaf tensors that
  require gradients;
- ``tiny_trained_run``: a run directory trained for two steps at tiny size (session-scoped);
- ``facerep_check``: a function ``facerep_check(kind, node)`` that runs every contract check and fails
  the test with the list of broken ones.

It also adds the ``--facerep-component KIND:NAME`` option: each one adds contract-check tests for that
registered component to the session (``pytest --facerep-component shape_decoder:spiral``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from facerep.core.interfaces import FaceModel


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("facerep")
    group.addoption(
        "--facerep-component",
        action="append",
        default=[],
        metavar="KIND:NAME",
        help="run facerep's contract checks on this registered component (repeatable)",
    )


@pytest.fixture(scope="session")
def tiny_face_model() -> Any:
    """The built-in synthetic face model with ~600 vertices (shared; read-only)."""
    from facerep.testing.fixtures import tiny_face_model as make

    return make()


@pytest.fixture(scope="session")
def tiny_context(tiny_face_model: FaceModel) -> dict[str, Any]:
    """The tiny build context (see `facerep.testing.fixtures.tiny_context`)."""
    from facerep.testing.fixtures import tiny_context as make

    return make(tiny_face_model)


@pytest.fixture
def tiny_face_batch(tiny_face_model: FaceModel) -> Any:
    """A fresh 4-row hybrid `Batch` with 32 px images (safe to modify)."""
    from facerep.testing.fixtures import tiny_batch

    return tiny_batch(tiny_face_model)


@pytest.fixture
def tiny_codes() -> Any:
    """Fresh `Codes` for 4 rows with the paper's sizes (128 / 64 / 6 / 27)."""
    from facerep.testing.fixtures import tiny_codes as make

    return make()


@pytest.fixture
def tiny_reconstruction(tiny_face_model: FaceModel, tiny_face_batch: Any) -> Any:
    """A fresh `Reconstruction` of ``tiny_face_batch`` made of leaf tensors that require gradients."""
    from facerep.testing.fixtures import tiny_reconstruction as make

    return make(tiny_face_model, tiny_face_batch)


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A run directory trained for 2 steps at tiny size (`facerep.testing.runs.train_tiny_run`; read-only)."""
    from facerep.testing.runs import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("facerep-tiny-run") / "run")


@pytest.fixture
def facerep_check() -> Callable[..., Any]:
    """``facerep_check(kind, node, **kwargs)``: every contract check; fails listing the broken ones."""
    from facerep.testing.kit import assert_component

    return assert_component


def _requested(config: pytest.Config) -> list[tuple[str, str]]:
    pairs = []
    for text in config.getoption("--facerep-component", default=[]) or []:
        kind, sep, name = str(text).partition(":")
        if not sep or not name:
            raise pytest.UsageError(f"--facerep-component expects KIND:NAME, got {text!r}")
        pairs.append((kind, name))
    return pairs


class _ContractItem(pytest.Item):
    """One contract check of one component requested with ``--facerep-component``."""

    def __init__(self, *, subject: Any, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subject = subject
        self.check = check

    def runtest(self) -> None:
        from facerep.testing.subject import CheckSkipped

        try:
            self.check(self.subject)
        except CheckSkipped as exc:
            pytest.skip(str(exc))

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"facerep contract {self.name}"


class _ContractCollector(pytest.Collector):
    def __init__(self, *, pairs: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pairs = pairs

    def collect(self) -> list[pytest.Item]:
        from facerep.testing.checks import checks_for
        from facerep.testing.kit import make_subject

        items = []
        for kind, name in self.pairs:
            subject = make_subject(kind, name)
            for check in checks_for(kind):
                items.append(
                    _ContractItem.from_parent(
                        self, name=f"{subject.label}-{check.name}", subject=subject, check=check
                    )
                )
        return items


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    pairs = _requested(config)
    if not pairs:
        return
    collector = _ContractCollector.from_parent(session, name="facerep-contracts", pairs=pairs)
    items.extend(collector.collect())
