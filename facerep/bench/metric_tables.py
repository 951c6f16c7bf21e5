"""One benchmark table (a row per run, baseline or published result; a column per metric) in four forms.

Printed with rich, and saved as ``NAME.md``, ``NAME.csv`` and ``NAME.json``; every file names the data
root and each run's directory and checkpoint (the CSV in ``#`` comment lines at its top), as the MICC
tables do (`facerep.bench.tables`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

KINDS: tuple[str, ...] = ("run", "baseline", "published")


@dataclass
class Column:
    """A metric column.

    Attributes:
        key: the value's key in `MetricRow.values` (and the CSV / JSON name).
        title: the printed header.
        scale: multiply by this when printing (100 for a percentage); files keep the raw value.
        digits: decimals printed.
        count: key in `MetricRow.counts` printed under the value as "(n)", or "" for none.
    """

    key: str
    title: str
    scale: float = 1.0
    digits: int = 3
    count: str = ""


@dataclass
class MetricRow:
    """One method's results.

    Attributes:
        method: run, baseline or published method name.
        kind: "run", "baseline" or "published".
        values: column key -> value (None prints as "-").
        counts: sample counts (e.g. images per bin, pairs).
        checkpoint: the run's checkpoint file name ("" for others).
        note: where a published number comes from, or what a baseline skipped.
    """

    method: str
    kind: str
    values: dict[str, float | None]
    counts: dict[str, int] = field(default_factory=dict)
    checkpoint: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"row kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def label(self) -> str:
        return self.method if self.kind == "run" else f"{self.method} ({self.kind})"


@dataclass
class MetricTable:
    """A benchmark's table.

    Attributes:
        name: file stem (``NAME.md`` ...).
        title: heading.
        columns: the metric columns, in order.
        rows: runs first, then baselines, then published rows.
        meta: provenance: ``data_root``, ``runs`` [{name, path, checkpoint}], and benchmark settings.
        notes: lines printed under the table (protocol, units, skipped baselines).
    """

    name: str
    title: str
    columns: list[Column]
    rows: list[MetricRow]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _cell(row: MetricRow, column: Column) -> str:
    value = row.values.get(column.key)
    text = "-" if value is None else f"{value * column.scale:.{column.digits}f}"
    if column.count and column.count in row.counts:
        text += f" ({row.counts[column.count]})"
    return text


def _provenance(meta: dict[str, Any]) -> list[str]:
    lines = [f"data root: {meta.get('data_root', '?')}"]
    for run in meta.get("runs", []):
        lines.append(f"run {run['name']}: {run.get('path', '')} checkpoint {run['checkpoint']}")
    return lines


def table_markdown(table: MetricTable) -> str:
    """The table as Markdown, with provenance and notes."""
    lines = [f"# {table.title}", ""]
    lines += [f"- {line}" for line in _provenance(table.meta)]
    lines += ["", "| Method | " + " | ".join(c.title for c in table.columns) + " | Note |"]
    lines.append("|---|" + "---:|" * len(table.columns) + "---|")
    for row in table.rows:
        cells = " | ".join(_cell(row, c) for c in table.columns)
        lines.append(f"| {row.label} | {cells} | {row.note} |")
    if table.notes:
        lines += ["", *[f"- {note}" for note in table.notes]]
    return "\n".join(lines) + "\n"


def write_table_csv(table: MetricTable, path: Path) -> None:
    """One CSV line per row: method, kind, checkpoint, every value (raw), every count, note."""
    count_keys = sorted({k for row in table.rows for k in row.counts})
    with path.open("w", newline="", encoding="utf-8") as fh:
        for line in _provenance(table.meta):
            fh.write(f"# {line}\n")
        names = ["method", "kind", "checkpoint", *(c.key for c in table.columns)]
        names += [f"n_{k}" for k in count_keys] + ["note"]
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for row in table.rows:
            out: dict[str, Any] = {"method": row.method, "kind": row.kind, "checkpoint": row.checkpoint}
            for c in table.columns:
                value = row.values.get(c.key)
                out[c.key] = "" if value is None else f"{value:.6f}"
            for k in count_keys:
                out[f"n_{k}"] = row.counts.get(k, "")
            out["note"] = row.note
            writer.writerow(out)


def write_table(table: MetricTable, out_dir: str | Path) -> dict[str, Path]:
    """Write ``NAME.md``, ``NAME.csv`` and ``NAME.json`` under `out_dir`; returns {file name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {f"{table.name}{s}": out / f"{table.name}{s}" for s in (".md", ".csv", ".json")}
    paths[f"{table.name}.md"].write_text(table_markdown(table), encoding="utf-8")
    write_table_csv(table, paths[f"{table.name}.csv"])
    payload = {
        "title": table.title,
        "meta": table.meta,
        "columns": [asdict(c) for c in table.columns],
        "rows": [asdict(r) for r in table.rows],
        "notes": table.notes,
    }
    paths[f"{table.name}.json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return paths


def print_table(table: MetricTable, console: Console | None = None) -> None:
    """Print the table with rich (runs bold, baselines cyan, published rows dim), then its notes."""
    console = console or Console()
    rich_table = Table(title=table.title, title_justify="left")
    rich_table.add_column("Method")
    for c in table.columns:
        rich_table.add_column(c.title, justify="right")
    rich_table.add_column("Note", overflow="fold")
    style = {"run": "bold", "baseline": "cyan", "published": "dim"}
    for row in table.rows:
        rich_table.add_row(
            row.label, *(_cell(row, c) for c in table.columns), row.note, style=style[row.kind]
        )
    console.print(rich_table)
    for line in [*table.notes, *_provenance(table.meta)]:
        console.print(line, highlight=False)
