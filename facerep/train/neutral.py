"""The neutral expression: the expression code a run decodes as "neutral" (stored in its checkpoints;
benchmarks and applications decode identities with it)."""

from __future__ import annotations

import torch
from torch import Tensor

from facerep.train.data_setup import TrainingData
from facerep.train.stage import Components

#: Labelled samples scanned for neutral faces (at most).
NEUTRAL_SCAN = 256


def neutral_candidates(data: TrainingData, limit: int = NEUTRAL_SCAN) -> tuple[Tensor, Tensor] | None:
    """The most neutral labelled samples (smallest expression coefficients): (M, 3, H, W) images and
    their (M, 68, 2) landmarks in pixels of those images (what a landmark-reading encoder reads).

    Scans at most `limit` labelled samples (without augmentation) and keeps the quarter whose 3DMM
    expression coefficients have the smallest norm; None when no source is labelled.
    """
    dataset = data.dataset
    labelled = [i for i, flag in enumerate(dataset.labelled) if flag][:limit]
    if not labelled:
        return None
    augment, dataset.augment = dataset.augment, None
    try:
        samples = [dataset[i] for i in labelled]
    finally:
        dataset.augment = augment
    norms = torch.stack([torch.as_tensor(s["exp_params"]).float().norm() for s in samples])
    keep = norms.argsort()[: max(1, len(samples) // 4)]
    images = torch.stack([samples[int(i)]["image"].float() for i in keep])
    landmarks = torch.stack([torch.as_tensor(samples[int(i)]["landmarks"]).float() for i in keep])
    return images, landmarks


def neutral_expression(comps: Components, device: torch.device) -> Tensor:
    """(D_exp,) the mean expression code of the most neutral labelled training images
    (`neutral_candidates`, encoded with their landmarks); zeros without labelled data. Leaves the model
    in eval mode."""
    size = int(comps.model.encoder.code_sizes["expression"])
    candidates = neutral_candidates(comps.data, limit=NEUTRAL_SCAN)
    if candidates is None:
        return torch.zeros(size)
    images, landmarks = candidates
    comps.model.eval()
    with torch.no_grad():
        codes = [
            comps.model.encode(chunk.to(device), marks.to(device)).expression.float().cpu()
            for chunk, marks in zip(images.split(32), landmarks.split(32), strict=True)
        ]
    return torch.cat(codes).mean(0)
