"""What the benchmarks share: run names, devices and provenance (facerep.bench.runs), data roots and the
progress bar (facerep.bench.plugin_common), dlib's model files (one locator, the dlib face detector's),
and the ``bench`` command's synthetic-world and closing lines (facerep.cli.bench_cmd)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console

from facerep.bench import dlib_faces
from facerep.bench.plugin_common import progress_bar, resolve_data_root
from facerep.bench.runs import model_device, run_checkpoints, run_names, run_records
from facerep.cli.bench_cmd import print_written, recipe_world, world_data_root
from facerep.common.errors import DataError, FacerepError
from facerep.data.dlib_models import DLIB_INSTALL, SHAPE_PREDICTOR, find_model_file, model_file


def test_run_names_number_unnamed_runs_and_tell_equal_names_apart() -> None:
    runs = [SimpleNamespace(name="a"), SimpleNamespace(), SimpleNamespace(name="a"), SimpleNamespace(name="")]
    assert run_names(runs) == ["a#1", "run2", "a#3", "run4"]
    assert run_names([SimpleNamespace(name="x"), SimpleNamespace(name="y")]) == ["x", "y"]


def test_model_device_is_the_networks_first_parameters() -> None:
    on_meta = torch.nn.Linear(2, 2, device="meta")
    assert model_device(SimpleNamespace(model=on_meta)) == torch.device("meta")  # a BenchModel's network
    assert model_device(on_meta) == torch.device("meta")  # a bare module
    assert model_device(SimpleNamespace(model=torch.nn.ReLU())) == torch.device("cpu")  # no parameters
    assert model_device(SimpleNamespace()) == torch.device("cpu")  # a hand-made stand-in


def test_run_records_carry_folder_and_checkpoint_by_unique_name() -> None:
    runs = [SimpleNamespace(name="r", path=Path("runs/r"), checkpoint="step-1.pt"), SimpleNamespace(name="r")]
    names = run_names(runs)
    assert run_checkpoints(runs, names) == {"r#1": "step-1.pt", "r#2": ""}
    assert run_records(runs, names) == [
        {"name": "r#1", "path": str(Path("runs/r")), "checkpoint": "step-1.pt"},
        {"name": "r#2", "path": "", "checkpoint": ""},
    ]


def test_resolve_data_root_takes_existing_paths_and_names_a_missing_one(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\n")
    assert resolve_data_root(tmp_path, "AFLW2000-3D folder") == tmp_path
    assert resolve_data_root(pairs, "verification data", folder=False) == pairs
    with pytest.raises(DataError, match=r"pairs.txt: AFLW2000-3D folder not found"):
        resolve_data_root(pairs, "AFLW2000-3D folder")  # a file where a folder is needed
    with pytest.raises(DataError, match=r"nowhere: verification data not found"):
        resolve_data_root(tmp_path / "nowhere", "verification data", folder=False)
    world = tmp_path / "world" / "aflw2000"
    assert resolve_data_root("builtin", "AFLW2000-3D folder", data_root=world) == world  # the caller's
    with pytest.raises(
        DataError, match=r"root 'builtin' is the synthetic world's MICC data root, .* data_root"
    ):
        resolve_data_root("builtin", "MICC data root")


def test_bench_makes_the_world_folder_a_benchmark_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import facerep.world.cache as cache

    made: list = []
    monkeypatch.setattr(cache, "ensure_world_part", lambda *args: made.append(args) or tmp_path / args[2])
    benchmark = SimpleNamespace(world_part="verification")
    assert world_data_root(benchmark, "tiny", 3) == tmp_path / "verification" and made == [
        ("tiny", 3, "verification")
    ]
    with pytest.raises(
        FacerepError, match=r"the SimpleNamespace benchmark has no synthetic-world data: give --data"
    ):
        world_data_root(SimpleNamespace(), "tiny", 3)


def test_progress_bar_shows_title_and_count_and_can_be_off() -> None:
    console = Console(record=True, width=100, force_terminal=True)
    with progress_bar("AFLW2000-3D", console) as bar:
        task = bar.add_task("run1", total=4)
        bar.advance(task, 3)
    text = console.export_text()
    assert "AFLW2000-3D run1" in text and "3/4" in text
    quiet = Console(record=True, width=100, force_terminal=True)
    with progress_bar("MICC", quiet, enabled=False) as bar:
        bar.add_task("x", total=1)
    assert quiet.export_text() == ""


def test_dlib_model_files_are_found_by_the_detectors_locator(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_model_file("no_such_model.dat") is None
    with pytest.raises(FacerepError, match=r"no_such_model.dat from the face-recognition-models"):
        model_file("no_such_model.dat")
    assert dlib_faces.MODEL_FILES["landmarks68"] == SHAPE_PREDICTOR
    if importlib.util.find_spec("face_recognition_models") is not None:
        assert find_model_file(SHAPE_PREDICTOR) == model_file(SHAPE_PREDICTOR)
    # what is missing is said with the detectors' one install line
    monkeypatch.setattr(dlib_faces, "find_model_file", lambda name: None)
    missing = dlib_faces.dlib_missing() or ""
    assert missing.endswith(DLIB_INSTALL) and ("not installed" in missing or "lacks" in missing)
    if importlib.util.find_spec("dlib") is not None:
        assert missing.startswith(f"face-recognition-models lacks {SHAPE_PREDICTOR}, ")


def test_bench_lines_for_the_recipe_world_and_the_files_written(tmp_path: Path) -> None:
    recipe = {"data.world.preset": "tiny", "data.world.seed": 7}
    model = SimpleNamespace(name="run [a]", recipe=SimpleNamespace(get=lambda k, d=None: recipe.get(k, d)))
    console = Console(record=True, width=40)
    assert recipe_world([model], console) == ("tiny", 7)
    unset = SimpleNamespace(name="b", recipe=SimpleNamespace(get=lambda k, d=None: d))
    assert recipe_world([unset], console) == ("demo", 0)
    print_written({"files": {"a": 1, "b": 2}, "seconds": 1.25}, tmp_path / "out [1]", console)
    lines = console.export_text().splitlines()
    assert lines[0] == "no --data: using the synthetic world (preset 'tiny', seed 7) of run [a]"  # unwrapped
    assert lines[1] == "no --data: using the synthetic world (preset 'demo', seed 0) of b"
    assert lines[2] == f"wrote 2 files under {tmp_path / 'out [1]'} in 1.2 s"


def test_overlapping_detection_takes_the_best_overlap_above_the_threshold() -> None:
    from facerep.bench.dlib_faces import MIN_IOU, overlapping_detection
    from facerep.core.interfaces import DetectedFace

    points = np.zeros((68, 2), np.float32)
    faces = [
        DetectedFace(np.array(b, np.float64), points + k, 1.0)
        for k, b in enumerate([(0, 0, 10, 10), (4, 0, 14, 10)])
    ]
    detector = SimpleNamespace(detect=lambda rgb: faces)
    rgb = np.zeros((20, 20, 3), np.uint8)
    box, landmarks = overlapping_detection(rgb, (5.0, 0.0, 15.0, 10.0), detector)
    assert box == (4.0, 0.0, 14.0, 10.0) and landmarks[0, 0] == 1.0  # IoU 0.82 beats 0.33
    assert (
        MIN_IOU == 0.3 and overlapping_detection(rgb, (12.0, 0.0, 22.0, 10.0), detector) is None
    )  # IoU 0.11
