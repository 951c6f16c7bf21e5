"""Mesh-hierarchy and face-model construction timings.

Measures, side by side in one run:
- the COMA hierarchy build (4 levels, factor 4) of the synthetic template at 2k and 37k vertices;
- the up-sampling step's closest-point search (KD-tree candidates + vectorised point-triangle test) against
  trimesh's ``proximity.closest_point`` (when trimesh is installed) on the same coarse mesh and points;
- the synthetic face model build at 2k and 37k vertices (first build, procedural fields cached).

Usage: python benchmarks/hierarchy.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from facerep.geometry.hierarchy import build_hierarchy, closest_point_on_triangles, decimate
    from facerep.plugins.facemodels.synthetic import SyntheticFaceModel, _procedural

    print(f"machine: {platform.machine()}, {platform.system()}, torch {torch.__version__}, 1 torch thread")
    t0 = time.perf_counter()
    _procedural(0, 80, 29, 40, 2.0)
    print(f"procedural fields (seed 0, 80/29/40 components): {time.perf_counter() - t0:.2f} s")
    models = {}
    for n in (2000, 37202):
        t0 = time.perf_counter()
        models[n] = SyntheticFaceModel(vertices=n)
        print(f"synthetic model at {n} vertices: {time.perf_counter() - t0:.2f} s")

    for n, fm in models.items():
        secs = _median_time(lambda fm=fm: build_hierarchy(fm.template, fm.triangles, 4, 4), args.repeats)
        h = build_hierarchy(fm.template, fm.triangles, 4, 4)
        print(f"hierarchy {n} vertices -> {h.sizes}: {secs:.2f} s (median of {args.repeats})")

    # closest points: ours vs trimesh on the 37k -> 9k level
    fm = models[37202]
    sel, tri = decimate(fm.template, fm.triangles, 4)
    coarse = fm.template[sel].astype(np.float64)
    rest = np.setdiff1d(np.arange(fm.num_vertices), sel)
    pts = fm.template[rest].astype(np.float64)

    def ours() -> np.ndarray:
        from scipy.spatial import cKDTree

        cent = coarse[tri].mean(1)
        _, cand = cKDTree(cent).query(pts, k=24)
        best = np.full(len(pts), np.inf)
        for j in range(cand.shape[1]):
            t = tri[cand[:, j]]
            q, _ = closest_point_on_triangles(pts, coarse[t[:, 0]], coarse[t[:, 1]], coarse[t[:, 2]])
            best = np.minimum(best, ((pts - q) ** 2).sum(1))
        return np.sqrt(best)

    t_ours = _median_time(ours, args.repeats)
    d_ours = ours()
    line = f"closest points ({len(pts)} points, {len(tri)} triangles): ours {t_ours * 1000:.0f} ms"
    # exhaustive search over every triangle for a subset of points: exactness and per-point cost
    sub = np.arange(0, len(pts), max(1, len(pts) // 300))

    def brute() -> np.ndarray:
        out = np.empty(len(sub))
        a, b, c = coarse[tri[:, 0]], coarse[tri[:, 1]], coarse[tri[:, 2]]
        for i, k in enumerate(sub):
            p = np.broadcast_to(pts[k], a.shape)
            q, _ = closest_point_on_triangles(p, a, b, c)
            out[i] = np.sqrt(((p - q) ** 2).sum(1).min())
        return out

    t_brute = _median_time(brute, 1) * len(pts) / len(sub)
    line += (
        f"; exhaustive search {t_brute:.1f} s extrapolated (x{t_brute / t_ours:.0f} slower), "
        f"max |difference| on {len(sub)} points {np.abs(d_ours[sub] - brute()).max():.1e} mm"
    )
    try:
        import trimesh

        mesh = trimesh.Trimesh(coarse, tri, process=False)
        t_tm = _median_time(lambda: trimesh.proximity.closest_point(mesh, pts), args.repeats)
        _, d_tm, _ = trimesh.proximity.closest_point(mesh, pts)
        line += (
            f", trimesh {t_tm * 1000:.0f} ms (x{t_tm / t_ours:.1f}); "
            f"max |distance difference| {np.abs(d_ours - d_tm).max():.2e} mm"
        )
    except ImportError:
        line += " (trimesh not installed: no comparison)"
    print(line)


if __name__ == "__main__":
    main()
