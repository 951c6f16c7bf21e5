"""The MICC numbers published in the paper (Tables 1 and 2), shown on real MICC as published rows.

Values are (mean, std) in mm per condition; None where the paper prints "-". Source: the paper's
Table 1 (average over identity, average over three views) and Table 2 (ablation, average over
identity); see also ``ANCHORS.md``.
"""

from __future__ import annotations

Cell = tuple[float, float] | None
Row = tuple[str, dict[str, Cell]]

CONDITIONS: tuple[str, ...] = ("Cooperative", "Indoor", "Outdoor")


def _row(name: str, coop: Cell, indoor: Cell, outdoor: Cell) -> Row:
    return name, dict(zip(CONDITIONS, (coop, indoor, outdoor), strict=True))


#: Table 1, by protocol.
TABLE1: dict[str, list[Row]] = {
    "identity": [
        _row("Tran17", (1.93, 0.27), (2.02, 0.25), (1.86, 0.23)),
        _row("Genova18", (1.50, 0.13), (1.50, 0.11), (1.48, 0.11)),
        _row("Paper (full)", (1.17, 0.27), (1.20, 0.28), (1.21, 0.28)),
    ],
    "three_views": [
        _row("Tran17", (1.40, 0.29), (1.38, 0.32), None),
        _row("Tewari17", (1.37, 0.32), (1.29, 0.27), None),
        _row("Genova18", (1.37, 0.35), (1.26, 0.31), None),
        _row("MVF-Net (multi-view)", (1.22, 0.25), (1.23, 0.24), None),
        _row("Paper (full)", (1.16, 0.29), (1.24, 0.30), (1.22, 0.28)),
    ],
}

#: Table 2 (average over identity).
TABLE2: list[Row] = [
    _row("Paper w/o L_recog", (1.39, 0.73), (1.40, 0.82), (1.54, 0.76)),
    _row("Paper w/o L_adv", (1.27, 0.27), (1.23, 0.26), (1.24, 0.26)),
    _row("Paper full model", (1.17, 0.27), (1.20, 0.28), (1.21, 0.28)),
]
