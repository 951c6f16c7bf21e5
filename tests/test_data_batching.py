"""Hybrid sampler structure, DDP sharding, resume, collate, augmentation (flip keeps features)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_data

from facerep.core.interfaces import FaceDataset
from facerep.data.augment import Augment, hflip, rescale
from facerep.data.collate import collate_samples
from facerep.data.hybrid import HybridDataset
from facerep.data.sampler import HybridBatchSampler
from facerep.geometry.ibug_layout import IBUG_MIRROR


class _Toy(FaceDataset):
    """n identities x m photos of 8 px images; the pixel value encodes the index."""

    def __init__(self, identities: list[int], labelled: bool) -> None:
        self.identities = identities
        self.labelled = labelled

    def __len__(self) -> int:
        return len(self.identities)

    def __getitem__(self, i: int) -> dict:
        sample = {
            "image": torch.full((3, 8, 8), i / 1000.0),
            "mask": torch.ones(1, 8, 8),
            "landmarks": torch.rand(68, 2) * 8,
            "identity": self.identities[i],
            "sample_id": f"{i}",
        }
        if self.labelled:
            sample["id_params"] = torch.full((5,), float(i))
            sample["exp_params"] = torch.full((3,), float(-i))
        return sample


def _unlabelled(n_id: int = 12, per: int = 9) -> _Toy:
    return _Toy([i for i in range(n_id) for _ in range(per)], labelled=False)


def _labelled(n: int = 30) -> _Toy:
    return _Toy([i // 3 for i in range(n)], labelled=True)


def test_batches_hold_p_identities_by_k_photos_then_labelled_pairs() -> None:
    data = HybridDataset({"photos": _unlabelled(), "labelled": _labelled()})
    sampler = data.sampler(identities_per_batch=4, photos_per_identity=3, labelled_pairs=2)
    ident = np.asarray(data.identities)
    flags = np.asarray(data.labelled)
    batches = [[i for i, _ in b] for b in sampler]
    assert len(batches) == len(sampler) == (12 * 3) // 4
    seen = []
    for b in batches:
        assert len(b) == 4 * 3 + 2 * 2
        unl, lab = b[:12], b[12:]
        assert not flags[unl].any() and flags[lab].all()
        groups = ident[unl].reshape(4, 3)
        assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 4
        assert len(set(unl)) == 12  # K different photos
        seen.extend(unl)
    assert len(seen) == len(set(seen))  # each photo at most once per epoch


def test_collate_offsets_identities_and_pairs() -> None:
    data = HybridDataset({"photos": _unlabelled(), "labelled": _labelled()})
    sampler = data.sampler(4, 3, 2)
    batch = data.collate()([data[k] for k in next(iter(sampler))])
    assert batch.images.shape == (16, 3, 8, 8) and batch.landmarks.shape == (16, 68, 2)
    assert batch.labelled.tolist() == [False] * 12 + [True] * 4
    assert (batch.identity[:12] < 12).all() and (batch.identity[12:] >= 12).all()
    assert batch.pair_index.tolist() == [-1] * 12 + [13, 12, 15, 14]
    assert batch.id_params.shape == (16, 5) and (batch.id_params[:12] == 0).all()
    assert len(batch.sample_ids) == 16
    assert data.num_identities == 12 + 10


def _ddp_sampler(data: HybridDataset, rank: int, replicas: int = 3, **kw: int) -> HybridBatchSampler:
    sizes = dict(identities_per_batch=3, photos_per_identity=4, labelled_pairs=3) | kw
    return HybridBatchSampler(
        data.identities, data.labelled, num_replicas=replicas, rank=rank, seed=7, **sizes
    )


def test_ddp_shards_partition_every_global_batch_with_its_single_process_seeds() -> None:
    unl, lab = _unlabelled(16, 8), _labelled(40)
    data = HybridDataset([unl, lab])
    single = _ddp_sampler(data, 0, replicas=1)
    single.set_epoch(2)
    whole = list(single)
    shards = []
    for rank in range(3):
        s = _ddp_sampler(data, rank)
        s.set_epoch(2)
        shards.append(list(s))
        assert len(shards[-1]) == len(s) == len(whole)  # every rank runs every step
    ident = np.asarray(data.identities)
    for step, batch in enumerate(whole):
        parts = [shard[step] for shard in shards]
        assert all(len(p) == (3 * 4 + 2 * 3) // 3 for p in parts)
        # the ranks' rows are the single-process rows, each with the same augmentation seed
        assert sorted(row for p in parts for row in p) == sorted(batch)
        for p in parts:
            rows = [i for i, _ in p]
            assert len(set(ident[rows[:4]])) == 1 and not np.asarray(data.labelled)[rows[:4]].any()
            assert all(data.labelled[i] for i in rows[4:])  # one labelled pair, partners adjacent
    again = _ddp_sampler(data, 1)
    again.set_epoch(2)
    assert list(again) == shards[1]
    again.set_epoch(3)
    assert list(again) != shards[1]


def test_ddp_batch_sizes_must_divide_among_processes() -> None:
    data = HybridDataset([_unlabelled(16, 8), _labelled(40)])
    with pytest.raises(ValueError, match="labelled_pairs = 2 is not a multiple of the 3 processes"):
        _ddp_sampler(data, 0, labelled_pairs=2)


def test_state_dict_resumes_exactly_mid_epoch() -> None:
    data = HybridDataset([_unlabelled(), _labelled()])
    s = data.sampler(4, 3, 2, seed=3)
    s.set_epoch(1)
    full = list(s)
    it = iter(s)
    consumed = [next(it) for _ in range(4)]
    state = s.state_dict()
    assert state["batches_done"] == 4 and state["epoch"] == 1
    fresh = data.sampler(4, 3, 2, seed=3)
    fresh.load_state_dict(state)
    fresh.set_epoch(1)
    assert len(fresh) == len(full) - 4
    assert consumed + list(fresh) == full
    assert len(fresh) == len(full)  # the next epoch starts from its beginning


def test_loader_with_workers_matches_single_process() -> None:
    data = HybridDataset(
        {"photos": _unlabelled(), "labelled": _labelled()}, augment=Augment(True, (0.8, 1.0))
    )
    batches = {}
    for workers in (0, 2):
        loader = data.loader(
            {"identities": 4, "photos_per_identity": 3, "labelled_pairs": 2}, num_workers=workers, seed=5
        )
        batches[workers] = [b for _, b in zip(range(3), loader, strict=False)]
    for a, b in zip(batches[0], batches[2], strict=True):
        assert a.sample_ids == b.sample_ids
        torch.testing.assert_close(a.images, b.images)  # per-sample seeds: same augmentation everywhere


def _real_sample() -> dict:
    from facerep.data.imagefile import center_box, crop_resize, load_image
    from facerep.data.sidecars import read_pts

    folder = shared_data("photos", "landmarks68")
    image = load_image(folder / "einstein.jpg")
    img, lm, _ = crop_resize(image, center_box(*image.size), 96, read_pts(folder / "einstein.pts"))
    return {"image": img, "mask": torch.ones(1, 96, 96), "landmarks": lm, "identity": 0, "sample_id": "e"}


def _patch_mean(image: torch.Tensor, point: torch.Tensor, r: int = 2) -> torch.Tensor:
    x, y = int(point[0]), int(point[1])
    return image[:, y - r : y + r + 1, x - r : x + r + 1].mean(dim=(1, 2))


def test_flip_keeps_landmarks_on_their_features() -> None:
    sample = _real_sample()
    flipped = hflip(sample)
    lm, lmf = sample["landmarks"], flipped["landmarks"]
    # the permutation is an involution and maps the left jaw end to the left jaw end of the mirror image
    assert sorted(IBUG_MIRROR) == list(range(68)) and all(IBUG_MIRROR[IBUG_MIRROR[i]] == i for i in range(68))
    assert lmf[0, 0] < lmf[16, 0] and lmf[36, 0] < lmf[45, 0] and lmf[48, 0] < lmf[54, 0]
    # each flipped landmark sits on the pixels its mirrored partner sat on
    for i in (30, 36, 45, 48, 8):
        torch.testing.assert_close(
            _patch_mean(flipped["image"], lmf[i]),
            _patch_mean(sample["image"], lm[IBUG_MIRROR[i]]),
            atol=0.02,
            rtol=0,
        )
    torch.testing.assert_close(hflip(flipped)["landmarks"], lm)
    torch.testing.assert_close(hflip(flipped)["image"], sample["image"])


def test_rescale_moves_landmarks_with_the_content() -> None:
    sample = _real_sample()
    small = rescale(sample, 0.8)
    assert small["image"].shape == sample["image"].shape
    lm, lms = sample["landmarks"], small["landmarks"]
    centre = torch.tensor([48.0, 48.0])
    torch.testing.assert_close(lms - centre, (lm - centre) * 0.8, atol=0.6, rtol=0)
    for i in (30, 36, 45):
        torch.testing.assert_close(
            _patch_mean(small["image"], lms[i], 1), _patch_mean(sample["image"], lm[i], 1), atol=0.06, rtol=0
        )
    assert small["mask"][0, 0, 0] == 0 and small["mask"][0, 48, 48] == 1


def test_augment_scale_range_and_labelled_flip_needs_face_model() -> None:
    aug = Augment(flip=True, scale=(0.8, 1.0))
    sample = _real_sample()
    sample["id_params"], sample["exp_params"] = torch.zeros(3), torch.zeros(2)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        out = aug(sample, g)
        assert not out.get("flipped", False)  # labelled without a face model: never flipped
        extent = out["landmarks"][:, 0].max() - out["landmarks"][:, 0].min()
        base = sample["landmarks"][:, 0].max() - sample["landmarks"][:, 0].min()
        assert 0.79 * base <= extent <= base + 1e-4
    with pytest.raises(ValueError):
        Augment(scale=(0.5, 1.2))


def test_collate_rejects_mixed_sizes() -> None:
    from facerep.common.errors import DataError

    a = _Toy([0], False)[0]
    b = dict(a, image=torch.zeros(3, 4, 4), sample_id="b")
    with pytest.raises(DataError, match="different image sizes"):
        collate_samples([a, b])


def test_single_kind_sources_and_bad_sizes() -> None:
    only_labelled = HybridDataset([_labelled(20)])
    s = only_labelled.sampler(identities_per_batch=4, photos_per_identity=2, labelled_pairs=2)
    batches = [[i for i, _ in b] for b in s]
    assert len(batches) == 20 // 4 and all(len(b) == 4 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(20))  # one pass over the labelled set
    only_photos = HybridDataset([_unlabelled(5, 3)])
    s = only_photos.sampler(identities_per_batch=2, photos_per_identity=4, labelled_pairs=3)
    for b in s:  # fewer photos than K: the identity's photos repeat within its group
        ident = np.asarray(only_photos.identities)[[i for i, _ in b]]
        assert len(b) == 8 and (ident[:4] == ident[0]).all() and (ident[4:] == ident[4]).all()
    with pytest.raises(ValueError, match="6 distinct unlabelled identities"):
        HybridBatchSampler([0, 1, 2], [False] * 3, identities_per_batch=6, labelled_pairs=0)
