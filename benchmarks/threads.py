"""CPU threads on a busy machine: how OpenMP's wait policy changes a training step, idle and under load.

    python benchmarks/threads.py [--threads 1 2] [--steps 4] [--rounds 2] [--burners N]

PyTorch's CPU kernels run on an OpenMP thread pool. Between parallel regions the pool's threads
spin-wait for a while before they sleep (libgomp: 300,000 spins when ``OMP_WAIT_POLICY`` is unset).
On an idle machine that saves a wake-up; on a machine whose cores are busy with other work, a
spinning thread burns the time slice its partner needs to reach the barrier, and a step can become
many times slower with two threads than with one.

The step: a ResNet-18 (torchvision, 1,000 classes) forward + backward + SGD update on a batch of 24
images of 64 x 64 px, float32. Each (setting, threads) pair runs in a fresh Python process, because
the OpenMP runtime reads its environment once, when torch loads it. The settings are the runtime's
default, ``OMP_WAIT_POLICY=PASSIVE`` and the runtime's own knob: ``GOMP_SPINCOUNT`` (0 and a short
10,000 spins) for GNU libgomp, ``KMP_BLOCKTIME`` (0 and 1 ms) for Intel / LLVM OpenMP, found from the
libraries torch loads (``torch.__config__.parallel_info()`` names the backend).

"Loaded" starts ``--burners`` busy-looping processes (default: one per CPU) before the workers and
stops them after; "idle" runs with none. Idle and loaded phases alternate for ``--rounds`` rounds, so
every figure of the table is measured side by side in one run. The machine's own background load is
measured before each phase (share of all CPUs busy over one second, from /proc/stat) and printed: on
a shared machine "idle" means "without the extra burners", and ``--nice -10`` (as root) gives the
measured processes most of the CPU over the machine's other work. Prints a Markdown table for
benchmarks/RESULTS.md: seconds per step (median over all timed steps of all rounds) and the ratio to
the runtime's default in the same column.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Environment variables the settings change; removed from every worker's environment first.
POLICY_VARS: tuple[str, ...] = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

WORKER = r"""
import json, os, statistics, sys, time
import torch, torch.nn.functional as F, torchvision

threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(threads)
model = torchvision.models.resnet18(num_classes=1000)
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
x = torch.randn(24, 3, 64, 64)
y = torch.randint(0, 1000, (24,))

def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()

step()  # warm-up: allocations, oneDNN primitive creation
times = []
for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "threads": torch.get_num_threads()}))
"""


def openmp_runtime() -> str:
    """'gnu' (libgomp), 'intel' (libiomp5 / LLVM libomp) or 'unknown': the OpenMP library torch loads."""
    import torch

    if "OpenMP" not in torch.__config__.parallel_info():
        return "unknown"
    maps = Path("/proc/self/maps")
    names = maps.read_text() if maps.exists() else " ".join(os.listdir(Path(torch.__file__).parent / "lib"))
    if "libgomp" in names:
        return "gnu"
    if "libiomp" in names or "libomp" in names:
        return "intel"
    return "unknown"


def settings_for(runtime: str) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) of every measured setting for an OpenMP runtime."""
    out: list[tuple[str, dict[str, str]]] = [
        ("default (unset)", {}),
        ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
    ]
    if runtime == "gnu":
        out += [
            ("GOMP_SPINCOUNT=0", {"GOMP_SPINCOUNT": "0"}),
            ("GOMP_SPINCOUNT=10000", {"GOMP_SPINCOUNT": "10000"}),
        ]
    elif runtime == "intel":
        out += [("KMP_BLOCKTIME=0", {"KMP_BLOCKTIME": "0"}), ("KMP_BLOCKTIME=1", {"KMP_BLOCKTIME": "1"})]
    return out


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy (0..1) over `seconds`, from /proc/stat; NaN where there is none."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return float("nan")

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def start_burners(count: int) -> list[subprocess.Popen]:
    """`count` processes that busy-loop until stopped (the simulated load)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for proc in burners:
        proc.terminate()
    for proc in burners:
        proc.wait()


def measure(env_extra: dict[str, str], threads: int, steps: int) -> list[float]:
    """Seconds of each timed step of one fresh worker process with `env_extra` and `threads` threads."""
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
    env.update(env_extra)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(threads), str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({env_extra}, {threads} threads):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["threads"] != threads:
        raise RuntimeError(f"worker ran {result['threads']} threads, asked {threads}")
    return result["times"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per worker (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="idle / loaded rounds, alternating")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="busy loops under load")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness change for this script, its workers and its burners (e.g. -10 as root: on a machine "
        "busy with other work, the measured processes then get most of the CPU, close to an idle machine)",
    )
    args = parser.parse_args()
    if args.nice:
        try:
            os.nice(args.nice)
        except PermissionError:
            parser.error(f"--nice {args.nice}: not permitted (a negative change needs root)")

    import torch

    runtime = openmp_runtime()
    settings = settings_for(runtime)
    loads = ("idle", "loaded")
    times: dict[tuple[str, str, int], list[float]] = {}
    background: dict[str, list[float]] = {load: [] for load in loads}
    started = time.perf_counter()
    print(
        f"torch {torch.__version__}, OpenMP runtime: {runtime}, {os.cpu_count()} CPUs, "
        f"{platform.machine()} {platform.system()}; {args.burners} burner(s) under load; "
        f"niceness {os.nice(0)}",
        flush=True,
    )
    for rnd in range(args.rounds):
        for load in loads:
            background[load].append(cpu_busy())
            burners = start_burners(args.burners) if load == "loaded" else []
            try:
                time.sleep(0.5 if burners else 0.0)
                for label, env in settings:
                    for threads in args.threads:
                        t = measure(env, threads, args.steps)
                        times.setdefault((label, load, threads), []).extend(t)
                        print(
                            f"round {rnd + 1} {load:6s} {label:24s} {threads} thread(s): "
                            + " ".join(f"{x:.2f}" for x in t)
                            + " s",
                            flush=True,
                        )
            finally:
                stop_burners(burners)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    for load in loads:
        shares = ", ".join(f"{100 * b:.0f}%" for b in background[load])
        print(f"background CPU busy before each {load} phase (before its burners): {shares}")

    columns = [(load, threads) for load in loads for threads in args.threads]
    median = {key: statistics.median(v) for key, v in times.items()}
    default = settings[0][0]
    head = "| setting | " + " | ".join(f"{load}, {t} thread{'s' * (t > 1)}" for load, t in columns) + " |"
    print("\nseconds per step (ratio to the default in the same column)\n")
    print(head)
    print("|---|" + "---:|" * len(columns))
    for label, _ in settings:
        cells = []
        for load, threads in columns:
            value = median[(label, load, threads)]
            cells.append(f"{value:.2f} ({value / median[(default, load, threads)]:.2f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if len(args.threads) > 1:
        lo, hi = min(args.threads), max(args.threads)
        print(f"\n{hi} threads / {lo} thread, per setting (below 1: the extra thread helps)\n")
        print("| setting | " + " | ".join(loads) + " |")
        print("|---|" + "---:|" * len(loads))
        for label, _ in settings:
            cells = [f"{median[(label, load, hi)] / median[(label, load, lo)]:.2f}x" for load in loads]
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
