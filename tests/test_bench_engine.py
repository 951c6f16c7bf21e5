"""`facerep bench` end to end: a real few-step checkpoint on the tiny synthetic world (3 MICC subjects)."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from facerep.cli.app import main

TINY = """
extends: gcn_albedo_only
name: tiny_bench
face_model:
  vertices: 600
data:
  world:
    preset: tiny
  image_size: 32
  batch:
    identities: 2
    photos_per_identity: 2
    labelled_pairs: 1
model:
  encoder:
    depth: 18
  shape_decoder:
    channels: [16, 8, 8, 8]
    K: 3
  albedo_decoder:
    channels: [16, 8, 8, 8]
    K: 3
critic:
  channels: [8, 8, 8, 8]
  K: 3
train:
  steps_per_epoch: 2
  log_every: 1
  sample_every: 1000
  checkpoint_every: 2
stages:
  gcn_albedo:
    train:
      epochs: 1
"""


@pytest.mark.slow
def test_bench_a_few_step_checkpoint_on_the_synthetic_world(tmp_path: Path) -> None:
    from facerep.core.engine import Trainer, TrainOptions
    from facerep.core.recipe import load_recipe

    recipe = tmp_path / "tiny_bench.yaml"
    recipe.write_text(textwrap.dedent(TINY))
    run = Trainer(load_recipe(recipe), TrainOptions(out=tmp_path / "tiny_bench", quiet=True)).fit()
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
    assert len(list((out / "error_maps").glob("subject_01_*.png"))) == 3
