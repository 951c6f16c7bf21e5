"""ROC curves of several methods in one PNG (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facerep.bench.roc import RocCurve


def plot_roc(curves: Sequence[tuple[str, RocCurve, float]], path: str | Path, *, title: str = "ROC") -> Path:
    """Draw TAR against FAR (log scale) for each (label, curve, AUC); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=110)
    lowest = 1.0
    for label, curve, auc in curves:
        far = np.asarray(curve.far, dtype=np.float64)
        positive = far[far > 0]
        if positive.size:
            lowest = min(lowest, float(positive.min()))
        ax.step(np.clip(far, 1e-6, 1.0), curve.tar, where="post", label=f"{label} (AUC {auc:.3f})")
    floor = max(1e-4, lowest / 2.0)
    grid = np.logspace(np.log10(floor), 0.0, 50)
    ax.plot(grid, grid, color="0.6", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
