"""``runs/NAME/curves.png``: training losses and held-out shape error against steps, from metrics.jsonl.

Left: every ``loss/*`` the run logged (log scale; the critic's, which can be negative, on a linear
axis of its own). Right: the held-out shape error (mm) with the mean face's and the landmark read-out
reference as horizontal lines, the identity part alone with its own mean-face line, and the landmark
NME (%) on a second axis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (a torn last line is ignored)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float) and "step" in r]
    return [p[0] for p in pairs], [float(p[1]) for p in pairs]


def write_curves(metrics: str | Path, out: str | Path) -> Path:
    """Draw `out` (PNG) from the run's `metrics` file; returns `out`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    loss_keys = sorted({k for r in records for k in r if k.startswith("loss/") and k != "loss/critic"})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in loss_keys:
        steps, values = _series(records, key)
        positive = [(s, v) for s, v in zip(steps, values, strict=True) if v > 0]
        if positive:
            left.plot(*zip(*positive, strict=True), label=key.split("/", 1)[1], lw=1)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_title("training losses (unweighted)")
    if loss_keys:
        left.legend(fontsize=7, ncol=2)
    steps, shape = _series(records, "val/shape_mm")
    if steps:
        right.plot(steps, shape, "o-", color="C0", label="held-out shape error")
        id_steps, identity = _series(records, "val/identity_mm")
        if id_steps:
            right.plot(id_steps, identity, "^-", color="C2", ms=4, label="identity part (neutral)")
        for key, style, colour, label in (
            ("val/mean_face_mm", "--", "C0", "mean face"),
            ("val/identity_mean_face_mm", "--", "C2", "mean face, identity"),
            ("val/readout_mm", ":", "C0", "linear fit from true landmarks"),
        ):
            _, ref = _series(records, key)
            if ref:
                right.axhline(ref[-1], ls=style, color=colour, lw=1, label=f"{label} {ref[-1]:.3f}")
        right.set_ylabel("mm")
        nme_steps, nme = _series(records, "val/landmark_nme")
        twin = right.twinx()
        twin.plot(nme_steps, nme, "s-", color="C3", ms=3, lw=1, label="landmark NME (%)")
        twin.set_ylabel("landmark NME (%)", color="C3")
        right.legend(fontsize=8, loc="upper right")
    else:
        right.text(0.5, 0.5, "no validation (train.validate)", ha="center", va="center")
    right.set_xlabel("step")
    right.set_title("held-out identities")
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial")
    fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    tmp.replace(out)
    return out
