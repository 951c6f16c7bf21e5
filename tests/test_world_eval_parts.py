"""The synthetic world's evaluation folders (aflw2000/, verification/): their own random streams leave the
other folders' bytes unchanged, and a cached world without them gets them written in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facerep.common.errors import DataError
from facerep.world.cache import ensure_world, ensure_world_part
from facerep.world.synth import generate_world

MAT_HEADER = 128  # a MATLAB 5 file's text header holds its creation time


def _contents(folder: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            out[str(path.relative_to(folder))] = data[MAT_HEADER:] if path.suffix == ".mat" else data
    return out


def test_eval_parts_leave_the_other_folders_unchanged(tmp_path: Path) -> None:
    world = ensure_world("tiny", 0, tmp_path / "cache", progress=False)
    assert {p.name for p in world.iterdir()} >= {"celeba", "300w_lp", "micc", "aflw2000", "verification"}
    older = generate_world(tmp_path / "older", "tiny", 0, parts=("celeba", "300w_lp", "micc"), device="cpu")
    for part in ("celeba", "300w_lp", "micc"):
        assert _contents(world / part) == _contents(older / part), part
    # a world cached before the evaluation folders existed: they are written in place, byte for byte
    aflw, verification = _contents(world / "aflw2000"), _contents(world / "verification")
    info = (world / "world.json").read_text()
    shutil.rmtree(world / "aflw2000")
    shutil.rmtree(world / "verification")
    micc_before = _contents(world / "micc")
    assert ensure_world_part("tiny", 0, "aflw2000", tmp_path / "cache") == world / "aflw2000"
    assert ensure_world_part("tiny", 0, "verification", tmp_path / "cache") == world / "verification"
    assert _contents(world / "aflw2000") == aflw and _contents(world / "verification") == verification
    assert _contents(world / "micc") == micc_before and (world / "world.json").read_text() == info
    assert not [p for p in world.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert json.loads((world / "aflw2000" / "meta.json").read_text())["face_model"]["type"] == "synthetic"


def test_unknown_world_part_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no 'lfw' folder"):
        ensure_world_part("tiny", 0, "lfw", tmp_path)
    with pytest.raises(ValueError, match="unknown world part"):
        generate_world(tmp_path / "w", "tiny", 0, parts=("lfw",))
