"""Shared by the benchmark scripts: the A/B scripts' size arguments, the synthetic face model, timing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from facerep.core.registry import get_registry


def size_arguments(doc: str | None, batch: list[int], threads: int) -> argparse.Namespace:
    """Parse ``--vertices``, ``--batch`` (one per vertex count) and ``--threads``; set torch's threads."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vertices", type=int, nargs="+", default=[2000, 37202])
    parser.add_argument("--batch", type=int, nargs="+", default=batch)
    parser.add_argument("--threads", type=int, default=threads)
    args = parser.parse_args()
    if len(args.batch) != len(args.vertices):
        parser.error("give one --batch per --vertices")
    torch.set_num_threads(args.threads)
    print(f"{args.threads} torch thread(s), torch {torch.__version__}\n")
    return args


def timed(step: Callable[[], object], repeats: int = 3) -> float:
    """Seconds per call of `step` (mean of `repeats` calls after one warm-up call)."""
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def synthetic_face_model(vertices: int):  # noqa: ANN201 - the registry's face model
    """The embedded synthetic face model with `vertices` vertices (seed 0), built through the registry."""
    return get_registry().build("facemodel", {"type": "synthetic", "vertices": vertices, "seed": 0}, {})
