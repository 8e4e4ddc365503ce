"""The ink of a photographed or scanned number, found as ``predict``'s photo path finds a
digit's (``transforms.digits.mnist_style``): grayscale, the paper's colour from the
image's border, dark ink on light paper inverted, the paper subtracted, and ink where it
is brighter than a fixed fraction of the darkest stroke. Then the ink's connected pieces,
8-connected as a pen stroke is.

Connected components are labelled here from runs of ink along each row, joined through
a union-find: a few hundred runs for a field of digits, so plain Python is quick, and
scipy (which has ``ndimage.label``) is not one of cnnkit's dependencies.
"""

from dataclasses import dataclass

import numpy as np

from cnnkit.transforms.digits import INK_THRESHOLD, border_median, shrunk

MAX_SIDE = 1024  # a larger photo is shrunk first: 1024 pixels hold 5 digits of 200


@dataclass(frozen=True)
class Ink:
    """The ink of an image: ``strength`` 0 on paper to 1 at the darkest stroke, ``labels``
    numbering its 8-connected pieces 1..``count`` (0 is paper)."""

    strength: np.ndarray  # float32 (H, W)
    labels: np.ndarray  # int32 (H, W)
    count: int
    scale: float  # pixels of the image given per pixel here (1 unless it was shrunk)

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0

    def boxes(self) -> np.ndarray:
        """(count, 4) int boxes x0, y0, x1, y1 (exclusive) of the pieces 1..count."""
        boxes = np.zeros((self.count, 4), np.int64)
        ys, xs = np.nonzero(self.labels)
        found = self.labels[ys, xs] - 1
        boxes[:, 0], boxes[:, 1] = self.labels.shape[1], self.labels.shape[0]
        np.minimum.at(boxes[:, 0], found, xs)
        np.minimum.at(boxes[:, 1], found, ys)
        np.maximum.at(boxes[:, 2], found, xs + 1)
        np.maximum.at(boxes[:, 3], found, ys + 1)
        return boxes

    def areas(self) -> np.ndarray:
        """(count,) pixels of ink in each piece."""
        return np.bincount(self.labels.ravel(), minlength=self.count + 1)[1:]


def find_ink(gray: np.ndarray) -> Ink:
    """The ink of a uint8 (H, W) grayscale image of writing on paper."""
    small = shrunk(gray, MAX_SIDE)
    scale = max(gray.shape) / max(small.shape)
    background = border_median(small)
    strength = small.astype(np.float32)
    if background > 127:  # dark ink on light paper: invert to MNIST's white on black
        strength, background = 255.0 - strength, 255.0 - background
    strength = np.clip(strength - background, 0, None)
    peak = float(strength.max())
    if peak <= 0:
        return Ink(strength, np.zeros(strength.shape, np.int32), 0, scale)
    strength /= peak
    labels, count = connected(strength > INK_THRESHOLD)
    return Ink(strength, labels, count, scale)


class DisjointSets:
    """Items 0..count-1 joined into groups (union-find, with path halving)."""

    def __init__(self, count: int) -> None:
        self.parent = list(range(count))

    def root(self, item: int) -> int:
        """The item that stands for ``item``'s group."""
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def join(self, first: int, second: int) -> None:
        self.parent[self.root(first)] = self.root(second)


def connected(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a bool (H, W) mask: int32 labels 1..count (0: none)."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # same order: row by row, left to right
    runs = DisjointSets(len(rows))
    first_of_row = np.searchsorted(rows, np.arange(mask.shape[0] + 1))
    for row in range(1, mask.shape[0]):
        above = range(first_of_row[row - 1], first_of_row[row])
        here = range(first_of_row[row], first_of_row[row + 1])
        if not above or not here:
            continue
        k = above.start
        for run in here:
            # runs of the row above that touch [start - 1, end] (8-connectivity)
            while k < above.stop and ends[k] < starts[run]:
                k += 1
            j = k
            while j < above.stop and starts[j] <= ends[run]:
                runs.join(run, j)
                j += 1
    roots = np.array([runs.root(run) for run in range(len(rows))], np.int64)
    _, numbered = np.unique(roots, return_inverse=True)
    labels = np.zeros(mask.shape, np.int32)
    for run in range(len(rows)):
        labels[rows[run], starts[run] : ends[run]] = numbered[run] + 1
    return labels, int(numbered.max()) + 1 if len(rows) else 0
