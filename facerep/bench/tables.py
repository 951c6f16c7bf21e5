"""The paper's Tables 1 and 2 from bench results: printed with rich, saved as Markdown, CSV and JSON.

Table 1 has one block per protocol ("Average over identity", "Average over three views"); each row
is a run, a baseline or (on real MICC) a published row, with the mean and std over subjects for the
Cooperative, Indoor and Outdoor videos. Table 2 is the ablation table (runs only, average over
identity) with the paper's Table 2 rows as published rows on real MICC, plus each run's identity
spread over a video's frames. Every file carries the data root, the runs' folders and checkpoints, the
statistic and the direction: the Markdown and CSV tables in their head, ``per_subject.csv`` in its
provenance columns.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from facerep.bench.protocols import PROTOCOL_TITLES
from facerep.bench.published import CONDITIONS
from facerep.bench.results import Cell, Score, TableRow

CSV_COLUMNS: tuple[str, ...] = (
    "block",
    "method",
    "kind",
    "checkpoint",
    *(f"{c}_{s}" for c in CONDITIONS for s in ("mean", "std", "n")),
)
#: Per-subject columns that say where a score comes from (the run's folder and checkpoint, the data, the
#: distance's direction and crop radius in mm).
#: ``alignment`` is how the subject's prediction was first aligned to its scan (scan landmarks or the
#: estimated nose tip, then ICP).
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "run_path",
    "checkpoint",
    "data_root",
    "direction",
    "radius_mm",
    "alignment",
)
SUBJECT_COLUMNS: tuple[str, ...] = (
    "method",
    "kind",
    "protocol",
    "condition",
    "subject",
    "mean",
    "rmse",
    "spread",
    "frames",
    *PROVENANCE_COLUMNS,
)


@dataclass
class BenchTables:
    """Everything the table files hold.

    Attributes:
        table1: protocol -> rows.
        table2: ablation rows.
        meta: data root, runs (name, path, checkpoint), statistic, direction, and so on.
    """

    table1: dict[str, list[TableRow]]
    table2: list[TableRow]
    meta: dict[str, Any] = field(default_factory=dict)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _spread(row: TableRow) -> str:
    vals = [row.cells[c].spread for c in CONDITIONS if row.cells[c].spread is not None]
    return "-" if not vals else f"{sum(vals) / len(vals):.3f}"


def _label(row: TableRow) -> str:
    if row.kind == "published":
        return f"{row.method} (published)"
    if row.kind == "baseline":
        return f"{row.method} (baseline)"
    return row.method


# -- Markdown -----------------------------------------------------------------------------------------


def _md_block(rows: Sequence[TableRow], *, spread: bool = False) -> list[str]:
    head = "| Method | " + " | ".join(f"{c} mean | {c} std" for c in CONDITIONS) + " |"
    sep = "|---|" + "---:|---:|" * len(CONDITIONS)
    if spread:
        head += " Frame spread |"
        sep += "---:|"
    lines = [head, sep]
    for row in rows:
        cells = " | ".join(f"{_fmt(row.cells[c].mean)} | {_fmt(row.cells[c].std)}" for c in CONDITIONS)
        line = f"| {_label(row)} | {cells} |"
        if spread:
            line += f" {_spread(row)} |"
        lines.append(line)
    return lines


def alignment_summary(per_subject: dict[str, str]) -> str:
    """How predictions were first aligned to the scans, over subjects: ``scan landmarks, then ICP`` or
    ``estimated nose tip (2 subjects) / scan landmarks (3 subjects), then ICP``."""
    counts: dict[str, int] = {}
    for how in per_subject.values():
        counts[how] = counts.get(how, 0) + 1
    if not counts:
        return "landmarks or nose tip, then ICP"
    if len(counts) == 1:
        return f"{next(iter(counts))}, then ICP"
    return " / ".join(f"{how} ({n} subjects)" for how, n in sorted(counts.items())) + ", then ICP"


def _md_meta(meta: dict[str, Any]) -> list[str]:
    lines = [f"- data root: `{meta.get('data_root', '?')}`"]
    for run in meta.get("runs", []):
        where = f" (`{run['path']}`)" if run.get("path") else ""
        lines.append(f"- run `{run['name']}`{where}: checkpoint `{run['checkpoint']}`")
    lines.append(
        f"- error: {meta.get('statistic', 'mean')} point-to-plane distance (mm), direction "
        f"{meta.get('direction', 'pred_to_scan')}, scan cropped to {meta.get('radius', 95.0)} mm around "
        f"the nose tip, similarity alignment ({meta.get('alignment', 'landmarks, then ICP')}); mean and std "
        "over subjects"
    )
    lines += [f"- note: {note}" for note in meta.get("notes", [])]
    return lines


def table1_markdown(tables: BenchTables) -> str:
    lines = ["# Table 1: mean error on MICC (mm)", "", *_md_meta(tables.meta), ""]
    for protocol, rows in tables.table1.items():
        lines += [f"## {PROTOCOL_TITLES.get(protocol, protocol)}", "", *_md_block(rows), ""]
    return "\n".join(lines)


def table2_markdown(tables: BenchTables) -> str:
    lines = [
        "# Table 2: shape ablation on MICC, average over identity (mm)",
        "",
        *_md_meta(tables.meta),
        "- frame spread: mean per-vertex deviation (mm) of the per-frame neutral shapes from their average",
        "",
        *_md_block(tables.table2, spread=True),
        "",
    ]
    return "\n".join(lines)


# -- CSV / JSON ---------------------------------------------------------------------------------------


def _csv_row(block: str, row: TableRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "block": block,
        "method": row.method,
        "kind": row.kind,
        "checkpoint": row.checkpoint,
    }
    for c in CONDITIONS:
        cell: Cell = row.cells[c]
        out[f"{c}_mean"] = "" if cell.mean is None else f"{cell.mean:.6f}"
        out[f"{c}_std"] = "" if cell.std is None else f"{cell.std:.6f}"
        out[f"{c}_n"] = cell.n
    return out


def _csv_provenance(meta: dict[str, Any]) -> str:
    """The comment lines that head a table CSV: data root, each run's folder and checkpoint, the error."""
    lines = [f"# data_root={meta.get('data_root', '')}"]
    for run in meta.get("runs", []):
        lines.append(f"# run={run['name']} path={run.get('path', '')} checkpoint={run['checkpoint']}")
    lines.append(
        f"# statistic={meta.get('statistic', 'mean')} direction={meta.get('direction', 'pred_to_scan')} "
        f"radius_mm={meta.get('radius', '')}"
    )
    if meta.get("alignment"):
        lines.append(f"# alignment={meta['alignment']}")
    lines += [f"# note={note}" for note in meta.get("notes", [])]
    return "".join(f"{line}\n" for line in lines)


def _write_csv(path: Path, blocks: dict[str, Sequence[TableRow]], meta: dict[str, Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(_csv_provenance(meta))
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for block, rows in blocks.items():
            for row in rows:
                writer.writerow(_csv_row(block, row))


def write_tables(tables: BenchTables, out_dir: str | Path) -> dict[str, Path]:
    """Write table1/table2 as .md, .csv and .json under `out_dir`; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table1.md": out / "table1.md",
        "table1.csv": out / "table1.csv",
        "table1.json": out / "table1.json",
        "table2.md": out / "table2.md",
        "table2.csv": out / "table2.csv",
        "table2.json": out / "table2.json",
    }
    paths["table1.md"].write_text(table1_markdown(tables), encoding="utf-8")
    paths["table2.md"].write_text(table2_markdown(tables), encoding="utf-8")
    _write_csv(paths["table1.csv"], tables.table1, tables.meta)
    _write_csv(paths["table2.csv"], {"ablation": tables.table2}, tables.meta)
    t1 = {
        "meta": tables.meta,
        "blocks": {p: [r.as_dict() for r in rows] for p, rows in tables.table1.items()},
    }
    t2 = {"meta": tables.meta, "rows": [r.as_dict() for r in tables.table2]}
    paths["table1.json"].write_text(json.dumps(t1, indent=2) + "\n", encoding="utf-8")
    paths["table2.json"].write_text(json.dumps(t2, indent=2) + "\n", encoding="utf-8")
    return paths


def write_per_subject(scores: Sequence[Score], path: str | Path, meta: dict[str, Any]) -> Path:
    """One CSV line per (method, protocol, condition, subject) score, each carrying its provenance.

    Args:
        scores: the bench's scores (errors in mm).
        path: the CSV file to write.
        meta: the tables' meta (`BenchTables.meta`): ``data_root``, ``runs`` (name, path, checkpoint),
            ``direction``, ``radius``. A run's lines get its folder and checkpoint (``run_path``,
            ``checkpoint``; empty for baselines), every line the data root, the point-to-plane direction
            and the scan crop radius (mm), so a line copied or merged elsewhere still says what made it.
            The file has no comment lines: any CSV reader takes it as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = {str(run["name"]): run for run in meta.get("runs", [])}
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(SUBJECT_COLUMNS))
        writer.writeheader()
        for s in scores:
            row = s.as_dict()
            for key in ("mean", "rmse", "spread"):
                row[key] = f"{row[key]:.6f}"
            run = runs.get(s.method, {}) if s.kind == "run" else {}
            row["run_path"] = run.get("path", "")
            row["checkpoint"] = run.get("checkpoint", "")
            row["data_root"] = meta.get("data_root", "")
            row["direction"] = meta.get("direction", "")
            row["radius_mm"] = meta.get("radius", "")
            row["alignment"] = meta.get("alignment_per_subject", {}).get(s.subject, "")
            writer.writerow(row)
    return path


# -- rich ---------------------------------------------------------------------------------------------


def _rich_table(title: str, rows: Sequence[TableRow], *, spread: bool = False) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Method")
    for c in CONDITIONS:
        table.add_column(f"{c}\nmean", justify="right")
        table.add_column("std", justify="right")
    if spread:
        table.add_column("frame\nspread", justify="right")
    style = {"run": "bold", "baseline": "cyan", "published": "dim"}
    for row in rows:
        values = [v for c in CONDITIONS for v in (_fmt(row.cells[c].mean), _fmt(row.cells[c].std))]
        if spread:
            values.append(_spread(row))
        table.add_row(Text(_label(row)), *values, style=style.get(row.kind))  # run names are text
    return table


def print_tables(tables: BenchTables, console: Console | None = None) -> None:
    """Print Table 1 (one block per protocol) and Table 2 with rich."""
    console = console or Console()
    for protocol, rows in tables.table1.items():
        console.print(_rich_table(f"Table 1 - {PROTOCOL_TITLES.get(protocol, protocol)} (mm)", rows))
    if tables.table2:
        console.print(
            _rich_table("Table 2 - ablation, average over identity (mm)", tables.table2, spread=True)
        )
    console.print(Text(f"data root: {tables.meta.get('data_root', '?')}"), highlight=False)
    if tables.meta.get("alignment"):
        console.print(Text(f"alignment: {tables.meta['alignment']}"), highlight=False)
    for note in tables.meta.get("notes", []):
        console.print(Text(f"note: {note}"), highlight=False)
