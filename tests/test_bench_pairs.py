"""Verification pair lists: LFW's pairs.txt (both line forms, both headers), every pair of identity folders,
and clear errors for a missing pairs file, an absent image and malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerep.bench.pairs import ALL_PAIRS, all_pairs, load_pairs, read_lfw_pairs
from facerep.common.errors import DataError
from tests.conftest import shared_data

PEOPLE = {"Aaron_Eckhart": 2, "Abel_Pacheco": 3, "Zoe_Ball": 1}


def _lfw(root: Path, pairs_text: str) -> Path:
    for name, count in PEOPLE.items():
        folder = root / "lfw" / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, count + 1):
            (folder / f"{name}_{k:04d}.jpg").write_bytes(b"jpeg")
    (root / "pairs.txt").write_text(pairs_text, encoding="utf-8")
    return root


def test_lfw_pairs_both_line_forms_and_folds(tmp_path: Path) -> None:
    text = (
        "2\t1\n"
        "Aaron_Eckhart\t1\t2\n"  # fold 1: one same pair, one different pair
        "Aaron_Eckhart   1  Zoe_Ball 1\n"  # any whitespace separates the fields
        "Abel_Pacheco\t1\t3\n"  # fold 2
        "Abel_Pacheco\t2\tZoe_Ball\t1\n"
    )
    root = _lfw(tmp_path, text)
    pairs = read_lfw_pairs(root / "pairs.txt")
    assert [p.same for p in pairs.pairs] == [True, False, True, False]
    assert [p.fold for p in pairs.pairs] == [0, 0, 1, 1]
    first = pairs.pairs[0]
    assert first.first == root / "lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    assert first.second == root / "lfw/Aaron_Eckhart/Aaron_Eckhart_0002.jpg"
    assert (
        pairs.pairs[3].first.name == "Abel_Pacheco_0002.jpg"
        and pairs.pairs[3].second.name == "Zoe_Ball_0001.jpg"
    )
    assert pairs.pairs[1].where.endswith("pairs.txt:3")
    assert (pairs.num_same, pairs.num_different, len(pairs.images)) == (2, 2, 6)
    # the single-number header of pairsDevTrain.txt: N same pairs, then N different pairs
    (root / "dev.txt").write_text("1\nAbel_Pacheco 2 3\nAaron_Eckhart 2 Abel_Pacheco 1\n", encoding="utf-8")
    dev = read_lfw_pairs(root / "dev.txt", root / "lfw")
    assert [p.same for p in dev.pairs] == [True, False]
    # load_pairs finds ROOT/pairs.txt
    assert len(load_pairs(root, None).pairs) == 4


def test_missing_pairs_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"pairs.txt: pairs file not found .*--pairs all"):
        load_pairs(tmp_path, None)
    with pytest.raises(DataError, match="pairs file not found"):
        read_lfw_pairs(tmp_path / "pairs.txt")


def test_pair_naming_an_absent_image_is_a_clear_error(tmp_path: Path) -> None:
    root = _lfw(tmp_path, "1\t1\nAaron_Eckhart\t1\t7\nAaron_Eckhart\t1\tZoe_Ball\t1\n")
    with pytest.raises(
        DataError, match=r"pairs.txt:2: the pair names .*Aaron_Eckhart_0007.jpg, which does not exist"
    ):
        read_lfw_pairs(root / "pairs.txt")
    (root / "pairs.txt").write_text(
        "1\t1\nAaron_Eckhart\t1\t2\nAaron_Eckhart\t1\tNobody\t1\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"pairs.txt:3: .*Nobody_0001.jpg, which does not exist"):
        read_lfw_pairs(root / "pairs.txt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty pairs file"),
        ("1 2 3\n", r"pairs.txt:1: the header must be 'FOLDS N' or 'N'"),
        ("x\n", r"pairs.txt:1: pair count 'x' is not a whole number"),
        ("1\t1\nAaron_Eckhart\t1\t2\n", "the header promises 1 fold"),
        (
            "1\t1\nAaron_Eckhart\t1\t2\tZoe_Ball\t1\nAaron_Eckhart\t1\tZoe_Ball\t1\n",
            r"pairs.txt:2: .*got 5",
        ),
        (
            "1\t1\nAaron_Eckhart\t1\tZoe_Ball\t1\nAaron_Eckhart\t1\t2\n",
            r"pairs.txt:2: expected a same-person",
        ),
        ("1\t1\nAaron_Eckhart\tone\t2\nAaron_Eckhart\t1\tZoe_Ball\t1\n", r"pairs.txt:2: image number 'one'"),
    ],
)
def test_malformed_pairs_files(tmp_path: Path, text: str, message: str) -> None:
    root = _lfw(tmp_path, text)
    with pytest.raises(DataError, match=message):
        read_lfw_pairs(root / "pairs.txt")


def test_every_pair_of_identity_folders(tmp_path: Path) -> None:
    for name, count in (("ann", 2), ("bob", 3), ("cy", 1)):
        (tmp_path / name).mkdir()
        for k in range(count):
            (tmp_path / name / f"{name}{k}.png").write_bytes(b"png")
    (tmp_path / "notes.txt").write_text("not a photo")
    pairs = load_pairs(tmp_path, ALL_PAIRS)
    assert len(pairs.pairs) == 15  # 6 photos: 6 * 5 / 2
    assert pairs.num_same == 1 + 3  # ann: 1 pair, bob: 3 pairs
    with pytest.raises(DataError, match="at least two people"):
        all_pairs(tmp_path / "bob")


def test_real_identity_folders_give_780_pairs() -> None:
    root = shared_data("photos", "identities")
    pairs = all_pairs(root)
    assert len(pairs.images) == 40 and len(pairs.pairs) == 780
    assert pairs.num_same == 8 * 10 and pairs.num_different == 700
    assert all(p.first.parent.name == p.second.parent.name for p in pairs.pairs if p.same)
