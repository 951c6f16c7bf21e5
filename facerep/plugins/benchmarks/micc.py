"""The ``micc`` benchmark: MICC Florence evaluation of runs and baselines (paper section 5.1, Tables 1-2).

For every subject of a MICC root (real MICC Florence or the synthetic world's), the ground-truth scan
is cropped to 95 mm around its nose tip; for every video (Cooperative, Indoor, Outdoor) each run
encodes all frames in batches once and predicts one shape per protocol ("average over identity",
"average over three views", see `facerep.bench.protocols`); each shape is aligned to the scan
(landmarks, then ICP) and scored by the mean point-to-plane error (`facerep.bench.scoring`).
Baselines in the same run: the template mean face and the best linear 3DMM fit of each scan
(`facerep.bench.baselines`). On real MICC (a root without the synthetic world's ``meta.json``) the
paper's published rows are added, marked as published.

Outputs under ``out_dir``: ``table1.{md,csv,json}``, ``table2.{md,csv,json}``, ``per_subject.csv`` and
``error_maps/SUBJECT_PROTOCOL_CONDITION.png`` (every protocol) for the first `error_maps` subjects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from facerep.bench import baselines as baseline_shapes
from facerep.bench.error_maps import ErrorPanel, write_error_maps
from facerep.bench.micc_source import CONDITION_TITLES, MiccSource
from facerep.bench.plugin_common import progress_bar, resolve_data_root
from facerep.bench.protocols import PROTOCOL_TITLES, PROTOCOLS, encode_video, identity_spread, run_protocols
from facerep.bench.published import TABLE1, TABLE2
from facerep.bench.results import Score, TableRow, published_rows, summarise
from facerep.bench.runs import run_checkpoints, run_names, run_records
from facerep.bench.scoring import ShapeScore, score_face_shape
from facerep.bench.tables import (
    BenchTables,
    alignment_summary,
    print_tables,
    write_per_subject,
    write_tables,
)
from facerep.common.errors import FacerepError, literal
from facerep.core.interfaces import Benchmark, FaceModel
from facerep.core.registry import Component, hookimpl
from facerep.geometry.surface_distance import DIRECTIONS, SCAN_CROP_RADIUS_MM, STATISTICS


class MiccBenchmark(Benchmark):
    """MICC Florence benchmark (both protocols of section 5.1, baselines, tables, error maps).

    Args:
        root: MICC-layout folder, or ``builtin`` for the synthetic world's ``micc/`` (which the caller
            passes to `run` as ``data_root``).
        protocols: any of "identity", "three_views".
        statistic: "mean" (the paper's) or "rmse": the per-subject number the tables aggregate.
        direction: "pred_to_scan", "scan_to_pred" or "symmetric" point-to-plane distance.
        radius: scan crop radius around the nose tip, mm.
        batch_size: frames per encoder forward pass.
        frame_step: keep every `frame_step`-th frame.
        max_frames: at most this many frames per video (evenly spaced), None for all.
        subjects: restrict to these subject folders (None: all).
        baselines: score the template mean face and the best linear 3DMM fit.
        linear_fit_iterations: alignment / correspondence rounds of the linear fit.
        error_maps: number of subjects that get error-map PNGs.
        error_map_vmax: top of the error maps' colour scale, mm.
        icp_iterations: ICP iteration cap per alignment.
        progress: show a rich progress bar.
        strict: a missing or unreadable video is an error (default: that subject's condition is skipped,
            with a warning and a note in the tables).
    """

    world_part = "micc"

    def __init__(
        self,
        root: str = "builtin",
        protocols: Sequence[str] = PROTOCOLS,
        statistic: str = "mean",
        direction: str = "pred_to_scan",
        radius: float = SCAN_CROP_RADIUS_MM,
        batch_size: int = 32,
        frame_step: int = 1,
        max_frames: int | None = None,
        subjects: Sequence[str] | None = None,
        baselines: bool = True,
        linear_fit_iterations: int = 3,
        error_maps: int = 3,
        error_map_vmax: float = 3.0,
        icp_iterations: int = 30,
        progress: bool = True,
        strict: bool = False,
    ) -> None:
        bad = [p for p in protocols if p not in PROTOCOLS]
        if bad or not protocols:
            raise FacerepError(
                f"unknown MICC protocol(s) {bad or protocols}; choose from {', '.join(PROTOCOLS)}"
            )
        if statistic not in STATISTICS:
            raise FacerepError(f"unknown statistic {statistic!r}; choose from {', '.join(STATISTICS)}")
        if direction not in DIRECTIONS:
            raise FacerepError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
        self.root = root
        self.protocols = [p for p in PROTOCOLS if p in protocols]
        self.statistic = statistic
        self.direction = direction
        self.radius = float(radius)
        self.batch_size = int(batch_size)
        self.frame_step = int(frame_step)
        self.max_frames = max_frames
        self.subjects = list(subjects) if subjects is not None else None
        self.baselines = bool(baselines)
        self.linear_fit_iterations = int(linear_fit_iterations)
        self.error_maps = int(error_maps)
        self.error_map_vmax = float(error_map_vmax)
        self.icp_iterations = int(icp_iterations)
        self.progress = bool(progress)
        self.strict = bool(strict)

    # -- scoring helpers ----------------------------------------------------------------------------

    def _score(self, shape: np.ndarray, face_model: FaceModel, scan: Any) -> ShapeScore:
        return score_face_shape(
            shape, face_model, scan, direction=self.direction, icp_iterations=self.icp_iterations
        )

    # -- the benchmark ------------------------------------------------------------------------------

    def run(
        self, runs: list[Any], out_dir: Any, *, console: Console | None = None, data_root: Path | None = None
    ) -> dict[str, Any]:
        """Evaluate `runs` (objects with encode / decode_shape / neutral_expression / face_model /
        image_size, and optionally name / checkpoint) and write the tables under `out_dir`.

        Returns:
            {"tables": BenchTables, "scores": list[Score], "files": {name: Path}, "seconds": float}.
        """
        if not runs:
            raise FacerepError("the MICC benchmark needs at least one run")
        console = console or Console()
        started = time.perf_counter()
        out = Path(out_dir)
        root = resolve_data_root(self.root, "MICC data root", data_root=data_root)
        names = run_names(runs)
        image_size = max(int(m.image_size) for m in runs)
        source = MiccSource(
            root,
            image_size,
            frame_step=self.frame_step,
            max_frames=self.max_frames,
            subjects=self.subjects,
            radius=self.radius,
            strict=self.strict,
            progress=self.progress,
        )
        for note in source.notes():
            console.print(f"[yellow]warning:[/] {literal(note)}", highlight=False)
        face_model = runs[0].face_model
        scores: list[Score] = []
        files: dict[str, Path] = {}
        map_subjects = set(source.subjects[: self.error_maps])
        total = len(source.subjects) * len(source.conditions)
        with progress_bar("MICC", console, self.progress) as bar:
            task = bar.add_task("", total=total)
            for subject in source.subjects:
                bar.update(task, description=f"{literal(subject)}: scan and baselines")
                scan = source.scan(subject)
                panels: dict[tuple[str, str], list[ErrorPanel]] = {}
                baseline_scores: dict[str, tuple[ShapeScore, np.ndarray]] = {}
                if self.baselines:
                    shapes = {"mean_face": baseline_shapes.mean_face(face_model)}
                    shapes["linear_fit"] = baseline_shapes.linear_fit(
                        face_model, scan, iterations=self.linear_fit_iterations
                    )
                    for name, shape in shapes.items():
                        baseline_scores[name] = (self._score(shape, face_model, scan), shape)
                for condition in source.conditions:
                    title = CONDITION_TITLES[condition]
                    bar.update(task, description=f"{literal(subject)} {title}")
                    video = source.frames_with_landmarks(subject, condition)
                    for name, (sc, shape) in baseline_scores.items():
                        for protocol in self.protocols:
                            scores.append(
                                Score(
                                    name,
                                    "baseline",
                                    protocol,
                                    title,
                                    subject,
                                    sc.error.mean,
                                    sc.error.rmse,
                                )
                            )
                            if subject in map_subjects:
                                panels.setdefault((protocol, title), []).append(
                                    ErrorPanel(name, shape, face_model.triangles, sc.error.per_vertex)
                                )
                    if video is None:
                        bar.advance(task)
                        continue
                    frames, landmarks = video
                    for model, name in zip(runs, names, strict=True):
                        codes = encode_video(model, frames, landmarks, batch_size=self.batch_size)
                        spread = identity_spread(model, codes)
                        for protocol, shape in run_protocols(model, codes, self.protocols).items():
                            sc = self._score(shape, model.face_model, scan)
                            scores.append(
                                Score(
                                    name,
                                    "run",
                                    protocol,
                                    title,
                                    subject,
                                    sc.error.mean,
                                    sc.error.rmse,
                                    spread,
                                    codes.num_frames,
                                )
                            )
                            if subject in map_subjects:
                                panels.setdefault((protocol, title), []).insert(
                                    names.index(name),
                                    ErrorPanel(name, shape, model.face_model.triangles, sc.error.per_vertex),
                                )
                    bar.advance(task)
                files.update(  # one map per protocol and condition
                    write_error_maps(
                        panels, out, subject, vmax=self.error_map_vmax, protocol_titles=PROTOCOL_TITLES
                    )
                )
        tables = self._tables(scores, runs, names, source)
        files.update(write_tables(tables, out))
        files["per_subject.csv"] = write_per_subject(scores, out / "per_subject.csv", tables.meta)
        print_tables(tables, console)
        return {"tables": tables, "scores": scores, "files": files, "seconds": time.perf_counter() - started}

    def _tables(
        self, scores: list[Score], runs: list[Any], names: list[str], source: MiccSource
    ) -> BenchTables:
        checkpoints = run_checkpoints(runs, names)
        stat_scores = scores
        method_order = [*names, *(baseline_shapes.BASELINES if self.baselines else ())]
        table1: dict[str, list[TableRow]] = {}
        for protocol in self.protocols:
            rows = summarise(
                stat_scores, protocol, statistic=self.statistic, methods=method_order, checkpoints=checkpoints
            )
            if not source.synthetic:
                rows += published_rows(TABLE1[protocol])
            table1[protocol] = rows
        table2: list[TableRow] = []
        if "identity" in self.protocols:
            table2 = summarise(
                stat_scores, "identity", statistic=self.statistic, methods=names, checkpoints=checkpoints
            )
            if not source.synthetic:
                table2 += published_rows(TABLE2)
        meta = {
            "data_root": str(source.root),
            "synthetic": source.synthetic,
            "subjects": len(source.subjects),
            "runs": run_records(runs, names),
            "protocols": self.protocols,
            "statistic": self.statistic,
            "direction": self.direction,
            "radius": self.radius,
            "std": "population std over subjects (ddof=0)",
            "alignment": alignment_summary(source.alignment),
            "alignment_per_subject": dict(source.alignment),
            "notes": source.notes(),
        }
        return BenchTables(table1, table2, meta)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "benchmark",
            "micc",
            MiccBenchmark,
            "MICC Florence: both protocols of section 5.1, baselines, Tables 1-2, error maps",
        )
    ]
