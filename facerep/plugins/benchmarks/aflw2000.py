"""The ``aflw2000`` benchmark: 68-landmark alignment on AFLW2000-3D by the 3DDFA protocol.

For every image of an AFLW2000-3D folder (the real one, or the synthetic world's ``aflw2000/``), the
face is cropped from the ground-truth landmarks' box (`facerep.data.imagefile.landmark_box`, the crop the
training data uses), each run encodes the crop, and its 68 landmarks are its mesh's landmark vertices
projected by its predicted pose (`facerep.geometry.camera.project`), mapped from the crop back to image
pixels. The error of an image is the NME against ``pt3d_68``'s x, y, normalised by sqrt(w * h) of the
ground truth's box, summarised per yaw bin (`facerep.bench.nme`).

Baselines in the same run: the face model's mean landmark layout fitted to the ground-truth box
(`facerep.bench.landmark_layout`: what a model that learnt nothing scores) and, where dlib and
face-recognition-models are installed, dlib's 68-point shape predictor on its HOG detector's box (the
detection overlapping the ground-truth box most; the ground-truth box itself where it finds none, as
counted in the table's note). On real data (a folder without the synthetic world's ``meta.json``) the
published rows of `facerep.bench.published_alignment` are added, marked as published.

A run whose encoder reads the crop's 68 landmarks (``reads_landmarks``) is fed dlib's 68 points (the same
detections as the dlib baseline), mapped into its crop, never the ground truth it is scored against; where
dlib is not installed such a run is skipped, with a line in the table's notes saying why.

Outputs under ``out_dir``: ``aflw2000.{md,csv,json}``, ``aflw2000_per_image.csv`` and
``aflw2000_errors.png`` (ground truth against every method on a few images).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from facerep.bench.aflw2000_source import AflwSample, read_aflw2000
from facerep.bench.dlib_faces import dlib_faces, dlib_missing, overlapping_detection
from facerep.bench.face_crops import build_detector
from facerep.bench.landmark_layout import fit_to_box, mean_layout
from facerep.bench.landmark_pictures import LandmarkPanel, LandmarkRow, render_landmark_errors
from facerep.bench.metric_tables import Column, MetricRow, MetricTable, print_table, write_table
from facerep.bench.nme import BIN_NAMES, nme, summarise_nme, yaw_bin
from facerep.bench.plugin_common import progress_bar, resolve_data_root
from facerep.bench.published_alignment import AFLW2000_PUBLISHED, REFERENCES
from facerep.bench.runs import model_device, reads_landmarks, run_checkpoints, run_names, run_records
from facerep.common.errors import FacerepError
from facerep.core.interfaces import Benchmark
from facerep.core.registry import Component, hookimpl
from facerep.data.imagefile import crop_resize, landmark_box, load_image
from facerep.data.meta import META_FILE
from facerep.geometry.camera import project

BASELINES: tuple[str, ...] = ("mean_layout", "dlib")


@torch.no_grad()
def predict_landmarks(model: Any, crops: torch.Tensor, landmarks: torch.Tensor | None = None) -> np.ndarray:
    """The model's 68 landmarks in crop pixels.

    Args:
        model: anything with ``encode``, ``decode_shape``, ``face_model`` and ``image_size``.
        crops: (B, 3, S, S) in [0, 1], S = the model's image size.
        landmarks: (B, 68, 2) input landmarks in crop pixels for an encoder that reads them (detected,
            never the ground truth), or None (the model is called with the crops alone).

    Returns:
        (B, 68, 2) float64: the decoded mesh's landmark vertices projected by the predicted pose.
    """
    device = model_device(model)
    if landmarks is None:
        codes = model.encode(crops.to(device))
    else:
        codes = model.encode(crops.to(device), landmarks.float().to(device))
    vertices = model.decode_shape(codes.identity, codes.expression)
    index = torch.as_tensor(np.asarray(model.face_model.landmarks), device=vertices.device)
    points, _ = project(vertices[:, index].float(), codes.pose.float(), int(model.image_size))
    return points.detach().double().cpu().numpy()


class Aflw2000Benchmark(Benchmark):
    """AFLW2000-3D landmark benchmark (3DDFA protocol, yaw bins, baselines, published rows, pictures).

    Args:
        root: AFLW2000-3D folder, or ``builtin`` for the synthetic world's ``aflw2000/`` (which the caller
            passes to `run` as ``data_root``).
        crop_scale: side of the square crop relative to the ground-truth landmarks' extent.
        batch_size: images per encoder forward pass.
        limit: score only the first `limit` images (sorted by name), None for all.
        baselines: score the mean layout and (where installed and `dlib`) dlib.
        dlib: include the dlib baseline (False leaves it out, e.g. for speed; a run whose encoder reads
            landmarks still gets dlib's points).
        published: add the published rows: None = on real data only, True / False = always / never.
        error_images: how many images the error picture shows (spread over the yaw bins).
        progress: show a rich progress bar.
    """

    world_part = "aflw2000"

    def __init__(
        self,
        root: str = "builtin",
        crop_scale: float = 1.7,
        batch_size: int = 32,
        limit: int | None = None,
        baselines: bool = True,
        dlib: bool = True,
        published: bool | None = None,
        error_images: int = 6,
        progress: bool = True,
    ) -> None:
        if not crop_scale > 0:
            raise FacerepError(f"crop_scale must be positive, got {crop_scale}")
        if limit is not None and int(limit) < 1:
            raise FacerepError(f"limit must be at least 1, got {limit}")
        self.root = root
        self.crop_scale = float(crop_scale)
        self.batch_size = max(1, int(batch_size))
        self.limit = None if limit is None else int(limit)
        self.baselines = bool(baselines)
        self.dlib = bool(dlib)
        self.published = published
        self.error_images = int(error_images)
        self.progress = bool(progress)

    # -- scoring --------------------------------------------------------------------------------------

    def _run_landmarks(
        self, model: Any, samples: list[AflwSample], advance: Any, detected: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """A run's 68 points per image in image pixels. `detected`: per image, the (68, 2) detector
        landmarks in image pixels that an encoder reading landmarks gets (mapped into its crop)."""
        size = int(model.image_size)
        out: list[np.ndarray] = []
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start : start + self.batch_size]
            crops, boxes, inputs = [], [], []
            for k, s in enumerate(chunk):
                box = landmark_box(s.landmarks, self.crop_scale)
                given = None if detected is None else detected[start + k]
                crop, crop_marks, _ = crop_resize(load_image(s.image), box, size, given)
                crops.append(crop)
                inputs.append(crop_marks)
                boxes.append(box)
            marks = None if detected is None else torch.stack(inputs)
            points = predict_landmarks(model, torch.stack(crops), marks)
            for (x0, y0, side), p in zip(boxes, points, strict=True):
                out.append(p * (side / size) + (x0, y0))
            advance(len(chunk))
        return out

    def _dlib_landmarks(self, samples: list[AflwSample], advance: Any) -> tuple[list[np.ndarray], int, str]:
        """dlib's 68 points per image: of its face detection overlapping the ground-truth box most (the
        registered ``dlib`` face_detector when it builds, else dlib's HOG detector directly), or, where it
        finds none, of dlib's shape predictor run on the ground-truth box. Returns the points, how many
        images took the ground-truth box, and which detector ran."""
        detector, detector_line = build_detector("dlib")
        predictor = dlib_faces()
        out, fallbacks = [], 0
        for s in samples:
            rgb = np.asarray(load_image(s.image))
            lo, hi = s.landmarks.min(axis=0), s.landmarks.max(axis=0)
            truth_box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
            match = overlapping_detection(rgb, truth_box, detector)
            if match is None:
                fallbacks += 1
                out.append(predictor.landmarks68(rgb, truth_box))
            else:
                box, points = match
                out.append(points if points is not None else predictor.landmarks68(rgb, box))
            advance(1)
        return out, fallbacks, detector_line if detector is not None else "dlib's HOG detector"

    # -- the benchmark --------------------------------------------------------------------------------

    def run(
        self, runs: list[Any], out_dir: Any, *, console: Console | None = None, data_root: Path | None = None
    ) -> dict[str, Any]:
        """Score `runs` (objects with encode / decode_shape / face_model / image_size, optionally name,
        path and checkpoint) and the baselines; write the files under `out_dir`.

        Returns:
            {"table": MetricTable, "scores": per-image dicts, "files": {name: Path}, "seconds": float}.
        """
        if not runs:
            raise FacerepError("the AFLW2000-3D benchmark needs at least one run")
        console = console or Console()
        started = time.perf_counter()
        out = Path(out_dir)
        root = resolve_data_root(self.root, "AFLW2000-3D folder", data_root=data_root)
        samples = read_aflw2000(root, limit=self.limit)
        synthetic = (Path(root) / META_FILE).is_file()
        names = run_names(runs)
        yaws = [s.yaw for s in samples]
        predictions: dict[str, tuple[str, list[np.ndarray]]] = {}
        notes: dict[str, str] = {}
        skipped: list[str] = []
        missing = dlib_missing()
        use_dlib = self.baselines and self.dlib and missing is None
        if self.baselines and self.dlib and not use_dlib:
            skipped.append(f"dlib baseline skipped: {missing}")
        reading = {name for model, name in zip(runs, names, strict=True) if reads_landmarks(model)}
        if reading and missing is not None:
            for name in sorted(reading):
                skipped.append(
                    f"run {name} skipped: its encoder reads the crop's 68 landmarks, which this benchmark "
                    f"takes from dlib (never the ground truth it scores against), and {missing}"
                )
        need_dlib = use_dlib or (bool(reading) and missing is None)
        scored = [(m, n) for m, n in zip(runs, names, strict=True) if n not in reading or missing is None]
        total = len(samples) * (len(scored) + int(need_dlib))
        with progress_bar("AFLW2000-3D", console, self.progress) as bar:
            task = bar.add_task("", total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)

            detected: list[np.ndarray] | None = None
            if need_dlib:
                bar.update(task, description="dlib 68-point predictor")
                detected, fallbacks, detector_line = self._dlib_landmarks(samples, advance)
                dlib_note = f"{detector_line}; ground-truth box on {fallbacks}/{len(samples)} undetected"
            for model, name in scored:
                bar.update(task, description=name)
                given = detected if name in reading else None
                predictions[name] = ("run", self._run_landmarks(model, samples, advance, given))
                if name in reading:
                    notes[name] = f"encoder reads landmarks: dlib's 68 points in its crop ({dlib_note})"
            if self.baselines:
                layout = mean_layout(runs[0].face_model)
                predictions["mean_layout"] = ("baseline", [fit_to_box(layout, s.landmarks) for s in samples])
                notes["mean_layout"] = "mean face's landmarks fitted to the ground-truth box"
            if use_dlib and detected is not None:
                predictions["dlib"] = ("baseline", detected)
                notes["dlib"] = dlib_note
        scores = []
        rows: list[MetricRow] = []
        checkpoints = run_checkpoints(runs, names)
        errors: dict[str, list[float]] = {}
        for method, (kind, points) in predictions.items():
            errors[method] = [nme(p, s.landmarks) for p, s in zip(points, samples, strict=True)]
            for s, e in zip(samples, errors[method], strict=True):
                scores.append({"method": method, "kind": kind, "image": s.name, "yaw": s.yaw,
                               "bin": BIN_NAMES[yaw_bin(s.yaw)], "nme": e})  # fmt: skip
            summary = summarise_nme(errors[method], yaws)
            rows.append(self._row(method, kind, summary, checkpoints.get(method, ""), notes.get(method, "")))
        if self.published or (self.published is None and not synthetic):
            for pub in AFLW2000_PUBLISHED:
                values = {f"bin{i}": None if v is None else v / 100.0 for i, v in enumerate(pub.bins)}
                values.update(balanced=pub.mean / 100.0, overall=None, std=None)
                rows.append(MetricRow(pub.method, "published", values, note=pub.source))
        table = self._table(rows, runs, names, root, synthetic, len(samples), skipped)
        files = write_table(table, out)
        files["aflw2000_per_image.csv"] = self._write_per_image(
            scores, table.meta, out / "aflw2000_per_image.csv"
        )
        if self.error_images > 0:
            files["aflw2000_errors.png"] = self._picture(
                samples, predictions, errors, out / "aflw2000_errors.png"
            )
        print_table(table, console)
        return {"table": table, "scores": scores, "files": files, "seconds": time.perf_counter() - started}

    # -- outputs --------------------------------------------------------------------------------------

    @staticmethod
    def _row(method: str, kind: str, summary: Any, checkpoint: str, note: str) -> MetricRow:
        values = {f"bin{i}": v for i, v in enumerate(summary.bins)}
        values.update(balanced=summary.balanced, overall=summary.overall, std=summary.std)
        counts = {f"bin{i}": c for i, c in enumerate(summary.counts)}
        counts["all"] = summary.n
        return MetricRow(method, kind, values, counts, checkpoint, note)

    def _table(
        self, rows: list[MetricRow], runs: list[Any], names: list[str], root: Path, synthetic: bool,
        images: int, skipped: list[str],
    ) -> MetricTable:  # fmt: skip
        columns = [Column(f"bin{i}", f"{b} NME %", 100.0, 2, f"bin{i}") for i, b in enumerate(BIN_NAMES)]
        columns += [
            Column("balanced", "balanced %", 100.0, 2),
            Column("overall", "overall %", 100.0, 2, "all"),
            Column("std", "std %", 100.0, 2),
        ]
        meta = {
            "data_root": str(root),
            "synthetic": synthetic,
            "images": images,
            "runs": run_records(runs, names),
            "crop_scale": self.crop_scale,
            "protocol": "3DDFA: 68 landmarks, NME / sqrt(w*h) of the ground-truth box, |yaw| bins (degrees)",
        }
        notes = [
            "NME in percent of sqrt(w*h) of the ground-truth landmarks' box; (n) = images in the bin",
            "balanced = mean of the three bin means (the field's 'mean'); overall = mean over all images",
            f"crop: square of {self.crop_scale} x the ground-truth landmarks' extent (the protocol's box)",
            *skipped,
        ]
        if any(r.kind == "published" for r in rows):
            notes.append("published rows: all 2,000 AFLW2000-3D images, as printed in the cited papers:")
            notes += [f"  {short}: {full}" for short, full in REFERENCES.items()]
        return MetricTable("aflw2000", "AFLW2000-3D: 68-landmark NME by yaw", columns, rows, meta, notes)

    @staticmethod
    def _write_per_image(scores: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> Path:
        """One line per (method, image), with where it comes from on every line (run path, checkpoint,
        data root; empty run fields for baselines)."""
        runs = {r["name"]: r for r in meta["runs"]}
        names = ["method", "kind", "image", "yaw", "bin", "nme", "run_path", "checkpoint", "data_root"]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            for s in scores:
                run = runs.get(s["method"], {})
                writer.writerow({**s, "yaw": f"{s['yaw']:.3f}", "nme": f"{s['nme']:.6f}",
                                 "run_path": run.get("path", ""), "checkpoint": run.get("checkpoint", ""),
                                 "data_root": meta["data_root"]})  # fmt: skip
        return path

    def _picture(
        self, samples: list[AflwSample], predictions: dict[str, tuple[str, list[np.ndarray]]],
        errors: dict[str, list[float]], path: Path,
    ) -> Path:  # fmt: skip
        by_bin: list[list[int]] = [[], [], []]
        for i, s in enumerate(samples):
            by_bin[yaw_bin(s.yaw)].append(i)
        chosen: list[int] = []
        while len(chosen) < min(self.error_images, len(samples)):  # round robin over the bins
            for group in by_bin:
                if group and len(chosen) < self.error_images:
                    chosen.append(group.pop(0))
        rows = []
        for i in chosen:
            s = samples[i]
            panels = [LandmarkPanel(m, pts[i], errors[m][i]) for m, (_, pts) in predictions.items()]
            rows.append(LandmarkRow(load_image(s.image), s.landmarks, f"{s.name}  yaw {s.yaw:+.0f}", panels))
        return render_landmark_errors(rows, path)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "benchmark",
            "aflw2000",
            Aflw2000Benchmark,
            "AFLW2000-3D: 68-landmark NME by yaw bin (3DDFA protocol), baselines, published rows",
        )
    ]
