"""Data-parallel training with torchrun: 2 CPU processes (gloo) compute what one process computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facerep.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

#: The tiny recipe with batch sizes two processes can share (2 identity groups, 2 labelled pairs) and
#: SGD with momentum, whose momentum buffers hold the (accumulated) gradients themselves. (Adam's first
#: steps move every weight by about lr * sign(gradient), so rounding-level differences in near-zero
#: gradients would show as whole steps; the gradients are what must agree.)
SHARDABLE = [
    "data.batch.labelled_pairs=2",
    "optim.model.type=sgd",
    "optim.model.lr=1e-5",
    "optim.critic.type=sgd",
    "optim.critic.lr=1e-5",
]


def test_two_gloo_processes_compute_the_single_process_gradients(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine import tiny_recipe, train, weights

    recipe = tiny_recipe(tmp_path, parent="gcn_albedo_only", epochs=(1, 0))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", "29533", "-m", "facerep", "run", str(recipe), "--out", str(out), "--quiet"]
    command += [arg for item in SHARDABLE for arg in ("--set", item)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records and all(r["loss/total"] == r["loss/total"] for r in records)
    last = ckpt.load_checkpoint(ckpt.list_checkpoints(out / "checkpoints")[-1])
    assert last.meta["sampler"]["num_replicas"] == 2

    single = weights(train(recipe, tmp_path / "single", overrides=SHARDABLE))
    parallel = weights(out)
    assert set(single) == set(parallel)
    buffers = [k for k in single if k.endswith("momentum_buffer")]
    assert len(buffers) > 50  # model (encoder, decoders, recognition classifier) and critic
    for key in buffers + [k for k in single if k.startswith(("model.", "critic."))]:
        a, b = single[key].double(), parallel[key].double()
        scale = a.abs().max().clamp_min(1e-12)
        assert float((a - b).abs().max() / scale) < 1e-3, key
