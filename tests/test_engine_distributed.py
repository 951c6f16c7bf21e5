"""Data-parallel training with torchrun: 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facerep.core import checkpoint as ckpt

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_in_lockstep(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine import tiny_recipe

    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(1, 0))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29533",
            "-m",
            "facerep",
            "run",
            str(recipe),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records and all(r["loss/total"] == r["loss/total"] for r in records)
    last = ckpt.load_checkpoint(ckpt.list_checkpoints(out / "checkpoints")[-1])
    assert last.meta["sampler"]["num_replicas"] == 2
