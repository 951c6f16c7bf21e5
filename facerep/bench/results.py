"""Per-subject bench scores and their aggregation into the rows of the paper's Tables 1 and 2.

A `Score` is one number of one method on one subject's video under one protocol. `summarise`
turns a list of scores into `TableRow`s: per condition, the mean and the standard deviation over
subjects (population std, ddof = 0, as for a fixed set of subjects) and the subject count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from facerep.bench.published import CONDITIONS, Row

KINDS: tuple[str, ...] = ("run", "baseline", "published")


@dataclass
class Score:
    """One measured error.

    Attributes:
        method: run or baseline name.
        kind: "run" or "baseline".
        protocol: "identity" or "three_views".
        condition: "Cooperative", "Indoor" or "Outdoor".
        subject: subject id (e.g. "subject_01").
        mean: mean point-to-plane error, mm.
        rmse: root mean square point-to-plane error, mm.
        spread: for runs, the mean per-vertex spread (mm) of the per-frame neutral shapes of the
            video around their mean (how consistent the identity is over the frames), else NaN.
        frames: frames used.
    """

    method: str
    kind: str
    protocol: str
    condition: str
    subject: str
    mean: float
    rmse: float
    spread: float = float("nan")
    frames: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Cell:
    """Mean and std over subjects of one (method, protocol, condition); None values print as '-'."""

    mean: float | None
    std: float | None
    n: int = 0
    spread: float | None = None


@dataclass
class TableRow:
    """One row of a table: a method and one `Cell` per condition."""

    method: str
    kind: str
    cells: dict[str, Cell] = field(default_factory=dict)
    checkpoint: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "kind": self.kind,
            "checkpoint": self.checkpoint,
            **{c: asdict(self.cells[c]) for c in CONDITIONS},
        }


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def summarise(
    scores: Sequence[Score],
    protocol: str,
    *,
    statistic: str = "mean",
    methods: Sequence[str] | None = None,
    checkpoints: dict[str, str] | None = None,
) -> list[TableRow]:
    """Rows (in `methods` order, else first-seen order) of one protocol's block.

    Args:
        scores: all scores of the bench.
        protocol: which block.
        statistic: "mean" (the paper's) or "rmse": which per-subject number is aggregated.
        methods: restrict to and order by these names.
        checkpoints: method -> checkpoint name, shown in the rows of runs.
    """
    if statistic not in ("mean", "rmse"):
        raise ValueError(f"unknown statistic {statistic!r}; choose 'mean' or 'rmse'")
    chosen = [s for s in scores if s.protocol == protocol]
    order = list(methods) if methods is not None else list(dict.fromkeys(s.method for s in chosen))
    rows = []
    for method in order:
        mine = [s for s in chosen if s.method == method]
        if not mine:
            continue
        row = TableRow(method, mine[0].kind, checkpoint=(checkpoints or {}).get(method, ""))
        for cond in CONDITIONS:
            vals = _finite(getattr(s, statistic) for s in mine if s.condition == cond)
            spreads = _finite(s.spread for s in mine if s.condition == cond)
            if vals.size == 0:
                row.cells[cond] = Cell(None, None, 0)
                continue
            row.cells[cond] = Cell(
                float(vals.mean()),
                float(vals.std()),
                int(vals.size),
                float(spreads.mean()) if spreads.size else None,
            )
        rows.append(row)
    return rows


def published_rows(rows: Sequence[Row]) -> list[TableRow]:
    """`TableRow`s (kind "published") of numbers copied from the paper."""
    out = []
    for name, cells in rows:
        out.append(
            TableRow(
                name,
                "published",
                {c: Cell(v[0], v[1], 0) if v is not None else Cell(None, None, 0) for c, v in cells.items()},
            )
        )
    return out
