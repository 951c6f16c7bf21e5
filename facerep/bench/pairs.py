"""Face-verification pair lists: LFW's ``pairs.txt`` and "every pair" of a folder of identity folders.

LFW layout: ``ROOT/pairs.txt`` and the images ``ROOT/lfw/NAME/NAME_0001.jpg`` (``ROOT/NAME/...`` is
accepted too). ``pairs.txt`` starts with a header, either ``FOLDS<TAB>N`` (``pairs.txt``: each fold is N
same-identity pairs, then N different-identity pairs) or a single ``N`` (``pairsDevTrain.txt`` /
``pairsDevTest.txt``: N same, then N different). Then one pair per line, in one of two forms::

    NAME<TAB>I<TAB>J            same person: NAME_000I.jpg and NAME_000J.jpg
    NAME1<TAB>I<TAB>NAME2<TAB>J  different people

(any whitespace separates the fields). Every pair line names its file and line on error.

"Every pair" (`all_pairs`): a folder whose sub-folders are identities (``ROOT/NAME/*.png``): each
unordered pair of its photos, same identity when both come from one sub-folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from facerep.common.errors import DataError

PAIRS_FILE = "pairs.txt"
#: The `load_pairs` choice that scores every pair of a folder of identity folders.
ALL_PAIRS = "all"
#: Image suffixes looked for (the first one found is used), in order.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
#: Suffixes read as photos of identity folders by `all_pairs`.
PHOTO_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp")


@dataclass(frozen=True)
class Pair:
    """Two images and whether they show the same identity.

    Attributes:
        first, second: image paths.
        same: True for a same-identity pair.
        fold: fold index (0 when the list has no folds).
        where: "file:line" the pair came from (or "" for generated pairs).
    """

    first: Path
    second: Path
    same: bool
    fold: int = 0
    where: str = ""


@dataclass
class PairList:
    """The pairs of one verification set and the images they use (each image once, sorted)."""

    pairs: list[Pair]
    source: str

    @property
    def images(self) -> list[Path]:
        return sorted({p for pair in self.pairs for p in (pair.first, pair.second)})

    @property
    def num_same(self) -> int:
        return sum(p.same for p in self.pairs)

    @property
    def num_different(self) -> int:
        return sum(not p.same for p in self.pairs)


def image_folder(root: Path) -> Path:
    """``ROOT/lfw`` when it exists, else ``ROOT``."""
    sub = root / "lfw"
    return sub if sub.is_dir() else root


def lfw_image(folder: Path, name: str, number: int) -> Path | None:
    """``folder/NAME/NAME_NNNN.jpg`` (or .jpeg / .png) if one exists, else None."""
    for suffix in IMAGE_SUFFIXES:
        path = folder / name / f"{name}_{number:04d}{suffix}"
        if path.is_file():
            return path
    return None


def _int(text: str, where: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"{where}: {what} {text!r} is not a whole number") from None
    if value < 0:
        raise DataError(f"{where}: {what} {value} is negative")
    return value


def read_lfw_pairs(pairs_file: str | Path, images: str | Path | None = None) -> PairList:
    """Parse an LFW ``pairs.txt`` (see the module docstring) and check that every image exists.

    Args:
        pairs_file: the pairs file.
        images: the folder holding ``NAME/NAME_NNNN.jpg``; default `image_folder` of the file's folder.

    Raises:
        DataError: a missing file, a malformed header or line, a count that disagrees with the header,
            or a pair naming an image that is not there (file and line named).
    """
    path = Path(pairs_file).expanduser()
    if not path.is_file():
        raise DataError(
            f"{path}: pairs file not found (LFW layout: ROOT/pairs.txt beside ROOT/lfw/NAME/NAME_0001.jpg)"
        )
    folder = Path(images).expanduser() if images is not None else image_folder(path.parent)
    lines = [(k + 1, line.split()) for k, line in enumerate(path.read_text(encoding="utf-8").splitlines())]
    lines = [(k, fields) for k, fields in lines if fields]
    if not lines:
        raise DataError(f"{path}: empty pairs file")
    head_line, head = lines[0]
    where = f"{path}:{head_line}"
    if len(head) == 2:
        folds, per_fold = _int(head[0], where, "fold count"), _int(head[1], where, "pairs per fold")
    elif len(head) == 1:
        folds, per_fold = 1, _int(head[0], where, "pair count")
    else:
        raise DataError(f"{where}: the header must be 'FOLDS N' or 'N', got {' '.join(head)!r}")
    body = lines[1:]
    expected = 2 * folds * per_fold
    if len(body) != expected:
        raise DataError(
            f"{path}: the header promises {folds} fold(s) x (2 x {per_fold}) = {expected} pairs, "
            f"the file has {len(body)} pair lines"
        )
    pairs = []
    for index, (number, fields) in enumerate(body):
        where = f"{path}:{number}"
        fold, within = divmod(index, 2 * per_fold)
        want_same = within < per_fold
        if len(fields) == 3:
            name, i, j = fields
            first = (name, _int(i, where, "image number"))
            second = (name, _int(j, where, "image number"))
            same = True
        elif len(fields) == 4:
            first = (fields[0], _int(fields[1], where, "image number"))
            second = (fields[2], _int(fields[3], where, "image number"))
            same = False
        else:
            raise DataError(
                f"{where}: a pair line is 'NAME I J' (same person) or 'NAME1 I NAME2 J' (different), "
                f"got {len(fields)} fields"
            )
        if same != want_same:
            kind = "same-person" if want_same else "different-person"
            raise DataError(f"{where}: expected a {kind} pair here (fold {fold + 1}, pair {within + 1})")
        found = []
        for name, num in (first, second):
            image = lfw_image(folder, name, num)
            if image is None:
                raise DataError(
                    f"{where}: the pair names {folder / name / f'{name}_{num:04d}.jpg'}, which does not exist"
                )
            found.append(image)
        pairs.append(Pair(found[0], found[1], same, fold, where))
    return PairList(pairs, str(path))


def all_pairs(root: str | Path) -> PairList:
    """Every unordered pair of the photos in the identity sub-folders of `root` (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    photos: list[tuple[str, Path]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(sub.iterdir()):
            if photo.is_file() and photo.suffix.lower() in PHOTO_SUFFIXES:
                photos.append((sub.name, photo))
    identities = {name for name, _ in photos}
    if len(identities) < 2:
        raise DataError(
            f"{root}: 'every pair' needs identity sub-folders (ROOT/NAME/*.jpg) of at least two people, "
            f"found {len(identities)}"
        )
    pairs = [Pair(a, b, na == nb) for (na, a), (nb, b) in combinations(photos, 2)]
    if not any(p.same for p in pairs):
        raise DataError(f"{root}: no identity folder has two photos: no same-identity pair")
    return PairList(pairs, f"{root} (every pair)")


def load_pairs(root: Path, pairs: str | None) -> PairList:
    """The pair list of `root`: its ``pairs.txt`` (default), a given pairs file, or every pair (``"all"``)."""
    if pairs == ALL_PAIRS:
        return all_pairs(root)
    if root.is_file():  # the pairs file itself
        return read_lfw_pairs(root)
    path = Path(pairs).expanduser() if pairs else root / PAIRS_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: pairs file not found (LFW: ROOT/{PAIRS_FILE} beside ROOT/lfw/NAME/NAME_0001.jpg); "
            f"to score every pair of ROOT's identity folders pass pairs '{ALL_PAIRS}' (--pairs {ALL_PAIRS})"
        )
    return read_lfw_pairs(path, image_folder(root))
