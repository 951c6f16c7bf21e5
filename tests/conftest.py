"""Shared test fixtures: the real third-party data folder, an isolated cache, small torch threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(min(2, torch.get_num_threads()))


def shared_data(*parts: str) -> Path:
    """Path into ../shared/data, or skip the test with the reason when it is absent (a user's machine)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real third-party test data not found at {path} (only present on the project's machines)"
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep derived data of the tests out of the user's cache (one cache for the whole session)."""
    import os

    os.environ.setdefault("FACEREP_CACHE", str(tmp_path_factory.mktemp("facerep-cache")))
