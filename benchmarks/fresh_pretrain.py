"""Landmark pre-training on fresh synthetic faces, alone, scored on the synthetic MICC.

What `train.landmark_pretrain` with ``source: fresh`` learns before any image step: the encoder's
landmark heads (`facerep.nn.landmark_input.LandmarkHeads`, identity 128 and expression 64, linear,
started small) and the linear shape decoder (``--no-detail``: the 3DMM alone; by default with its
learnt ``detail`` beyond the 3DMM's span) fitted by Adam with a cosine schedule to batches of fresh
faces (`facerep.world.fresh_faces.FreshFaces`, exact shapes as targets), with the pre-training's
own loss (`facerep.train.landmark_pretrain.pretrain_loss`). Then every MICC video's frames are read
by the heads, decoded with a zero expression code and averaged (the MICC protocol's identity
average), and scored as `facerep bench` scores a run.

``--ridge`` adds reference read-outs, fitted in closed form on fresh faces: ridge regressions from the
landmarks' features (`landmark_features`) to the neutral shape's vertices, one to the exact shapes and
one to their 3DMM fits (what 300W-LP-style labels hold). Their gap is what the faces' detail beyond the
3DMM's span is worth on MICC.

    python benchmarks/fresh_pretrain.py                          # the demo's pre-training, ~2 min
    python benchmarks/fresh_pretrain.py --steps 8000 --ridge     # demo_long's, and the references
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _micc_landmarks import micc_landmark_scores, print_scores  # noqa: E402

from facerep.core.registry import get_registry  # noqa: E402
from facerep.core.types import CodeSizes  # noqa: E402
from facerep.nn.landmark_input import LandmarkHeads, landmark_features  # noqa: E402
from facerep.train.landmark_pretrain import pretrain_loss  # noqa: E402
from facerep.train.validation import RidgeFit  # noqa: E402
from facerep.world.fresh_faces import FreshFaces  # noqa: E402


def ridge_readouts(face_model: object, faces: FreshFaces, count: int, ridge: float) -> dict:
    """Closed-form ridge read-outs landmarks -> neutral vertices on `count` fresh faces: to the exact
    shapes and to their 3DMM fits."""
    generator = torch.Generator().manual_seed(7)
    draws = [faces.draw(5000, generator) for _ in range(max(1, count // 5000))]
    features = torch.cat([landmark_features(d.landmarks.double()) for d in draws])
    exact = torch.cat([d.neutral for d in draws])
    with torch.no_grad():
        fitted = face_model.shape(*face_model.fit(exact)).float()
    mean = torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float64)
    readouts = {}
    targets = {f"ridge to exact shapes ({count})": exact, f"ridge to 3DMM fits ({count})": fitted}
    for name, target in targets.items():
        fit = RidgeFit.fit(features, (target.double() - mean).flatten(1), ridge)

        def predict(marks: torch.Tensor, fit: RidgeFit = fit) -> torch.Tensor:
            return fit(landmark_features(marks.double())).mean(0).view_as(mean) + mean

        readouts[name] = predict
    return readouts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.02], help="landmark noise, box fraction")
    parser.add_argument("--no-detail", action="store_true", help="the linear decoder without its detail")
    parser.add_argument("--ridge", action="store_true", help="add the closed-form ridge read-outs")
    parser.add_argument("--ridge-faces", type=int, default=40000)
    args = parser.parse_args()
    started = time.perf_counter()
    face_model = get_registry().build("facemodel", {"type": "synthetic", "vertices": 2000, "seed": 0})
    predictors = {}
    for noise in args.noise:
        torch.manual_seed(0)
        faces = FreshFaces(face_model, noise=noise)
        heads = LandmarkHeads({"identity": 128, "expression": 64}, noise=0.0)
        heads.start_small(["identity", "expression"])
        decoder = get_registry().build(
            "shape_decoder",
            {"type": "linear", "detail": not args.no_detail},
            {"face_model": face_model, "code_sizes": CodeSizes()},
        )
        optimiser = torch.optim.Adam([*heads.parameters(), *decoder.parameters()], lr=args.lr)
        generator = torch.Generator().manual_seed(11)
        for step in range(args.steps):
            for group in optimiser.param_groups:
                group["lr"] = args.lr * 0.5 * (1.0 + math.cos(math.pi * step / args.steps))
            batch = faces.draw(args.batch, generator)
            loss = pretrain_loss(decoder, heads(batch.landmarks), batch.shape, batch.neutral, 1.0)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        heads.eval()
        decoder.eval()
        name = f"pre-trained, noise {noise:g}" + (", no detail" if args.no_detail else "")
        seconds = time.perf_counter() - started
        print(f"{name}: {args.steps} steps, loss {loss.item():.2f} mm^2 ({seconds:.0f} s)", flush=True)

        def predict(marks: torch.Tensor, heads: LandmarkHeads = heads, decoder: torch.nn.Module = decoder):
            codes = heads(marks)
            identity = codes["identity"].mean(0, keepdim=True)
            return decoder(identity, torch.zeros_like(codes["expression"][:1]))[0]

        predictors[name] = predict
        if args.ridge and noise == args.noise[0]:
            predictors.update(ridge_readouts(face_model, faces, args.ridge_faces, 10.0))
    mean_face, scores = micc_landmark_scores(face_model, predictors)
    print_scores(mean_face, scores, "MICC identity average, from the videos' landmarks")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
