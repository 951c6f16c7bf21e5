"""Bench outputs say what made them: per_subject.csv's provenance columns, the CSV tables' head, and error
maps for every protocol."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from facerep.bench.error_maps import ErrorPanel, write_error_maps
from facerep.bench.results import Score, summarise
from facerep.bench.tables import BenchTables, write_per_subject, write_tables

META = {
    "data_root": "/data/micc",
    "synthetic": False,
    "runs": [
        {"name": "demo", "path": "/runs/demo", "checkpoint": "/runs/demo/checkpoints/step-1150.safetensors"}
    ],
    "protocols": ["identity", "three_views"],
    "statistic": "mean",
    "direction": "symmetric",
    "radius": 90.0,
}


def _scores() -> list[Score]:
    return [
        Score("demo", "run", "identity", "Cooperative", "subject_01", 1.25, 1.5, 0.2, 12),
        Score("demo", "run", "three_views", "Cooperative", "subject_01", 1.3, 1.6, 0.2, 3),
        Score("mean_face", "baseline", "identity", "Cooperative", "subject_01", 1.75, 2.0),
    ]


def test_per_subject_lines_carry_run_checkpoint_and_data(tmp_path: Path) -> None:
    path = write_per_subject(_scores(), tmp_path / "per_subject.csv", META)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))  # a plain CSV: no comment lines
    assert [r["method"] for r in rows] == ["demo", "demo", "mean_face"]
    run, _, baseline = rows
    assert run["run_path"] == "/runs/demo"
    assert run["checkpoint"] == "/runs/demo/checkpoints/step-1150.safetensors"
    assert baseline["run_path"] == "" and baseline["checkpoint"] == ""
    for row in rows:
        assert row["data_root"] == "/data/micc"
        assert row["direction"] == "symmetric" and float(row["radius_mm"]) == 90.0
    assert float(run["mean"]) == 1.25 and run["frames"] == "12"


def test_csv_tables_head_names_statistic_direction_and_run_folder(tmp_path: Path) -> None:
    rows = {p: summarise(_scores(), p) for p in ("identity", "three_views")}
    paths = write_tables(BenchTables(rows, [], META), tmp_path)
    head = [ln for ln in paths["table1.csv"].read_text().splitlines() if ln.startswith("#")]
    assert "# data_root=/data/micc" in head
    assert "# run=demo path=/runs/demo checkpoint=/runs/demo/checkpoints/step-1150.safetensors" in head
    assert "# statistic=mean direction=symmetric radius_mm=90.0" in head
    assert "(`/runs/demo`)" in paths["table1.md"].read_text()


def test_error_maps_are_written_for_every_protocol(tmp_path: Path) -> None:
    xs, ys = np.meshgrid(np.linspace(-50, 50, 6), np.linspace(-60, 60, 6))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(36)], axis=1)
    quads = [(r * 6 + c, r * 6 + c + 1, (r + 1) * 6 + c) for r in range(5) for c in range(5)]
    triangles = np.array(quads + [(a + 1, b + 6, b) for a, b, _ in quads])
    low, high = np.full(36, 0.5), np.full(36, 2.5)
    groups = {
        ("identity", "Indoor"): [ErrorPanel("demo", vertices, triangles, low)],
        ("three_views", "Indoor"): [ErrorPanel("demo", vertices, triangles, high)],
    }
    files = write_error_maps(
        groups, tmp_path, "subject_02", vmax=3.0, protocol_titles={"three_views": "Average over three views"}
    )
    assert list(files) == [
        "error_maps/subject_02_identity_Indoor.png",
        "error_maps/subject_02_three_views_Indoor.png",
    ]
    centre = []
    for path in files.values():
        assert path.parent == tmp_path / "error_maps"
        with Image.open(path) as im:
            centre.append(np.asarray(im.convert("RGB"))[24 + 128, 128].astype(int))
    # the two protocols' errors differ, and so do their maps: 0.5 mm is blue-green, 2.5 mm red-orange
    assert centre[0][2] > centre[0][0] and centre[1][0] > centre[1][2]
