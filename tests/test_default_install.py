"""TensorBoard is part of the default install: training curves are never silently missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_tensorboard_is_a_default_dependency() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert "tensorboard" in names


def test_the_trainers_tensorboard_writer_works_in_this_install(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter  # what facerep.train.metrics_log logs through

    writer = SummaryWriter(str(tmp_path / "tensorboard"))
    writer.add_scalar("loss/total", 1.5, 1)
    writer.close()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
