"""`facerep bench` end to end: a real few-step checkpoint on the tiny synthetic world (3 MICC subjects)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from facerep.cli.app import main


@pytest.mark.slow
def test_bench_a_few_step_checkpoint_on_the_synthetic_world(tmp_path: Path) -> None:
    from facerep.testing.runs import train_tiny_run

    run = train_tiny_run(tmp_path / "tiny_bench", parent="gcn_albedo_only", steps=2)
    out = tmp_path / "bench"
    main(["bench", str(run), "--out", str(out), "--max-frames", "2", "--error-maps", "1"])  # returns: exit 0
    table = json.loads((out / "table1.json").read_text())
    assert table["meta"]["runs"][0]["name"] == "tiny_bench"
    assert table["meta"]["runs"][0]["checkpoint"].endswith(".safetensors")
    assert table["meta"]["data_root"].endswith("micc") and table["meta"]["synthetic"]
    methods = [r["method"] for r in table["blocks"]["identity"]]
    assert methods == ["tiny_bench", "mean_face", "linear_fit"]
    assert table["blocks"]["identity"][0]["Cooperative"]["n"] == 3
    rows = list(csv.DictReader((out / "per_subject.csv").open()))
    assert len(rows) == 3 * 3 * 2 * 3
    assert all(float(r["mean"]) > 0 for r in rows)
    assert len(list((out / "error_maps").glob("subject_01_*.png"))) == 3 * 2  # conditions x protocols
