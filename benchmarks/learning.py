"""Learning efficiency: held-out shape error against wall-clock time for a recipe with overrides.

Trains ``facerep run RECIPE --set ...`` in a child process for a time budget (killed when it runs
out), with held-out validation on (``train.validate``), then prints the validation curve and appends one
summary line per run to ``OUT/learning.jsonl``; ``OUT/learning.png`` draws every run of that file
(held-out error / mean face error against minutes), so variants run one after another compare in one
picture.

    OMP_NUM_THREADS=1 python benchmarks/learning.py demo --minutes 8 --label no_adv \
        --set losses.adversarial.weight=0 --out runs/learning

Run two at once only with ``--threads 1`` each on a 2-core machine, and compare runs measured under the
same load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerep.train.curves import read_metrics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe")
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the training")
    parser.add_argument("--label", required=True, help="name of this variant (run folder and legend)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="recipe override a.b=value")
    parser.add_argument("--out", type=Path, default=Path("runs/learning"))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--every", type=int, default=50, help="validate every N steps")
    parser.add_argument("--identities", type=int, default=24, help="held-out labelled identities")
    args = parser.parse_args()

    run_dir = args.out / args.label
    if run_dir.exists():
        parser.error(f"{run_dir} exists: choose another --label or remove it")
    validate = f"{{every: {args.every}, identities: {args.identities}}}"
    command = [sys.executable, "-m", "facerep", "run", args.recipe, "--out", str(run_dir), "--quiet"]
    for item in [f"train.validate={validate}", *args.sets]:
        given = item.startswith("+") or _exists(args.recipe, item)
        command += ["--set", item if given else f"+{item}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        child.wait(timeout=args.minutes * 60)
        finished = True
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()
        finished = False
    wall = time.perf_counter() - start
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if "val/shape_mm" in r]
    if not records:
        shutil.rmtree(run_dir, ignore_errors=True)  # a failed start leaves nothing to compare
        raise SystemExit(
            f"no validation record in {run_dir / 'metrics.jsonl'} (child exit {child.returncode})"
        )
    print(f"\n{args.label}: {'finished' if finished else 'stopped at the budget'} after {wall / 60:.1f} min")
    print("| step | min | held-out mm | x mean face | landmark NME % | spread mm |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in records:
        print(
            f"| {r['step']} | {r['elapsed_s'] / 60:.1f} | {r['val/shape_mm']:.3f} | {r['val/ratio']:.3f} "
            f"| {r['val/landmark_nme']:.2f} | {r['val/spread_mm']:.3f} |"
        )
    best = min(records, key=lambda r: r["val/ratio"])
    summary = {
        "label": args.label,
        "recipe": args.recipe,
        "sets": args.sets,
        "threads": args.threads,
        "minutes": round(wall / 60, 2),
        "steps": records[-1]["step"],
        "last_ratio": records[-1]["val/ratio"],
        "best_ratio": best["val/ratio"],
        "mean_face_mm": records[-1]["val/mean_face_mm"],
        "curve": [(r["elapsed_s"], r["step"], r["val/ratio"]) for r in records],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "learning.jsonl", "a") as handle:
        handle.write(json.dumps(summary) + "\n")
    plot(args.out / "learning.jsonl", args.out / "learning.png")
    print(f"\nlast {summary['last_ratio']:.3f}x, best {summary['best_ratio']:.3f}x the mean face's error; "
          f"curves: {args.out / 'learning.png'}")  # fmt: skip


def _exists(recipe: str, item: str) -> bool:
    """Whether the override's key exists in the resolved recipe (plain ``--set``) or must be added (``+``)."""
    from facerep.core.recipe import load_recipe

    key = item.split("=", 1)[0].lstrip("+")
    return load_recipe(recipe).get(key) is not None


def plot(summaries: Path, out: Path) -> None:
    """Held-out error (x the mean face's) against minutes, one line per run in `summaries`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for line in summaries.read_text().splitlines():
        run = json.loads(line)
        minutes = [c[0] / 60 for c in run["curve"]]
        ax.plot(minutes, [c[2] for c in run["curve"]], "o-", ms=3, label=run["label"])
    ax.axhline(1.0, color="k", ls="--", lw=1, label="mean face")
    low, high = ax.get_ylim()
    if high > 1.15:  # a blow-up would flatten every other curve: clip it, say so
        ax.set_ylim(low, 1.15)
        ax.set_title("(clipped at 1.15)", fontsize=8)
    ax.set_xlabel("wall-clock minutes (training)")
    ax.set_ylabel("held-out shape error / mean face's")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
