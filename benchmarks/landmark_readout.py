"""How far 2D landmarks alone go on the synthetic MICC: a ridge read-out from landmarks to identity shape.

Fits a ridge regression from the 68 landmarks of the labelled training images (centred, divided by
their RMS radius: `facerep.nn.landmark_input.landmark_features`) to the neutral identity shape
(face_model.shape(id_params, 0) - mean, mm), then, for every MICC subject and condition, applies it to
the landmarks of each video frame (the files the MICC bench crops with: the synthetic detector's
noisy landmarks), averages the predicted shapes over the frames, and scores that shape exactly as the
MICC benchmark scores a run (similarity alignment from landmarks, ICP, point-to-plane error in the
95 mm crop). The mean face is scored the same way beside it, so each cell is also a ratio.

This is an analysis of the information in the landmarks the benchmark already uses, not a model:
it says how much of the MICC target an encoder that also reads the crop's landmarks could reach.

    python benchmarks/landmark_readout.py                      # the demo world (4,000 labelled identities)
    python benchmarks/landmark_readout.py --labelled-sources 8000   # demo_long's world
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerep.bench.micc_source import MiccSource  # noqa: E402
from facerep.bench.scoring import score_face_shape  # noqa: E402
from facerep.core.registry import get_registry  # noqa: E402
from facerep.nn.landmark_input import landmark_box_size, landmark_features  # noqa: E402
from facerep.train.validation import RidgeFit  # noqa: E402
from facerep.world.cache import ensure_world, source_root  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labelled-sources", type=int, default=4000, help="data.world.labelled_sources")
    parser.add_argument("--views", type=int, default=2, help="data.world.views_per_source")
    parser.add_argument("--ridge", type=float, nargs="+", default=[1.0, 30.0, 300.0])
    parser.add_argument("--max-train", type=int, default=8000, help="labelled images the ridge is fitted on")
    parser.add_argument(
        "--jitter",
        type=float,
        nargs="+",
        default=[0.0],
        help="Gaussian noise added to the training landmarks, fraction of their box size (the encoder's "
        "landmark_noise); each value > 0 fits on --draws noisy copies",
    )
    parser.add_argument("--draws", type=int, default=4, help="noisy copies per image for a jitter > 0")
    args = parser.parse_args()

    started = time.perf_counter()
    sizes = {"labelled_sources": args.labelled_sources, "views_per_source": args.views}
    world = ensure_world("demo", 0, sizes=sizes)
    registry = get_registry()
    face_model = registry.build("facemodel", {"type": "synthetic", "vertices": 2000, "seed": 0})
    labelled = registry.build(
        "dataset", {"type": "w300lp", "root": str(source_root(world, "w300lp"))}, {"face_model": face_model}
    )
    count = min(len(labelled), args.max_train)
    samples = [labelled[i] for i in range(count)]
    landmarks = torch.stack([torch.as_tensor(s["landmarks"]).double() for s in samples])
    id_params = torch.stack([torch.as_tensor(s["id_params"]).float() for s in samples])
    exp_params = torch.stack([torch.as_tensor(s["exp_params"]).float() for s in samples])
    mean = torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float64)
    with torch.no_grad():
        neutral = torch.as_tensor(face_model.shape(id_params, torch.zeros_like(exp_params))).double()
    targets = (neutral - mean).flatten(1)
    print(f"fitted on {count} labelled images of {world.name} ({time.perf_counter() - started:.0f} s)")

    source = MiccSource(source_root(world, "micc"), 64)

    def score(shape: np.ndarray, scan: object) -> float:
        return score_face_shape(shape, face_model, scan).error.mean

    generator = torch.Generator().manual_seed(0)
    fits = {}
    for jitter in args.jitter:
        copies = args.draws if jitter > 0 else 1
        noisy = torch.cat(
            [
                landmarks
                + torch.randn(landmarks.shape, generator=generator, dtype=landmarks.dtype)
                * (jitter * landmark_box_size(landmarks))[:, None, None]
                for _ in range(copies)
            ]
        )
        for ridge in args.ridge:
            name = f"ridge {ridge:g}" + (f", jitter {jitter:g}" if jitter > 0 else "")
            fits[name] = RidgeFit.fit(landmark_features(noisy), targets.repeat(copies, 1), ridge * copies)
    rows: dict[str, dict[str, list[float]]] = {}
    for subject in source.subjects:
        scan = source.scan(subject)
        base = score(mean.numpy(), scan)
        rows.setdefault("mean face", {}).setdefault("all", []).append(base)
        for condition in source.conditions:
            idx = source.frame_indices(subject, condition)
            frame_landmarks = torch.stack(
                [torch.as_tensor(source.dataset[i]["landmarks"]).double() for i in idx]
            )
            frame_features = landmark_features(frame_landmarks)
            for name, fit in fits.items():
                shape = fit(frame_features).mean(0).view(-1, 3) + mean
                rows.setdefault(name, {}).setdefault(condition, []).append(score(shape.numpy(), scan))
    base = float(np.mean(rows["mean face"]["all"]))
    subjects = len(source.subjects)
    print(f"\nMICC, identity from landmarks averaged over frames (mm, mean over {subjects} subjects)")
    print(f"{'':24s}" + "".join(f"{c:>22s}" for c in source.conditions))
    print(f"{'mean face':24s}" + "".join(f"{base:>22.3f}" for _ in source.conditions))
    for name, by_condition in rows.items():
        if name == "mean face":
            continue
        cells = [float(np.mean(by_condition[c])) for c in source.conditions]
        print(f"{name:24s}" + "".join(f"{v:>14.3f} ({v / base:.3f}x)" for v in cells))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
