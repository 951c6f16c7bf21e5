"""Loader throughput: images/s decoded + cropped + augmented (flip, scale) into hybrid `Batch`es.

Writes a CelebA-layout folder of JPEGs (with .pts and mask sidecars) per image size, then times the
real training path (CelebA plugin -> HybridDataset with Augment -> HybridBatchSampler -> DataLoader with
Collate) for 0, 1 and 2 worker processes, side by side with the floor of the work: PIL decoding of the
same files alone in the main process. Run:

    .venv/bin/python benchmarks/data.py [--images 512] [--sizes 64 224] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facerep.data.augment import Augment
from facerep.data.hybrid import HybridDataset
from facerep.data.sidecars import landmark_sidecar, mask_sidecar, write_mask, write_pts
from facerep.plugins.datasets.celeba import CelebA


def write_folder(root: Path, size: int, count: int, per_identity: int = 8) -> None:
    """`count` smooth random JPEGs of `size` px in CelebA layout, with landmark and mask sidecars."""
    rng = np.random.default_rng(size)
    rows, parts = [], []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k in range(1, count + 1):
        name = f"{k:06d}.jpg"
        phase = rng.uniform(0, 6.3, 3)
        img = (
            0.5
            + 0.4 * np.sin(6 * xx[..., None] + 4 * yy[..., None] + phase)
            + rng.normal(0, 0.05, (size, size, 3))
        )
        rel = f"img_align_celeba/{name}"
        (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / rel, quality=92)
        pts = size * (0.5 + 0.3 * rng.uniform(-1, 1, (68, 2)))
        write_pts(landmark_sidecar(root, rel), pts)
        write_mask(mask_sidecar(root, rel), ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.12).astype(np.float32))
        rows.append(f"{name} {k // per_identity}")
        parts.append(f"{name} 0")
    (root / "identity_CelebA.txt").write_text("\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")


def decode_only(root: Path) -> float:
    files = sorted((root / "img_align_celeba").glob("*.jpg"))
    start = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            im.convert("RGB").load()
    return len(files) / (time.perf_counter() - start)


def loader_rate(root: Path, size: int, workers: int, epochs: int = 2) -> float:
    data = HybridDataset({"photos": CelebA(root, image_size=size)}, Augment(flip=True, scale=(0.8, 1.0)))
    loader = data.loader(
        {"identities": 8, "photos_per_identity": 4, "labelled_pairs": 0}, num_workers=workers
    )
    count = 0
    next(iter(loader))  # start the workers outside the timing
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch + 1)
        for batch in loader:
            count += batch.size
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    heads = " | ".join(f"loader, {w} workers (img/s)" for w in args.workers)
    print(f"| size | PIL decode only (img/s) | {heads} | best loader / decode |")
    print("|---|---|" + "---|" * len(args.workers) + "---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = Path(tmp) / f"s{size}"
            write_folder(root, size, args.images)
            floor = decode_only(root)
            rates = [loader_rate(root, size, w) for w in args.workers]
            cells = " | ".join(f"{r:.0f}" for r in rates)
            print(f"| {size} | {floor:.0f} | {cells} | {max(rates) / floor:.2f} |")


if __name__ == "__main__":
    main()
