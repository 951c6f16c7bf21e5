"""MICC metric speed: exact closest surface points (facerep) vs trimesh, and one full scoring.

Run: ``.venv/bin/python benchmarks/micc_metric.py [--repeat 3]`` (needs ../shared/data/scans/james and,
for the comparison, trimesh, which is not a runtime dependency).

Measures, side by side in one process on the real james scan (6,393 vertices, cropped to 95 mm):
1. closest points on the surface of M noisy queries: `MeshSurface.closest` vs
   ``trimesh.proximity.closest_point`` (both exact point-to-triangle), and their agreement;
2. one `score_shape` (landmark init + similarity ICP + point-to-plane) of a rotated, scaled copy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facerep.bench.scoring import score_shape
from facerep.data.objfile import read_obj
from facerep.geometry.alignment import MeshSurface, Similarity, closest_on_triangles
from facerep.geometry.surface_distance import crop_scan

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scans" / "james"


def best_of(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--brute", type=int, default=500, help="queries timed by brute force")
    args = parser.parse_args()
    v, t = read_obj(ROOT / "james.obj")
    doc = json.loads((ROOT / "james.ljson").read_text())
    lms = np.asarray(doc["groups"]["LJSON"]["landmarks"]["points"], dtype=np.float64)
    scan = crop_scan(v, t, lms[37], landmarks=lms)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(scan.vertices), args.queries)
    queries = scan.vertices[idx] + rng.normal(scale=1.0, size=(args.queries, 3))
    surface: MeshSurface = scan.surface
    ours = best_of(lambda: surface.closest(queries), args.repeat)
    print(f"scan: {len(scan.vertices)} vertices, {len(scan.triangles)} triangles; {args.queries} queries")
    print(f"facerep MeshSurface.closest: {ours * 1e3:.1f} ms ({args.queries / ours / 1e3:.0f} k queries/s)")
    sub = queries[: args.brute]
    corners = surface.corners

    def brute() -> np.ndarray:
        out = np.empty(len(sub))
        for i in range(0, len(sub), 50):
            q, _ = closest_on_triangles(
                sub[i : i + 50, None], corners[None, :, 0], corners[None, :, 1], corners[None, :, 2]
            )
            out[i : i + 50] = np.linalg.norm(q - sub[i : i + 50, None], axis=-1).min(axis=1)
        return out

    theirs = best_of(brute, 1) / len(sub) * len(queries)
    diff = np.abs(surface.closest(sub).distances - brute()).max()
    print(
        f"brute force over all triangles (numpy, extrapolated): {theirs * 1e3:.0f} ms; x{theirs / ours:.0f}"
    )
    print(f"max |distance difference| vs brute force: {diff:.2e} mm")
    try:
        import rtree  # noqa: F401 - trimesh's proximity queries need it
        import trimesh
    except ImportError:
        print("trimesh + rtree not installed: no trimesh comparison")
    else:
        mesh = trimesh.Trimesh(scan.vertices, scan.triangles, process=False)
        other = best_of(lambda: trimesh.proximity.closest_point(mesh, queries), args.repeat)
        print(f"trimesh.proximity.closest_point: {other * 1e3:.1f} ms; ratio {other / ours:.1f}")
    angle = np.deg2rad(20.0)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    move = Similarity(0.9, rot, np.array([5.0, 0, 30.0]))
    copy = move.apply(v)
    lm_idx = np.argmin(np.linalg.norm(v[:, None] - lms[None], axis=2), axis=0)  # landmark vertices

    def score() -> float:
        return score_shape(copy, t, scan, landmark_vertices=lm_idx).error.mean

    once = best_of(score, args.repeat)
    err = score()
    print(
        f"score_shape (landmarks + ICP + point-to-plane) of a {len(v)}-vertex prediction: "
        f"{once * 1e3:.0f} ms, error {err:.4f} mm"
    )


if __name__ == "__main__":
    main()
