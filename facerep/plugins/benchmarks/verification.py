"""The ``verification`` benchmark: same or different person, from the cosine of identity codes.

Data: a pair list (`facerep.bench.pairs`): LFW's layout (``ROOT/pairs.txt`` + ``ROOT/lfw/NAME/NAME_0001.jpg``;
the synthetic world's ``verification/`` holds new identities in that layout), or, with ``pairs="all"``,
every pair of the photos in ``ROOT/NAME/`` identity folders. Each photo is cropped as ``facerep
reconstruct`` crops it (`facerep.bench.face_crops`: landmark sidecar, else the registered
``face_detector``, else the centred square, with a warning).

Score of a pair: the cosine similarity of the two photos' identity codes (with ``flip``, each code is the
mean of the photo's and its mirror image's). A run whose encoder reads the crop's 68 landmarks
(``reads_landmarks``) gets each crop's landmarks (sidecar or detector, mapped into the crop; mirrored with
the image under ``flip``); where some photo has none (a centre crop) that run is scored on the pairs whose
photos both have landmarks (its note says how many), with a line in
the table's notes saying why. Reported per method (`facerep.bench.roc`): ROC AUC, equal
error rate, and TAR at FAR 1e-2 and 1e-3 where there are enough different-person pairs (1 / FAR).

Baselines in the same run: dlib's face recognition network (128-D descriptors from face-recognition-models,
scored by minus their Euclidean distance, dlib's own metric: a real trained recogniser, the anchor row)
where installed, and random 128-D codes (chance).

Outputs under ``out_dir``: ``verification.{md,csv,json}``, ``verification_pairs.csv`` (every pair's
scores) and ``verification_roc.png``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from facerep.bench.dlib_faces import detections, dlib_faces, dlib_missing, largest, overlapping_detection
from facerep.bench.face_crops import FaceCropper, build_detector
from facerep.bench.metric_tables import Column, MetricRow, MetricTable, print_table, write_table
from facerep.bench.pairs import PairList, load_pairs
from facerep.bench.plugin_common import progress_bar, resolve_data_root
from facerep.bench.roc import equal_error_rate, roc_auc, roc_curve, tar_at_far
from facerep.bench.roc_plot import plot_roc
from facerep.bench.runs import model_device, reads_landmarks, run_checkpoints, run_names, run_records
from facerep.common.errors import FacerepError
from facerep.core.interfaces import Benchmark
from facerep.core.registry import Component, hookimpl
from facerep.data.augment import mirror_landmarks
from facerep.data.imagefile import load_image
from facerep.data.photos import FacePhoto

FARS: tuple[float, ...] = (1e-2, 1e-3)
BASELINES: tuple[str, ...] = ("dlib", "random")


@torch.no_grad()
def identity_codes(
    model: Any,
    images: torch.Tensor,
    landmarks: torch.Tensor | None = None,
    *,
    flip: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """(B, D_id) identity codes of (B, 3, S, S) crops in [0, 1] (with `flip`: mean with the mirrored's).

    `landmarks`: the crops' (B, 68, 2) landmarks in crop pixels, passed to ``model.encode`` (mirrored
    with the images under `flip`); None: the model is called with the crops alone."""
    device = model_device(model)
    out = []
    for start in range(0, int(images.shape[0]), batch_size):
        batch = images[start : start + batch_size].to(device)
        if landmarks is None:
            codes = model.encode(batch).identity.float()
            if flip:
                codes = (codes + model.encode(batch.flip(-1)).identity.float()) / 2.0
        else:
            marks = landmarks[start : start + batch_size].float().to(device)
            codes = model.encode(batch, marks).identity.float()
            if flip:
                mirrored = mirror_landmarks(marks, int(batch.shape[-1]))
                codes = (codes + model.encode(batch.flip(-1), mirrored).identity.float()) / 2.0
        out.append(codes.cpu().double().numpy())
    return np.concatenate(out)


def _scored(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(same-person scores, different-person scores) of the pairs a method scored (finite scores)."""
    finite = np.isfinite(scores)
    return scores[same & finite], scores[~same & finite]


def cosine_scores(codes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows `first[k]` and `second[k]` of (N, D) `codes`: (K,)."""
    unit = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    return np.einsum("kd,kd->k", unit[first], unit[second])


class VerificationBenchmark(Benchmark):
    """Face verification from identity codes (ROC AUC, EER, TAR@FAR, ROC curve; dlib and chance baselines).

    Args:
        root: LFW-layout folder (or a pairs file), a folder of identity folders with ``pairs="all"``, or
            ``builtin`` for the synthetic world's held-out identities (``verification/``, which the caller
            passes to `run` as ``data_root``).
        pairs: None (``ROOT/pairs.txt``), a pairs file, or "all" (every pair of ROOT's identity folders).
        flip: average each identity code with its mirrored photo's.
        crop_scale: crop side relative to the landmarks' extent.
        detector: the ``face_detector`` used for photos without landmark sidecars (None: centre crops).
        batch_size: photos per encoder forward pass.
        baselines: score dlib (where installed and `dlib`) and random codes.
        dlib: include the dlib baseline (False leaves it out, e.g. for speed).
        random_seed: seed of the random codes.
        progress: show a rich progress bar.
    """

    world_part = "verification"

    def __init__(
        self,
        root: str = "builtin",
        pairs: str | None = None,
        flip: bool = False,
        crop_scale: float = 1.7,
        detector: str | None = "dlib",
        batch_size: int = 32,
        baselines: bool = True,
        dlib: bool = True,
        random_seed: int = 0,
        progress: bool = True,
    ) -> None:
        if not crop_scale > 0:
            raise FacerepError(f"crop_scale must be positive, got {crop_scale}")
        self.root = root
        self.pairs = pairs
        self.flip = bool(flip)
        self.crop_scale = float(crop_scale)
        self.detector = detector
        self.batch_size = max(1, int(batch_size))
        self.baselines = bool(baselines)
        self.dlib = bool(dlib)
        self.random_seed = int(random_seed)
        self.progress = bool(progress)

    # -- codes ----------------------------------------------------------------------------------------

    def _dlib_codes(
        self, images: list[Path], faces_of: dict[Path, FacePhoto], detector: Any, advance: Any
    ) -> tuple[np.ndarray, int]:
        """dlib descriptors of the faces the model's crops used: the detector's box for detected faces; for
        landmark sidecars the detection overlapping their box (else their box); for centre crops the
        largest detection (else the whole photo); detections by `detector`, else dlib's HOG detector.
        Returns (N, 128) codes and the undetected count."""
        dlib = dlib_faces()
        codes, fallbacks = [], 0
        for path in images:
            rgb = np.asarray(load_image(path))
            photo = faces_of[path]
            if photo.crop == "detected" and photo.face_box is not None:
                box = photo.face_box
            elif photo.face_box is not None:
                match = overlapping_detection(rgb, photo.face_box, detector)
                box = match[0] if match is not None else None
                if box is None:
                    fallbacks += 1
                    box = photo.face_box
            else:
                box = largest([b for b, _ in detections(rgb, detector)])
                if box is None:
                    fallbacks += 1
                    box = (0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0]))
            codes.append(dlib.descriptor(rgb, box))
            advance(1)
        return np.stack(codes), fallbacks

    # -- the benchmark --------------------------------------------------------------------------------

    def run(
        self, runs: list[Any], out_dir: Any, *, console: Console | None = None, data_root: Path | None = None
    ) -> dict[str, Any]:
        """Score the pairs with every run and baseline; write the files under `out_dir`.

        Returns:
            {"table": MetricTable, "scores": {method: (K,) pair scores}, "pairs": PairList,
             "files": {name: Path}, "seconds": float}.
        """
        if not runs:
            raise FacerepError("the verification benchmark needs at least one run")
        console = console or Console()
        started = time.perf_counter()
        out = Path(out_dir)
        root = resolve_data_root(self.root, "verification data", data_root=data_root, folder=False)
        pair_list = load_pairs(Path(root), self.pairs)
        images = pair_list.images
        index = {p: i for i, p in enumerate(images)}
        first = np.array([index[p.first] for p in pair_list.pairs])
        second = np.array([index[p.second] for p in pair_list.pairs])
        same = np.array([p.same for p in pair_list.pairs])
        detector, detector_line = build_detector(self.detector)
        warnings: list[str] = []
        names = run_names(runs)
        scores: dict[str, tuple[str, np.ndarray]] = {}
        notes: dict[str, str] = {}
        use_dlib = self.baselines and self.dlib and dlib_missing() is None
        if self.baselines and self.dlib and not use_dlib:
            warnings.append(f"dlib baseline skipped: {dlib_missing()}")
        croppers: dict[int, FaceCropper] = {}
        crops: dict[int, torch.Tensor] = {}
        crop_marks: dict[int, list[torch.Tensor | None]] = {}  # per photo; None: no landmarks
        faces_of: dict[Path, FacePhoto] = {}
        total = len(images) * (len({int(m.image_size) for m in runs}) + len(runs) + int(use_dlib))
        with progress_bar("verification", console, self.progress) as bar:
            task = bar.add_task("", total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)

            for model, name in zip(runs, names, strict=True):
                size = int(model.image_size)
                if size not in crops:
                    bar.update(task, description=f"cropping {len(images)} photos at {size} px")
                    cropper = croppers[size] = FaceCropper(size, self.crop_scale, detector)
                    tensors, marks = [], []
                    for path in images:
                        photo = cropper(path)
                        tensors.append(photo.image)
                        marks.append(photo.landmarks)
                        faces_of.setdefault(path, photo)
                        advance(1)
                    crops[size] = torch.stack(tensors)
                    crop_marks[size] = marks
                bar.update(task, description=name)
                if reads_landmarks(model):
                    marks = crop_marks[size]
                    have = np.array([m is not None for m in marks])
                    if not have.any():
                        warnings.append(
                            f"run {name} skipped: its encoder reads the crop's 68 landmarks and no "
                            f"photo has any (no landmark sidecar, no face found: {detector_line})"
                        )
                        console.print(f"[yellow]warning:[/] {warnings[-1]}", highlight=False)
                        advance(len(images))
                        continue
                    rows = np.flatnonzero(have)
                    given = torch.stack([marks[int(i)] for i in rows])
                    found = identity_codes(
                        model,
                        crops[size][torch.as_tensor(rows)],
                        given,
                        flip=self.flip,
                        batch_size=self.batch_size,
                    )
                    codes = np.full((len(images), found.shape[1]), np.nan)
                    codes[rows] = found
                    notes[name] = "identity codes, cosine, encoder given the crops' landmarks" + (
                        " (mirrored with the photo), flip-averaged" if self.flip else ""
                    )
                    if not have.all():
                        scored = int((have[first] & have[second]).sum())
                        notes[name] += (
                            f"; scored on the {scored} of {len(first)} pairs whose photos have "
                            f"landmarks ({int((~have).sum())} photo(s) without: no sidecar, no face found)"
                        )
                else:
                    codes = identity_codes(
                        model, crops[size], None, flip=self.flip, batch_size=self.batch_size
                    )
                scores[name] = ("run", cosine_scores(codes, first, second))  # NaN: a photo without
                advance(len(images))
            if use_dlib:
                bar.update(task, description="dlib face descriptors")
                codes, fallbacks = self._dlib_codes(images, faces_of, detector, advance)
                dist = np.linalg.norm(codes[first] - codes[second], axis=1)
                scores["dlib"] = ("baseline", -dist)
                notes["dlib"] = f"128-D, score = -L2 distance; box not detected on {fallbacks}/{len(images)}"
            if self.baselines:
                rng = np.random.default_rng(self.random_seed)
                scores["random"] = (
                    "baseline",
                    cosine_scores(rng.standard_normal((len(images), 128)), first, second),
                )
                notes["random"] = "random 128-D codes (chance)"
        for size, cropper in croppers.items():
            counts = ", ".join(f"{k} {v}" for k, v in sorted(cropper.counts.items()))
            if cropper.counts.get("center", 0) and detector is None:
                warnings.append(
                    f"{cropper.counts['center']} photo(s) without landmarks were centre-cropped: "
                    f"no face detector ({detector_line})"
                )
                console.print(f"[yellow]warning:[/] {warnings[-1]}", highlight=False)
            warnings.append(f"crops at {size} px: {counts}")
        table = self._table(scores, same, notes, runs, names, root, pair_list, detector_line, warnings)
        files = write_table(table, out)
        files["verification_pairs.csv"] = self._write_pairs(
            pair_list, scores, table.meta, out / "verification_pairs.csv"
        )
        curves = [
            (m if k == "run" else f"{m} (baseline)", roc_curve(*_scored(s, same)), roc_auc(*_scored(s, same)))
            for m, (k, s) in scores.items()
        ]
        files["verification_roc.png"] = plot_roc(curves, out / "verification_roc.png",
                                                 title=f"verification: {pair_list.num_same} same / "
                                                 f"{pair_list.num_different} different pairs")  # fmt: skip
        print_table(table, console)
        return {"table": table, "scores": {m: s for m, (_, s) in scores.items()}, "pairs": pair_list,
                "files": files, "seconds": time.perf_counter() - started}  # fmt: skip

    # -- outputs --------------------------------------------------------------------------------------

    def _table(
        self, scores: dict[str, tuple[str, np.ndarray]], same: np.ndarray, notes: dict[str, str],
        runs: list[Any], names: list[str], root: Path, pair_list: PairList, detector_line: str,
        warnings: list[str],
    ) -> MetricTable:  # fmt: skip
        checkpoints = run_checkpoints(runs, names)
        rows = []
        for method, (kind, s) in scores.items():
            pos, neg = _scored(s, same)
            values: dict[str, float | None] = {"auc": roc_auc(pos, neg), "eer": equal_error_rate(pos, neg)}
            for far in FARS:
                values[f"tar@{far:g}"] = tar_at_far(pos, neg, far)
            counts = {"same": int(pos.size), "different": int(neg.size)}
            note = notes.get(method, "identity codes, cosine" + (", flip-averaged" if self.flip else ""))
            rows.append(MetricRow(method, kind, values, counts, checkpoints.get(method, ""), note))
        columns = [Column("auc", "ROC AUC", 1.0, 4), Column("eer", "EER %", 100.0, 2)]
        columns += [Column(f"tar@{far:g}", f"TAR@FAR {far:g} %", 100.0, 2) for far in FARS]
        meta = {
            "data_root": str(root),
            "pairs": pair_list.source,
            "same_pairs": pair_list.num_same,
            "different_pairs": pair_list.num_different,
            "images": len(pair_list.images),
            "runs": run_records(runs, names),
            "flip": self.flip,
            "crop_scale": self.crop_scale,
            "detector": detector_line,
        }
        table_notes = [
            f"pairs: {pair_list.num_same} same, {pair_list.num_different} different, {len(pair_list.images)} "
            f"photos ({pair_list.source})",
            "TAR@FAR f needs at least 1/f different-person pairs ('-' otherwise)",
            f"photos without landmark sidecars: {detector_line}",
            *warnings,
        ]
        return MetricTable(
            "verification", "Face verification from identity codes", columns, rows, meta, table_notes
        )

    @staticmethod
    def _write_pairs(
        pair_list: PairList, scores: dict[str, tuple[str, np.ndarray]], meta: dict[str, Any], path: Path
    ) -> Path:
        """One line per (method, pair): the two images, same or not, the score, and where it comes from
        (run path, checkpoint, data root; empty run fields for baselines)."""
        runs = {r["name"]: r for r in meta["runs"]}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["method", "kind", "first", "second", "same", "fold", "score", "run_path",
                             "checkpoint", "data_root"])  # fmt: skip
            for method, (kind, s) in scores.items():
                run = runs.get(method, {})
                origin = [run.get("path", ""), run.get("checkpoint", ""), meta["data_root"]]
                for k, p in enumerate(pair_list.pairs):
                    score = f"{s[k]:.6f}" if np.isfinite(s[k]) else ""  # a photo without landmarks
                    row = [method, kind, str(p.first), str(p.second), int(p.same), p.fold, score]
                    writer.writerow(row + origin)
        return path


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "benchmark",
            "verification",
            VerificationBenchmark,
            "face verification (same / different person) from identity codes: ROC AUC, EER, TAR@FAR",
        )
    ]
