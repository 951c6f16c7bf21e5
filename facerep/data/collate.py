"""Samples -> `facerep.core.types.Batch`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from facerep.common.errors import DataError
from facerep.core.types import Batch


def collate_samples(
    samples: Sequence[dict[str, Any]], identity_offsets: Mapping[Any, int] | None = None
) -> Batch:
    """Stack sample dicts into a `Batch`.

    Args:
        samples: dicts as documented by `facerep.core.interfaces.FaceDataset`, all with images of one
            size. Labelled samples carry ``id_params`` / ``exp_params``; a sample may carry ``source``
            (the index or name of the dataset it came from).
        identity_offsets: {source: offset} added to each sample's local identity so that the label spaces
            of different sources stay disjoint (see `facerep.data.hybrid.HybridDataset.identity_offsets`).
            Without it identities are used as they are.
    Returns:
        A Batch: images (B, 3, H, W), masks (B, 1, H, W), landmarks (B, 68, 2), identity (B,) long,
        labelled (B,) bool, id_params / exp_params (B, K) (zeros on unlabelled rows; None when no row
        is labelled), pair_index (B,) long: labelled rows pair up in order of appearance (1st with 2nd,
        3rd with 4th, ...; an odd one out and unlabelled rows get -1), sample_ids.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    sizes = {tuple(s["image"].shape) for s in samples}
    if len(sizes) != 1:
        names = [s.get("sample_id", "?") for s in samples]
        raise DataError(f"samples of one batch have different image sizes {sorted(sizes)}: {names}")
    images = torch.stack([s["image"].float() for s in samples])
    _, _, h, w = images.shape
    masks = torch.stack(
        [s["mask"].float() if s.get("mask") is not None else torch.ones(1, h, w) for s in samples]
    )
    landmarks = torch.stack([torch.as_tensor(s["landmarks"], dtype=torch.float32) for s in samples])
    ids = []
    for s in samples:
        offset = 0
        if identity_offsets is not None:
            source = s.get("source")
            if source not in identity_offsets:
                raise KeyError(f"sample {s.get('sample_id')!r} has source {source!r} with no identity offset")
            offset = int(identity_offsets[source])
        ids.append(int(s["identity"]) + offset)
    identity = torch.tensor(ids, dtype=torch.long)
    labelled = torch.tensor([s.get("id_params") is not None for s in samples], dtype=torch.bool)

    id_params = exp_params = None
    if labelled.any():
        first = next(s for s in samples if s.get("id_params") is not None)
        k_id, k_exp = int(first["id_params"].numel()), int(first["exp_params"].numel())
        id_params = torch.zeros(len(samples), k_id)
        exp_params = torch.zeros(len(samples), k_exp)
        for row, s in enumerate(samples):
            if s.get("id_params") is None:
                continue
            if s["id_params"].numel() != k_id or s["exp_params"].numel() != k_exp:
                raise DataError(
                    f"labelled samples of one batch have different 3DMM sizes: {s.get('sample_id')!r} has "
                    f"{s['id_params'].numel()}/{s['exp_params'].numel()}, expected {k_id}/{k_exp}"
                )
            id_params[row] = s["id_params"].float().reshape(-1)
            exp_params[row] = s["exp_params"].float().reshape(-1)

    pair_index = torch.full((len(samples),), -1, dtype=torch.long)
    rows = torch.nonzero(labelled).flatten().tolist()
    for a, b in zip(rows[0::2], rows[1::2], strict=False):
        pair_index[a], pair_index[b] = b, a
    return Batch(
        images=images,
        masks=masks,
        landmarks=landmarks,
        identity=identity,
        labelled=labelled,
        id_params=id_params,
        exp_params=exp_params,
        pair_index=pair_index,
        sample_ids=[str(s.get("sample_id", "")) for s in samples],
    )


class Collate:
    """Picklable DataLoader ``collate_fn`` (works in worker processes): `collate_samples` with offsets."""

    def __init__(self, identity_offsets: Mapping[Any, int] | None = None) -> None:
        self.identity_offsets = dict(identity_offsets) if identity_offsets is not None else None

    def __call__(self, samples: Sequence[dict[str, Any]]) -> Batch:
        return collate_samples(samples, self.identity_offsets)
