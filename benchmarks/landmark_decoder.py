"""The landmark path without pixels: landmark heads + the GCN shape decoder, trained on labelled landmarks.

What the `landmark_input` encoder's landmark branch can learn on its own, with no image and no
renderer: `facerep.nn.landmark_input.LandmarkHeads` (identity and expression heads) feed the demo's
`gcn` shape decoder (or ``--decoder linear``, the linear 3DMM one); loss = squared (or absolute)
vertex error of decode(identity, expression) against the 3DMM shape plus ``--neutral`` times that of
decode(identity, 0) against the neutral identity shape (mm), on 90% of the labelled images (identities
in order), Adam with a cosine schedule. Reported: held-out identity error (decode(identity, 0) vs the
neutral shape, the last 10%) beside the ridge read-out fitted on the same 90%
(`benchmarks/landmark_readout.py`), and the MICC identity average (codes averaged over a video's
frames, decoded with a zero expression code, scored as `facerep bench` scores a run), with the
ridge's MICC score beside it.

    python benchmarks/landmark_decoder.py --steps 400          # ~12 min on one busy core
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
from facerep.train.validation import RidgeFit  # noqa: E402
from facerep.world.cache import ensure_world, source_root  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--noise", type=float, default=0.02, help="landmark jitter, fraction of the box")
    parser.add_argument("--hidden", type=int, default=0, help="landmark heads' hidden width (0: linear)")
    parser.add_argument("--neutral", type=float, default=1.0, help="weight of the neutral-identity term")
    parser.add_argument("--loss", choices=("l2", "l1"), default="l2")
    parser.add_argument("--ridge", type=float, default=30.0)
    parser.add_argument(
        "--decoder",
        choices=("gcn", "linear"),
        default="gcn",
        help="the demo's GCN shape decoder, or the linear 3DMM one (then the heads start at N(0, 0.01): "
        "two zero-started layers in a row would never move)",
    )
    parser.add_argument("--labelled-sources", type=int, default=4000, help="data.world.labelled_sources")
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()

    world = ensure_world("demo", 0, sizes={"labelled_sources": args.labelled_sources, "views_per_source": 2})
    registry = get_registry()
    face_model = registry.build("facemodel", {"type": "synthetic", "vertices": 2000, "seed": 0})
    labelled = registry.build(
        "dataset", {"type": "w300lp", "root": str(source_root(world, "w300lp"))}, {"face_model": face_model}
    )
    # the loader's own arrays: landmarks in photo pixels (the features ignore the crop's similarity)
    landmarks = torch.as_tensor(np.stack(labelled.landmarks)).float()
    id_params = torch.as_tensor(np.stack(labelled.id_params)).float()
    exp_params = torch.as_tensor(np.stack(labelled.exp_params)).float()
    mean = torch.as_tensor(np.asarray(face_model.mean)).float()
    with torch.no_grad():
        full = torch.as_tensor(face_model.shape(id_params, exp_params)).float()
        neutral = torch.as_tensor(face_model.shape(id_params, torch.zeros_like(exp_params))).float()
    cut = int(len(landmarks) * 0.9) // 2 * 2

    sizes = CodeSizes()
    node = {"type": "gcn", "channels": [128, 64, 32, 16], "K": 6, "factor": 4}
    decoder = registry.build(
        "shape_decoder",
        node if args.decoder == "gcn" else {"type": "linear"},
        {"face_model": face_model, "code_sizes": sizes},
    )
    heads = LandmarkHeads(
        {"identity": sizes.identity, "expression": sizes.expression}, hidden=args.hidden, noise=args.noise
    )
    if args.decoder == "linear":
        heads.start_small(list(heads.heads), 0.01)
    optimiser = torch.optim.Adam([*decoder.parameters(), *heads.parameters()], lr=args.lr)

    def error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = pred - target
        return diff.pow(2).mean() if args.loss == "l2" else diff.abs().mean()

    def held_out_identity() -> float:
        heads.eval()
        decoder.eval()
        with torch.no_grad():
            codes = heads(landmarks[cut:])
            pred = decoder(codes["identity"], torch.zeros_like(codes["expression"]))
        heads.train()
        decoder.train()
        return float((pred - neutral[cut:]).norm(dim=-1).mean())

    mean_face = float((mean - neutral[cut:]).norm(dim=-1).mean())
    print(f"{len(landmarks)} labelled images, {cut} for training ({time.perf_counter() - started:.0f} s)")
    for step in range(args.steps + 1):
        for group in optimiser.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / max(args.steps, 1)))
        rows = torch.randint(0, cut, (args.batch,))
        codes = heads(landmarks[rows])
        loss = error(decoder(codes["identity"], codes["expression"]), full[rows])
        zero = torch.zeros_like(codes["expression"])
        loss = loss + args.neutral * error(decoder(codes["identity"], zero), neutral[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 200 == 0 or step == args.steps:
            ratio = held_out_identity() / mean_face
            print(f"step {step}: loss {loss.item():.3f}, held-out identity {ratio:.3f}x the mean face "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    fit = RidgeFit.fit(
        landmark_features(landmarks[:cut].double()), (neutral[:cut] - mean).flatten(1).double(), args.ridge
    )
    ridge_pred = fit(landmark_features(landmarks[cut:].double())).view(-1, *mean.shape).float() + mean
    ridge_ratio = float((ridge_pred - neutral[cut:]).norm(dim=-1).mean()) / mean_face
    print(f"ridge {args.ridge:g} on the same split: held-out identity {ridge_ratio:.3f}x")

    heads.eval()
    decoder.eval()

    def learnt(marks: torch.Tensor) -> torch.Tensor:
        codes = heads(marks)
        identity = codes["identity"].mean(0, keepdim=True)
        return decoder(identity, torch.zeros_like(codes["expression"][:1]))[0]

    def ridge(marks: torch.Tensor) -> torch.Tensor:
        return fit(landmark_features(marks.double())).mean(0).view_as(mean).float() + mean

    mean_face_mm, scores = micc_landmark_scores(face_model, {"landmark heads": learnt, "ridge": ridge})
    print_scores(mean_face_mm, scores, "MICC identity average")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
