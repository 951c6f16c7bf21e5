"""Train-step efficiency: time per step, achieved FLOP/s against the machine's GEMM ceiling, time split.

    python benchmarks/train_step.py [--config demo|paper|both] [--steps 3] [--set KEY=VALUE ...]
                                    [--precision 32 bf16-mixed] [--compile]

(``--set`` overrides every measured recipe, e.g. ``--set data.batch.identities=2`` to fit the paper
configuration's step into a small machine's memory: at batch 48 it peaks near 17 GB on the CPU.)

For each configuration the script builds the recipe's first stage exactly as `facerep run` does (with
random tensors standing in for the data, so the loader is not measured here: see benchmarks/data.py),
runs a few warm-up steps, then times full steps (forward, critic steps, losses, backward, optimiser) and
each component's share (forward + backward, measured one component at a time with the others' outputs
fixed). FLOPs of one step are counted with torch.utils.flop_counter; the ceiling is a large float32
matrix multiply measured in the same run, before and after the steps (the higher figure is the
ceiling, so a slow moment of a shared machine does not flatter the ratio). Prints a Markdown table for
benchmarks/RESULTS.md.

``--precision`` takes several values and ``--compile`` adds a torch.compile'd row for each of them
(encoder and decoders compiled in place, as `facerep run --compile` does; the compile time is reported
apart), so the options are compared side by side in one process. FLOPs are counted on the float32
model: the rows share one count, and their FLOP rates compare as their times do.
"""

from __future__ import annotations

# isort: off
import facerep.cli  # noqa: F401 - before torch, for its allocator setting (huge pages), as the facerep command

# isort: on
import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _ab import timed
from torch import Tensor

from facerep.core.interfaces import LossContext
from facerep.core.recipe import load_recipe
from facerep.core.types import Batch
from facerep.train.config import train_config
from facerep.train.options import TrainOptions
from facerep.train.stage import build_stage
from facerep.train.step import train_step
from facerep.train.trainer import Trainer

CONFIGS = {
    "demo": ("demo_pixels", []),  # the pixels-only demo (GCN decoders), what RESULTS measured as "demo"
    "paper": ("full", []),
}


class _FakeSampler:
    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size


class _FakeData:
    """Stands in for the training data: the step is measured on random tensors of the recipe's sizes."""

    def __init__(self, stage, face_model, **_: object) -> None:  # noqa: ANN001
        batch = stage.get("data.batch") or {}
        size = int(batch.get("identities", 8)) * int(batch.get("photos_per_identity", 4))
        self.sampler = _FakeSampler(size + 2 * int(batch.get("labelled_pairs", 8)))
        self.image_size = int(stage.get("data.image_size", 64))
        self.num_identities = 10_000


class _TotalsOnly:
    """Stands in for FlopCounterMode's module tracker: totals only. The tracker's gradient hooks on
    module inputs cannot follow ``autograd.grad`` on a leaf input (the critic's gradient penalty)."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _TotalsOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def gemm_flops(n: int = 2048, repeats: int = 5, rounds: int = 3) -> float:
    """FLOP/s of an n x n float32 matrix multiply (the machine's practical ceiling): best of `rounds`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def fake_batch(comps, batch_size: int, image_size: int) -> Batch:  # noqa: ANN001
    """A hybrid batch of random images with the recipe's structure (half labelled, paired)."""
    fm = comps.face_model
    labelled = torch.zeros(batch_size, dtype=torch.bool)
    labelled[batch_size // 2 :] = True
    pair = torch.full((batch_size,), -1, dtype=torch.long)
    rows = torch.arange(batch_size // 2, batch_size - 1, 2)
    pair[rows], pair[rows + 1] = rows + 1, rows
    return Batch(
        images=torch.rand(batch_size, 3, image_size, image_size),
        masks=torch.ones(batch_size, 1, image_size, image_size),
        landmarks=torch.rand(batch_size, 68, 2) * image_size,
        identity=torch.randint(0, comps.data.num_identities, (batch_size,)),
        labelled=labelled,
        id_params=torch.randn(batch_size, fm.num_id) * torch.as_tensor(fm.id_std).float() * labelled[:, None],
        exp_params=torch.randn(batch_size, fm.num_exp)
        * torch.as_tensor(fm.exp_std).float()
        * labelled[:, None],
        pair_index=pair,
        sample_ids=[f"fake{i}" for i in range(batch_size)],
    )


def measure(
    name: str,
    steps: int,
    out: Path,
    extra: list[str] | None = None,
    precision: str = "32",
    compile: bool = False,
) -> dict[str, float]:
    """Time one configuration's step and its parts (seconds), count its FLOPs (float32 model)."""
    recipe_name, overrides = CONFIGS[name]
    recipe = load_recipe(recipe_name, overrides=[*overrides, *(extra or [])])
    stage_name, stage = next(recipe.stages())
    import facerep.train.data_setup as data_setup

    data_setup.build_training_data = _FakeData  # no synthetic world needed to time the compute
    comps = build_stage(stage, device=torch.device("cpu"))
    trainer = Trainer(recipe, TrainOptions(out=out / name, quiet=True))
    config = train_config(stage)
    b = comps.data.sampler.batch_size
    size = comps.data.image_size
    batch = fake_batch(comps, b, size)
    context = LossContext(
        face_model=comps.face_model, shape_decoder=comps.model.shape_decoder, critic=comps.critic, step=0
    )
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        train_step(trainer.run, comps, batch, config, gen, precision)

    from torch.utils.flop_counter import FlopCounterMode

    model = comps.model
    step()
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalsOnly()
    with counter, torch.autocast("cpu", enabled=False):
        train_step(trainer.run, comps, batch, config, gen, "32")
    flops = counter.get_total_flops()
    compile_s = 0.0
    if compile:
        for part in (model.encoder, model.shape_decoder, model.albedo_decoder):
            part.compile()
        start = time.perf_counter()
        step()  # the first call compiles
        compile_s = time.perf_counter() - start
    t_step = timed(step, steps)

    bf16 = precision == "bf16-mixed"

    def forward(fn: Callable[[], Tensor]) -> Callable[[], None]:
        """`fn`'s forward in the step's precision (autocast covers the model, as in the engine), backward."""

        def run() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = fn()
            out.backward()

        return run

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        codes = model.encode(batch.images, batch.landmarks)
        recon = model(batch.images, batch.landmarks)
    recon = recon.float() if bf16 else recon  # as the engine hands it to the losses
    parts: dict[str, float] = {}

    def encoder_out() -> Tensor:
        c = model.encode(batch.images, batch.landmarks)
        return c.identity.sum() + c.expression.sum() + c.pose.sum() + c.light.sum()

    parts["encoder"] = timed(forward(encoder_out), steps)
    ident = codes.identity.detach().requires_grad_()
    expr = codes.expression.detach().requires_grad_()
    parts["shape decoder"] = timed(forward(lambda: model.decode_shape(ident, expr).sum()), steps)
    detached = type(codes)(
        ident, expr, codes.pose.detach(), codes.light.detach(), [s.detach() for s in codes.skips]
    )
    parts["albedo decoder"] = timed(forward(lambda: model.decode_albedo(detached).sum()), steps)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        verts = model.decode_shape(ident, expr).float()
        albedo = model.decode_albedo(detached).float()
    verts.requires_grad_()
    albedo.requires_grad_()
    pose = codes.pose.detach().float().requires_grad_()
    light = codes.light.detach().float().requires_grad_()
    parts["renderer"] = timed(forward(lambda: model.render(verts, albedo, pose, light).image.sum()), steps)
    recon_fixed = type(recon)(
        codes=detached.float(),  # the losses see float32, as in the engine
        vertices=recon.vertices.detach().requires_grad_(),
        albedo=recon.albedo.detach().requires_grad_(),
        rendering=type(recon.rendering)(
            **{
                k: (v.detach().requires_grad_() if v.is_floating_point() else v)
                for k, v in vars(recon.rendering).items()
            }
        ),
    )

    def losses_part() -> None:
        total = sum(loss.weight * loss(batch, recon_fixed, context) for loss in comps.losses.values())
        total.backward()

    parts["losses"] = timed(losses_part, steps)
    if comps.critic is not None:
        adversarial = next(loss for loss in comps.losses.values() if getattr(loss, "has_critic", False))
        fake = recon.vertices.detach()
        real = comps.face_model.sample(fake.shape[0]).to(fake)
        parts["critic step"] = timed(
            lambda: adversarial.critic_loss(real, fake, comps.critic).backward(), steps
        )
    return {"step": t_step, "flops": flops, "batch": b, "image_size": size, "compile": compile_s, **parts}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=["demo", "paper", "both"], default="demo")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-train-step"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--precision", nargs="+", choices=["32", "bf16-mixed"], default=["32"])
    parser.add_argument("--compile", action="store_true", help="add a torch.compile'd row per precision")
    args = parser.parse_args()
    modes = [(p, c) for p in args.precision for c in ([False, True] if args.compile else [False])]
    names = ["demo", "paper"] if args.config == "both" else [args.config]
    before = gemm_flops()
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        flush=True,
    )
    results = []
    for name, (precision, compiled) in ((n, m) for n in names for m in modes):
        r = measure(name, args.steps, args.out, args.overrides, precision, compiled)
        mode = precision + (f", compiled ({r['compile']:.0f} s to compile)" if compiled else "")
        results.append((name, mode, r))
        print(f"{name} ({mode}): {r['step']:.3f} s/step", flush=True)
    after = gemm_flops()
    ceiling = max(before, after)
    print(
        f"\nGEMM ceiling (2048^2 float32): {ceiling / 1e9:.1f} GFLOP/s "
        f"(before {before / 1e9:.1f}, after {after / 1e9:.1f})\n"
    )
    print(
        "| config | precision | batch | px | s/step | GFLOP/step | GFLOP/s | % of GEMM "
        "| split (s, fwd+bwd each) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, mode, r in results:
        achieved = r["flops"] / r["step"]
        split = ", ".join(
            f"{k} {r[k]:.3f}"
            for k in ("encoder", "shape decoder", "albedo decoder", "renderer", "losses", "critic step")
            if k in r
        )
        print(
            f"| {name} | {mode} | {r['batch']} | {r['image_size']} | {r['step']:.3f} | "
            f"{r['flops'] / 1e9:.2f} | {achieved / 1e9:.1f} | {100 * achieved / ceiling:.0f}% | {split} |"
        )


if __name__ == "__main__":
    main()
