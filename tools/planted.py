"""Planted near-duplicates, to measure ``search dupes``: copies of real photos under
the edits a collection meets: re-encoded as JPEG at quality 50, resized to
half and back, shifted by one pixel, and mirrored (CIFAR models train with flips, so
their features should hold a mirror image close). Precision and recall count pairs:
the planted (original, copy) pairs against the pairs within the groups found.
"""

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from PIL import Image, ImageOps

from cnnkit.search.dupes import DupeGroup

EDITS = ("jpeg50", "resized", "shifted", "mirrored")


def edited(picture: Image.Image, edit: str) -> Image.Image:
    if edit == "resized":
        half = (max(1, picture.width // 2), max(1, picture.height // 2))
        return picture.resize(half, Image.Resampling.BICUBIC).resize(
            picture.size, Image.Resampling.BICUBIC
        )
    if edit == "shifted":  # one pixel right and down, the edge repeated
        padded = ImageOps.expand(picture, border=1)
        padded.paste(picture.crop((0, 0, 1, picture.height)), (0, 1))
        padded.paste(picture.crop((0, 0, picture.width, 1)), (1, 0))
        return padded.crop((0, 0, picture.width, picture.height))
    if edit == "mirrored":
        return ImageOps.mirror(picture)
    return picture  # jpeg50: only the re-encoding below


def plant_copies(originals: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """One edited copy of each original in ``out`` (the edits in turn), saved as JPEG at
    quality 50 for "jpeg50" and at 95 otherwise; the (original, copy) pairs."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for number, original in enumerate(originals):
        edit = EDITS[number % len(EDITS)]
        with Image.open(original) as picture:
            copy = edited(picture.convert("RGB"), edit)
        target = out / f"{number:05d}-{edit}-{original.parent.name}-{original.stem}.jpg"
        copy.save(target, quality=50 if edit == "jpeg50" else 95)
        pairs.append((original.resolve(), target.resolve()))
    return pairs


@dataclass(frozen=True)
class DupeScores:
    precision: float  # of the found pairs with a copy in them, the fraction planted
    recall: float  # of the planted pairs, the fraction found in one group
    planted_pairs: int
    found_pairs: int  # with a copy in them
    other_pairs: int  # between two originals: the collection's own duplicates, or errors
    recall_by_edit: dict[str, float]


def score_dupes(groups: list[DupeGroup], planted: list[tuple[Path, Path]]) -> DupeScores:
    """Precision and recall of ``groups`` on the ``planted`` (original, copy) pairs.
    Pairs of two originals are counted apart: CIFAR-10 holds duplicates of its own
    (Barz and Denzler, "Do we train on test data?", 2020), which no planting knows."""
    copies = {str(copy) for _, copy in planted}
    found = {
        frozenset((str(a.path), str(b.path)))
        for group in groups
        for a, b in combinations(group.records, 2)
    }
    with_copy = {pair for pair in found if pair & copies}
    truth = {frozenset((str(a), str(b))): Path(b).stem.split("-")[1] for a, b in planted}
    hits = with_copy & set(truth)
    by_edit = {
        edit: sum(truth[p] == edit for p in hits) / max(1, sum(e == edit for e in truth.values()))
        for edit in EDITS
    }
    return DupeScores(
        len(hits) / len(with_copy) if with_copy else 1.0,
        len(hits) / len(truth) if truth else 1.0,
        len(truth),
        len(with_copy),
        len(found) - len(with_copy),
        by_edit,
    )
