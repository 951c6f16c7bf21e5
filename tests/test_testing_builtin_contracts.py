"""Every built-in plugin passes the facerep.testing contract checks (at tiny sizes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA

from facerep.core.registry import get_registry
from facerep.testing import Subject, checks_for, make_subject, parametrize_with_checks

#: Tiny recipe nodes of the built-ins whose defaults are paper-sized; the rest use ``{type: NAME}``.
TINY_NODES: dict[tuple[str, str], dict[str, Any]] = {
    ("encoder", "resnet"): {"type": "resnet", "depth": 18},
    ("shape_decoder", "gcn"): {"type": "gcn", "channels": [16, 8, 8, 8], "K": 3},
    ("albedo_decoder", "gcn"): {"type": "gcn", "channels": [16, 8, 8, 8], "K": 3},
    ("albedo_decoder", "unet"): {"type": "unet", "uv_size": 32, "width": 8},
    ("critic", "gcn"): {"type": "gcn", "channels": [8, 8, 8, 8], "K": 3},
    ("facemodel", "synthetic"): {"type": "synthetic", "vertices": 600},
    ("benchmark", "micc"): {"type": "micc", "progress": False},
    ("dataset", "celeba"): {"type": "celeba", "root": "builtin"},
    ("dataset", "w300lp"): {"type": "w300lp", "root": "builtin"},
    ("dataset", "micc"): {"type": "micc", "root": "builtin", "frame_step": 2},
    ("dataset", "aflw2000"): {"type": "aflw2000", "root": str(SHARED_DATA / "aflw2000")},
}
#: Kinds whose checks need the generated synthetic world (or real files): slow.
SLOW_KINDS = ("dataset",)
#: Large networks: build, outputs and gradients in the fast suite, the other checks when slow tests run.
HEAVY = {("encoder", "resnet"), ("albedo_decoder", "unet")}
HEAVY_FAST_CHECKS = ("build", "outputs", "gradients")
#: Datasets whose files do not belong to the synthetic face model are built without one.
NO_FACE_MODEL = {("dataset", "aflw2000")}


def _builtins() -> list[tuple[str, str]]:
    return [(c.kind, c.name) for c in get_registry().components() if c.package == "facerep"]


def _subject(kind: str, name: str) -> Subject:
    context = {"face_model": None} if (kind, name) in NO_FACE_MODEL else None
    return make_subject(kind, TINY_NODES.get((kind, name), {"type": name}), context=context)


LIGHT = [_subject(k, n) for k, n in _builtins() if k not in SLOW_KINDS and (k, n) not in HEAVY]
HEAVY_SUBJECTS = [_subject(k, n) for k, n in _builtins() if (k, n) in HEAVY]
DATASETS = [_subject(k, n) for k, n in _builtins() if k in SLOW_KINDS]


def test_every_builtin_is_checked() -> None:
    kinds = {k for k, _ in _builtins()}
    assert {"encoder", "shape_decoder", "albedo_decoder", "renderer", "critic", "loss", "facemodel"} <= kinds
    covered = {(s.kind, s.name) for s in LIGHT + HEAVY_SUBJECTS + DATASETS}
    assert covered == set(_builtins())


@parametrize_with_checks(LIGHT)
def test_builtin_contract(subject, check) -> None:  # noqa: ANN001 - the kit's objects
    check(subject)


@parametrize_with_checks(HEAVY_SUBJECTS, checks=HEAVY_FAST_CHECKS)
def test_builtin_network_contract(subject, check) -> None:  # noqa: ANN001
    check(subject)


@pytest.mark.slow
@parametrize_with_checks(
    HEAVY_SUBJECTS, checks=[c.name for c in checks_for("encoder") if c.name not in HEAVY_FAST_CHECKS]
)
def test_builtin_network_contract_slow(subject, check) -> None:  # noqa: ANN001
    check(subject)


@pytest.mark.slow
@parametrize_with_checks(DATASETS)
def test_builtin_dataset_contract(subject, check) -> None:  # noqa: ANN001
    root = str(subject.node.get("root"))
    if root.startswith(str(SHARED_DATA)) and not Path(root).exists():
        pytest.skip(f"real third-party test data not found at {root}")
    check(subject)
