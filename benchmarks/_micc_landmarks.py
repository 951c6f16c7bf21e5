"""Shared by the landmark benchmarks: score shapes read from the MICC videos' landmarks.

`micc_landmark_scores` runs predictors that map one video's landmarks to one neutral shape over every
synthetic MICC subject and condition of the demo world, scores each shape exactly as `facerep bench`
scores a run (similarity alignment from landmarks, ICP, point-to-plane error in the 95 mm crop), and
scores the mean face beside them; `print_scores` prints the table with ratios to the mean face.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from facerep.bench.micc_source import MiccSource
from facerep.bench.scoring import score_face_shape
from facerep.world.cache import ensure_world, source_root

#: landmarks of one video's frames (F, 68, 2) px -> its neutral shape (N, 3) mm.
Predictor = Callable[[torch.Tensor], torch.Tensor]


def micc_landmark_scores(
    face_model: object, predictors: dict[str, Predictor], world: str = "demo"
) -> tuple[float, dict[str, dict[str, float]]]:
    """(mean face's error, {predictor: {condition: mean error}}) in mm over the world's MICC subjects."""
    source = MiccSource(source_root(ensure_world(world, 0), "micc"), 64)
    mean = torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float64)
    base: list[float] = []
    cells: dict[str, dict[str, list[float]]] = {name: {} for name in predictors}
    for subject in source.subjects:
        scan = source.scan(subject)
        base.append(score_face_shape(mean.numpy(), face_model, scan).error.mean)
        for condition in source.conditions:
            frames = source.frame_indices(subject, condition)
            marks = torch.stack([torch.as_tensor(source.dataset[i]["landmarks"]).float() for i in frames])
            for name, predict in predictors.items():
                with torch.no_grad():
                    shape = predict(marks).double().numpy()
                error = score_face_shape(shape, face_model, scan).error.mean
                cells[name].setdefault(condition, []).append(error)
    return float(np.mean(base)), {
        name: {c: float(np.mean(v)) for c, v in by_condition.items()} for name, by_condition in cells.items()
    }


def print_scores(mean_face: float, scores: dict[str, dict[str, float]], title: str) -> None:
    """Print `micc_landmark_scores`' result: mm (x the mean face's) per condition."""
    conditions = list(next(iter(scores.values()))) if scores else []
    print(f"\n{title} (mm, x the mean face's {mean_face:.3f})")
    print(f"{'':34s}" + "".join(f"{c:>22s}" for c in conditions))
    for name, by_condition in scores.items():
        print(f"{name:34s}" + "".join(f"{v:>14.3f} ({v / mean_face:.3f}x)" for v in by_condition.values()))
