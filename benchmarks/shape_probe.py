"""How fast can a recipe's encoder and decoders learn 3D shape from images? A held-out learning probe.

    python benchmarks/shape_probe.py [--recipe demo] [--labelled 3000] [--steps 1000] \
        [--losses shape,landmark] [--lr 1e-4] [--batch 16] [--set KEY=VALUE ...]

Builds the recipe's first stage as `facerep run` does, with a synthetic 300W-LP-style labelled set of
``--labelled`` identities (one view each, the recipe world's image size and face model; generated once and
cached), holds out 128 of those identities, and trains the model on the others with only the named
losses (recipe weights), on labelled rows only, with the recipe's augmentation. Every 100 steps it
prints the held-out per-vertex L1 (mm) of the decoded shape against the 3DMM shape, and of the decoded
identity shape (neutral expression code) against the identity-only 3DMM shape, next to the mean face's.

Two references come with it: the mean face (what a model that learnt nothing scores) and a ridge
regression from the ground-truth 2D landmarks to the shape (how much shape a linear read-out of the
face's geometry in the image recovers, i.e. that the information is there). See
benchmarks/RESULTS.md, "Shape learning probe".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facerep.common.paths import cache_dir
from facerep.core.interfaces import LossContext
from facerep.core.recipe import load_recipe
from facerep.train.data_setup import world_path
from facerep.train.stage import build_stage
from facerep.world.synth import WorldPreset, generate_world, get_preset

HELD_OUT = 128


def probe_world(recipe_preset: str, seed: int, labelled: int) -> Path:
    """A cached world like the recipe's, with `labelled` one-view 300W-LP identities (few others)."""
    base = get_preset(recipe_preset)
    preset = WorldPreset(
        f"probe-{base.name}", base.image_size, base.vertices, base.scan_vertices, 8, 4, labelled, 1, 2, 2
    )
    out = cache_dir() / "probe" / f"{preset.name}-{labelled}-{seed}"
    if not (out / "world.json").is_file():
        generate_world(out, preset, seed)
    return out


def l1(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over rows and vertices of |dx| + |dy| + |dz| (mm)."""
    return float((pred - target).abs().sum(-1).mean())


def landmark_ridge(train_lm: torch.Tensor, train_y: torch.Tensor, test_lm: torch.Tensor) -> torch.Tensor:
    """Ridge regression from centred, scale-normalised 2D landmarks (M, 68, 2) to shapes (M, N, 3)."""

    def features(lm: torch.Tensor) -> torch.Tensor:
        lm = lm.double() - lm.double().mean(1, keepdim=True)
        return (lm / lm.norm(dim=(1, 2), keepdim=True)).flatten(1)

    x, xt = features(train_lm), features(test_lm)
    y = train_y.double().flatten(1)
    xm, ym = x.mean(0), y.mean(0)
    a = x - xm
    w = torch.linalg.solve(a.T @ a + 1e-4 * torch.eye(a.shape[1], dtype=a.dtype), a.T @ (y - ym))
    return ((xt - xm) @ w + ym).reshape(len(test_lm), *train_y.shape[1:]).float()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="demo_pixels")  # the pixels-only demo RESULTS measured
    parser.add_argument("--labelled", type=int, default=3000, help="labelled identities (one view each)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--losses", default="shape,landmark", help="recipe loss roles to train with")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.manual_seed(0)

    recipe = load_recipe(args.recipe, overrides=args.overrides)
    stage = recipe.stage(recipe.stage_names()[0])
    world = probe_world(
        str(stage.get("data.world.preset")), int(stage.get("data.world.seed", 0)), args.labelled
    )
    overrides = [*args.overrides, f"data.sources.labelled.root={world / '300w_lp'}"]
    recipe = load_recipe(args.recipe, overrides=overrides)
    stage = recipe.stage(recipe.stage_names()[0])
    print(f"recipe {args.recipe}: world {world_path(stage)}; labelled set {world / '300w_lp'}")
    comps = build_stage(stage, device=torch.device("cpu"))
    data, model, fm = comps.data.dataset, comps.model, comps.face_model
    collate = data.collate()
    labelled = [i for i, flag in enumerate(data.labelled) if flag]
    test_rows, train_rows = labelled[-HELD_OUT:], labelled[:-HELD_OUT]
    plain = data.augment
    data.augment = None
    test = collate([data[i] for i in test_rows])
    train_plain = collate([data[i] for i in train_rows])
    data.augment = plain
    target = fm.shape(test.id_params, test.exp_params).float()
    target_id = fm.shape(test.id_params, torch.zeros_like(test.exp_params)).float()
    mean = torch.as_tensor(np.asarray(fm.mean), dtype=torch.float32)[None]
    train_target = fm.shape(train_plain.id_params, train_plain.exp_params).float()
    ridge = landmark_ridge(train_plain.landmarks, train_target, test.landmarks)
    print(
        f"held-out {len(test_rows)} identities, trained on {len(train_rows)}: "
        f"mean face L1 {l1(mean, target):.3f} mm (identity shape {l1(mean, target_id):.3f}); "
        f"landmark ridge {l1(ridge, target):.3f} mm"
    )

    roles = [r.strip() for r in args.losses.split(",") if r.strip()]
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    context = LossContext(face_model=fm, shape_decoder=model.shape_decoder, critic=None, step=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    print("| step | held-out L1 (mm) | identity-shape L1 (mm) | spread over images (mm) | s |")
    print("|---:|---:|---:|---:|---:|")
    for step in range(args.steps + 1):
        if step % 100 == 0:
            model.eval()
            with torch.no_grad():
                codes = model.encode(test.images, test.landmarks)
                shapes = model.decode_shape(codes.identity, codes.expression)
                neutral = model.decode_shape(codes.identity, torch.zeros_like(codes.expression))
            model.train()
            print(
                f"| {step} | {l1(shapes, target):.3f} | {l1(neutral, target_id):.3f} | "
                f"{float(shapes.std(0).mean()):.3f} | {time.perf_counter() - start:.0f} |",
                flush=True,
            )
        if step == args.steps:
            break
        rows = rng.choice(train_rows, args.batch, replace=False)
        batch = collate([data[(int(i), int(rng.integers(1 << 62)))] for i in rows])
        recon = model(
            batch.images, batch.landmarks, render=any(r in ("landmark", "photometric") for r in roles)
        )
        total = sum(comps.losses[r].weight * comps.losses[r](batch, recon, context) for r in roles)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()


if __name__ == "__main__":
    main()
