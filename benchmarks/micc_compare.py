"""Is run A better than run B on MICC, beyond the subjects' noise? Paired per-subject differences.

Reads the ``per_subject.csv`` that ``facerep bench`` writes for each run (``RUN/bench/per_subject.csv``,
or the folder given), pairs the two runs' errors subject by subject for each protocol and condition,
and prints the mean difference A - B (mm) with its standard error over subjects (std / sqrt(n)), the
mean ratio to the mean face, and how many subjects A wins. The synthetic MICC has 12 subjects: a
condition's mean moves by a few percent between fits of equal quality, so a difference smaller than
about two standard errors is not a finding.

    python benchmarks/micc_compare.py runs/demo runs/demo_before
    python benchmarks/micc_compare.py runs/demo/bench/per_subject.csv runs/old/bench/per_subject.csv
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

Key = tuple[str, str]  # (protocol, condition)


def read_errors(path: Path) -> tuple[str, dict[Key, dict[str, float]], dict[str, float]]:
    """per_subject.csv -> (run name, {(protocol, condition): {subject: mm}}, {subject: mean-face mm})."""
    csv_path = path / "bench" / "per_subject.csv" if path.is_dir() else path
    if path.is_dir() and not csv_path.is_file():
        csv_path = path / "per_subject.csv"
    if not csv_path.is_file():
        raise SystemExit(f"{path}: no per_subject.csv (run `facerep bench RUN` first)")
    runs: dict[str, dict[Key, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    mean_face: dict[str, float] = {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["method"] == "mean_face":
                mean_face[row["subject"]] = float(row["mean"])
            elif row["kind"] != "baseline":
                runs[row["method"]][(row["protocol"], row["condition"])][row["subject"]] = float(row["mean"])
    if len(runs) != 1:
        raise SystemExit(f"{csv_path}: expected one trained run, found {sorted(runs) or 'none'}")
    name, errors = next(iter(runs.items()))
    return name, errors, mean_face


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", type=Path, help="run folder (or its per_subject.csv)")
    parser.add_argument("b", type=Path, help="run folder (or its per_subject.csv) to compare against")
    args = parser.parse_args()
    name_a, a, base = read_errors(args.a)
    name_b, b, _ = read_errors(args.b)
    print(f"A = {name_a} ({args.a}), B = {name_b} ({args.b}); mm, mean over subjects")
    print(f"{'protocol':12s} {'condition':12s} {'A':>7s} {'B':>7s} {'A/mf':>6s} {'B/mf':>6s} "
          f"{'A - B':>7s} {'+-se':>6s} {'A wins':>7s}")  # fmt: skip
    for key in sorted(a):
        subjects = sorted(set(a[key]) & set(b.get(key, {})) & set(base))
        if not subjects:
            continue
        diffs = [a[key][s] - b[key][s] for s in subjects]
        n = len(diffs)
        mean_diff = sum(diffs) / n
        se = math.sqrt(sum((d - mean_diff) ** 2 for d in diffs) / max(n - 1, 1) / n)
        mean_a = sum(a[key][s] for s in subjects) / n
        mean_b = sum(b[key][s] for s in subjects) / n
        mf = sum(base[s] for s in subjects) / n
        wins = sum(d < 0 for d in diffs)
        print(f"{key[0]:12s} {key[1]:12s} {mean_a:7.3f} {mean_b:7.3f} {mean_a / mf:6.3f} {mean_b / mf:6.3f} "
              f"{mean_diff:+7.3f} {se:6.3f} {wins:>3d}/{n:<3d}")  # fmt: skip


if __name__ == "__main__":
    main()
