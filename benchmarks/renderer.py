"""Speed and memory of the ``sh_rasterizer`` renderer, and its speed-up over a naive per-triangle loop.

Usage::

    python benchmarks/renderer.py              # batch {1, 8, 32} x {64, 128, 224} px x {2k, 37k} vertices
    python benchmarks/renderer.py --quick      # reduced grid
    python benchmarks/renderer.py --device cuda --no-write

For every configuration it times the forward pass (inputs requiring gradients, as in training) and the
forward + backward pass (loss = image sum) in the same iterations, as medians over ``--repeats`` runs
after one warm-up, and records the peak memory of the warm-up forward + backward above the level
before it (CUDA: the allocator's peak; CPU: peak resident set size sampled every millisecond after
returning freed heap memory to the system with ``malloc_trim``). In the same run it times the vectorised
rasteriser against `facerep.geometry.rasterize_reference` (a Python loop over triangles) on a small
case and reports the ratio. The mesh is the synthetic face model's mean face when that plugin is
available, else a procedural face-sized cap. Results go to the "Renderer" section of
``benchmarks/RESULTS.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from facerep.geometry.camera import pose_code
from facerep.geometry.rasterize import rasterize
from facerep.geometry.rasterize_primitives import ellipsoid_cap, mesh_model
from facerep.geometry.rasterize_reference import rasterize_reference
from facerep.geometry.sh import light_from_direction
from facerep.plugins.renderers.sh_rasterizer import SHRasterizer

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Renderer"


def _face_mesh(num_vertices: int) -> tuple[object, np.ndarray, np.ndarray, str]:
    """(face-model-like object, vertices (N, 3) mm, albedo (N, 3), description)."""
    try:
        from facerep.plugins.facemodels.synthetic import synthetic

        model = synthetic(vertices=num_vertices)
        albedo = np.asarray(model.albedo_mean, dtype=np.float32)
        return model, np.asarray(model.mean, dtype=np.float32), albedo, "synthetic face model (mean face)"
    except ImportError:
        v, t = ellipsoid_cap(num_vertices)
        return mesh_model(v, t), v, np.full_like(v, 0.6), "procedural ellipsoid cap"


class _PeakRSS:
    """Samples this process's resident set size in a thread; ``peak`` is the maximum seen (bytes)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * self._page
        except OSError:
            return 0

    def __enter__(self) -> _PeakRSS:
        self.base = self._rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trim() -> None:
    """Return freed heap memory to the OS so that RSS growth measures the next allocation peak."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: RSS growth is then a lower bound
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _time(fn, repeats: int, device: torch.device) -> float:  # noqa: ANN001
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_config(batch: int, size: int, num_vertices: int, device: torch.device, repeats: int, **kw) -> dict:  # noqa: ANN003
    """Time one configuration; returns a row dict (seconds, MiB)."""
    model, v, albedo_np, _ = _face_mesh(num_vertices)
    renderer = SHRasterizer(model, size, **kw).to(device)
    vertices = torch.from_numpy(v).to(device)[None].repeat(batch, 1, 1).requires_grad_(True)
    albedo = torch.from_numpy(albedo_np).to(device)[None].repeat(batch, 1, 1).requires_grad_(True)
    pose = pose_code(yaw=15.0, pitch=-5.0, degrees=True, batch=batch).to(device).requires_grad_(True)
    light = light_from_direction((0.3, 0.4, 1.0), 0.3, batch=batch).to(device).requires_grad_(True)

    def step() -> tuple[float, float, float]:
        """One forward + backward: (forward s, total s, coverage)."""
        _sync(device)
        start = time.perf_counter()
        out = renderer(vertices, albedo, pose, light)
        _sync(device)
        mid = time.perf_counter()
        out.image.sum().backward()
        _sync(device)
        end = time.perf_counter()
        for t in (vertices, albedo, pose, light):
            t.grad = None
        return mid - start, end - start, float(out.mask.detach().mean())

    # Warm-up, measuring memory.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        coverage = step()[2]
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        _trim()
        with _PeakRSS() as rss:
            coverage = step()[2]
        peak = rss.peak - rss.base
    runs = [step() for _ in range(repeats)]
    return {
        "batch": batch,
        "size": size,
        "vertices": int(v.shape[0]),
        "triangles": int(np.asarray(model.triangles).shape[0]),
        "forward_s": statistics.median(r[0] for r in runs),
        "forward_backward_s": statistics.median(r[1] for r in runs),
        "peak_mib": peak / 2**20,
        "coverage": coverage,
    }


def bench_reference(device: torch.device, repeats: int) -> dict:
    """Vectorised vs per-triangle-loop rasterisation on batch 1, 64 px, ~2k vertices (same inputs)."""
    model, v, _, _ = _face_mesh(2000)
    size = 64
    renderer = SHRasterizer(model, size)
    vertices = torch.from_numpy(v)[None]
    pose = pose_code(yaw=15.0, pitch=-5.0, degrees=True)
    out = renderer(vertices, torch.full_like(vertices, 0.5), pose, torch.zeros(1, 27))
    from facerep.geometry.camera import project

    points, depth = project(vertices, pose, size)
    tri = renderer.triangles
    ref = rasterize_reference(points, depth, tri, size)
    fast = rasterize(points.to(device), depth.to(device), tri.to(device), size).cpu()
    t_ref = _time(lambda: rasterize_reference(points, depth, tri, size), 1, torch.device("cpu"))
    pd, dd, td = points.to(device), depth.to(device), tri.to(device)
    t_fast = _time(lambda: rasterize(pd, dd, td, size), max(repeats, 3), device)
    return {
        "triangles": int(tri.shape[0]),
        "identical": bool(torch.equal(ref, fast)) and bool(torch.equal(ref, out.triangle_ids)),
        "reference_s": t_ref,
        "vectorised_s": t_fast,
        "speedup": t_ref / t_fast,
    }


def _markdown(rows: list[dict], ref: dict, extra: list[dict], args: argparse.Namespace, mesh: str) -> str:
    device = args.device
    if device == "cuda":
        machine = torch.cuda.get_device_name(0)
    else:
        machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    cmd = "python benchmarks/renderer.py" + (" --quick" if args.quick else "") + f" --device {device}"
    cmd += f" --repeats {args.repeats}" + (f" --threads {args.threads}" if args.threads else "")
    lines = [
        f"Command: `{cmd}`; machine: {machine} ({platform.system()}, torch {torch.__version__}); "
        f"mesh: {mesh}; pose yaw 15 deg, pitch -5 deg; medians of {args.repeats} runs after a warm-up.",
        "",
        f"Vectorised rasteriser vs naive per-triangle Python loop (batch 1, 64 px, {ref['triangles']} "
        f"triangles, same run): {ref['reference_s'] * 1e3:.1f} ms vs {ref['vectorised_s'] * 1e3:.2f} ms, "
        f"**{ref['speedup']:.0f}x faster**; identical triangle ids: {ref['identical']}.",
        "",
        "| batch | px | vertices | triangles | forward ms | fwd+bwd ms | peak MiB (fwd+bwd) | coverage |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['size']} | {r['vertices']} | {r['triangles']} | "
            f"{r['forward_s'] * 1e3:.1f} | {r['forward_backward_s'] * 1e3:.1f} | {r['peak_mib']:.0f} | "
            f"{r['coverage']:.2f} |"
        )
    if extra:
        lines += [
            "",
            "Silhouette anti-aliasing (`antialias: true`) against hard edges, same configuration:",
            "",
        ]
        for r in extra:
            lines.append(
                f"- batch {r['batch']}, {r['size']} px, {r['vertices']} vertices: fwd+bwd "
                f"{r['hard_s'] * 1e3:.1f} ms hard vs {r['forward_backward_s'] * 1e3:.1f} ms antialiased "
                f"(x{r['forward_backward_s'] / r['hard_s']:.2f})"
            )
    lines += [
        "",
        "Memory on CPU is the peak resident-set growth during one forward + backward (sampled), so it is "
        "approximate; the rasteriser bounds its own working set with `max_candidates` (default 2^20 "
        "triangle-pixel pairs, about 150 MB).",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace the body of the "## Renderer" section of RESULTS.md (other sections untouched).

    Paragraphs of the old section written as block quotes (lines starting with "> ", e.g. figures
    measured by other scripts) are kept, after the new text.
    """
    content = path.read_text() if path.exists() else "# Benchmark results\n\n"
    lines = content.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SECTION)), None)
    if start is None:
        content = content.rstrip("\n") + f"\n\n{SECTION} (`python benchmarks/renderer.py`)\n\n{text}"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        notes = "".join(line + "\n" for line in lines[start + 1 : end] if line.startswith("> "))
        body = (
            "\n"
            + text
            + ("\n" + notes.rstrip("\n") + "\n" if notes else "")
            + ("\n" if end < len(lines) else "")
        )
        content = "".join(lines[: start + 1]) + body + "".join(lines[end:])
    path.write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="reduced grid (batch 1, 8; 64, 128 px; 2k vertices)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.quick:
        grid = [(b, s, n) for n in (2000,) for s in (64, 128) for b in (1, 8)] + [(8, 224, 37000)]
    else:
        grid = [(b, s, n) for n in (2000, 37000) for s in (64, 128, 224) for b in (1, 8, 32)]
    mesh = _face_mesh(2000)[3]
    ref = bench_reference(device, args.repeats)
    print(
        f"reference loop {ref['reference_s'] * 1e3:.1f} ms vs vectorised {ref['vectorised_s'] * 1e3:.2f} ms: "
        f"x{ref['speedup']:.0f} (identical={ref['identical']})",
        flush=True,
    )
    rows = []
    for batch, size, n in grid:
        row = bench_config(batch, size, n, device, args.repeats)
        rows.append(row)
        print(
            f"B={batch:2d} {size:3d}px N={row['vertices']:5d}: fwd {row['forward_s'] * 1e3:8.1f} ms  "
            f"fwd+bwd {row['forward_backward_s'] * 1e3:8.1f} ms  peak {row['peak_mib']:7.0f} MiB",
            flush=True,
        )
    aa_batch = 8 if args.quick else 32
    hard = next(
        (r for r in rows if (r["batch"], r["size"], r["vertices"] < 5000) == (aa_batch, 64, True)), None
    )
    extra = []
    if hard is not None:
        aa = bench_config(aa_batch, 64, 2000, device, args.repeats, antialias=True)
        aa["hard_s"] = hard["forward_backward_s"]
        extra.append(aa)
        print(f"antialias: x{aa['forward_backward_s'] / aa['hard_s']:.2f}", flush=True)
    text = _markdown(rows, ref, extra, args, mesh)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"wrote the renderer section of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
