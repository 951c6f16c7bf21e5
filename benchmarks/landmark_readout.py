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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _micc_landmarks import micc_landmark_scores, print_scores  # noqa: E402

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

    def readout(fit: RidgeFit) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda marks: fit(landmark_features(marks.double())).mean(0).view_as(mean) + mean

    base, rows = micc_landmark_scores(face_model, {name: readout(fit) for name, fit in fits.items()})
    print_scores(base, rows, "MICC, identity from landmarks averaged over frames")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
