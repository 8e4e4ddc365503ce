"""Segment and recognise (LeCun et al. 1998, Sec. V-VI): heuristic over-segmentation of
the ink, the recognizer scoring every candidate, and the best path through the graph.

The ink's connected pieces are the first segmentation; a piece wider than a digit is
cut further, vertically, at the columns where it has least ink (the contact points of
touching digits). Consecutive pieces combine into candidates (a digit broken in two, a
digit cut where it should not be), each normalised exactly as MNIST's digits were
(``transforms.digits.mnist_style``: the ink's box scaled into 20x20, centred by mass in
28x28) and scored by the network's log-probability of its best class, plus a prior
against candidates wider than a digit. ``viterbi.best_path`` keeps the best
segmentation. Specks much smaller than the digits may be left out.
"""

from dataclasses import dataclass

import numpy as np
import torch

from cnnkit.read.ink import Ink
from cnnkit.read.results import DigitBox
from cnnkit.read.viterbi import Arc, best_path
from cnnkit.runs import Run
from cnnkit.transforms.digits import mnist_style

HEIGHT_WINDOW = 9  # columns over which a digit's height is measured
MAX_PIECES = 3  # a digit is cut into at most this many pieces
CUT_MARGIN = 0.15  # no cut nearer a piece's side than this many digit heights
CUT_SPACING = 0.2  # nor nearer another cut
WIDE = 1.25  # a piece wider than this many digit heights may hold several digits
SIDE_STEP = 0.3  # what a cut path's step sideways costs, in pixels of ink crossed
TOO_WIDE = 0.8  # candidates wider than this many digit heights are penalised ...
WIDTH_PENALTY = 4.0  # ... by this much log-probability per digit height beyond it
WIDEST = 1.8  # and none is wider than this
BROKEN_GAP = 0.1  # pieces of two components this close (digit heights) may be one digit
DIGIT_COST = 0.5  # log-probability each digit costs, so that a digit cut in two loses
SPECK = 0.35  # a component lower than this many digit heights may be a speck


@dataclass(frozen=True)
class Piece:
    """Ink of one component between two cuts: in each row y of its component's box,
    the columns ``left[y] <= x < right[y]`` (image columns)."""

    component: int  # its label in ``Ink.labels``
    top: int  # the component box's first row
    left: np.ndarray  # int (rows,)
    right: np.ndarray  # int (rows,)
    box: tuple[int, int, int, int]
    is_speck: bool

    def pixels(self, labels: np.ndarray) -> np.ndarray:
        """bool mask (H, W) of this piece's ink in the image's ``labels``."""
        rows = self.top + np.arange(len(self.left))
        columns = np.arange(labels.shape[1])[None, :]
        within = (columns >= self.left[:, None]) & (columns < self.right[:, None])
        mask = np.zeros(labels.shape, bool)
        mask[rows] = within & (labels[rows] == self.component)
        return mask


def digit_height(ink: Ink) -> float:
    """The height of a digit on this line. A component's height overstates it where
    touching digits step up or down the baseline, so it is the ink's vertical extent
    in windows of a few columns (the upper quartile over the larger components)."""
    boxes, areas = ink.boxes(), ink.areas()
    extents = []
    for component in np.flatnonzero(areas >= 0.2 * areas.max()) + 1:
        x0, y0, x1, y1 = (int(v) for v in boxes[component - 1])
        inside = ink.labels[y0:y1, x0:x1] == component
        rows = np.arange(y1 - y0)[:, None]
        tops = np.where(inside, rows, y1 - y0).min(axis=0)
        bottoms = np.where(inside, rows, -1).max(axis=0)
        window = min(HEIGHT_WINDOW, x1 - x0)
        for left in range(0, x1 - x0 - window + 1):
            span = slice(left, left + window)
            extents.append(bottoms[span].max() - tops[span].min() + 1)
    return float(max(np.percentile(extents, 75), 4.0))


def pieces_of(ink: Ink, height: float) -> list[Piece]:
    """The over-segmentation: each component, wide ones cut along the paths of least ink
    from top to bottom, left to right by their centres."""
    boxes, areas = ink.boxes(), ink.areas()
    big_area = float(np.median(areas[areas >= 0.2 * areas.max()]))
    pieces = []
    for component in range(1, ink.count + 1):
        x0, y0, x1, y1 = (int(v) for v in boxes[component - 1])
        is_speck = y1 - y0 < SPECK * height and areas[component - 1] < 0.25 * big_area
        inside = ink.labels[y0:y1, x0:x1] == component
        cuts = [x0 + seam for seam in cut_paths(inside, height)]
        edges = [np.full(y1 - y0, x0), *cuts, np.full(y1 - y0, x1)]
        columns = np.arange(x0, x1)[None, :]
        for left, right in zip(edges[:-1], edges[1:], strict=True):
            within = inside & (columns >= left[:, None]) & (columns < right[:, None])
            if within.any():
                box = mask_box(within, x0, y0)
                pieces.append(Piece(component, y0, left, right, box, bool(is_speck)))
    return sorted(pieces, key=lambda p: (p.box[0] + p.box[2], p.box[1]))


def cut_paths(inside: np.ndarray, height: float) -> list[np.ndarray]:
    """Where a component wider than a digit may be cut: paths from its top row to its
    bottom row, one column per row, that cross the least ink (a step sideways costs a
    little), ending at local minima of that cost, away from the sides and each other,
    cheapest first; each as its column in every row, left to right."""
    rows, width = inside.shape
    if width <= WIDE * height:
        return []
    cost = np.zeros(width)
    moves = np.zeros((rows, width), np.int64)
    for row in range(rows):
        left = np.concatenate([[np.inf], cost[:-1]]) + SIDE_STEP
        right = np.concatenate([cost[1:], [np.inf]]) + SIDE_STEP
        options = np.stack([left, cost, right])
        moves[row] = options.argmin(axis=0) - 1
        cost = options.min(axis=0) + inside[row]
    margin, spacing = max(2, round(CUT_MARGIN * height)), max(2, round(CUT_SPACING * height))
    inner = range(margin, width - margin)
    minima = [c for c in inner if cost[c] <= cost[c - 1] and cost[c] <= cost[c + 1]]
    most = max(1, round(2.5 * width / height))
    chosen: list[int] = []
    for c in sorted(minima, key=lambda c: (cost[c], c)):
        if all(abs(c - other) >= spacing for other in chosen):
            chosen.append(c)
        if len(chosen) == most:
            break
    paths = []
    for end in sorted(chosen):
        path, column = np.empty(rows, np.int64), end
        for row in range(rows - 1, -1, -1):
            path[row] = column
            column += moves[row, column]
        paths.append(path)
    return paths


def mask_box(mask: np.ndarray, x0: int, y0: int) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def union_box(pieces: list[Piece]) -> tuple[int, int, int, int]:
    return (
        min(p.box[0] for p in pieces),
        min(p.box[1] for p in pieces),
        max(p.box[2] for p in pieces),
        max(p.box[3] for p in pieces),
    )


def candidate_image(ink: Ink, pieces: list[Piece]) -> np.ndarray:
    """The ink of ``pieces`` alone (paper and the ink's faint edges kept, other ink
    blanked) as a 28x28 MNIST-style digit."""
    x0, y0, x1, y1 = union_box(pieces)
    labels = ink.labels[y0:y1, x0:x1]
    keep = labels == 0
    for piece in pieces:
        keep |= piece.pixels(ink.labels)[y0:y1, x0:x1]
    strength = np.where(keep, ink.strength[y0:y1, x0:x1], 0.0)
    # On a black border, so that mnist_style takes it as white ink on black paper.
    white_on_black = np.pad(np.rint(255 * strength).astype(np.uint8), 2)
    return mnist_style(white_on_black)


def classify(run: Run, digits: list[np.ndarray]) -> np.ndarray:
    """Probabilities (N, K) of 28x28 uint8 digits, by the run's one inference path."""
    images = torch.from_numpy(np.stack(digits))[:, None]
    return run.logits(images).softmax(dim=1).numpy()


def can_join(left: Piece, right: Piece, height: float) -> bool:
    """Whether two neighbouring pieces may be parts of one digit."""
    if left.component == right.component:
        return True
    gap = max(left.box[0], right.box[0]) - min(left.box[2], right.box[2])
    return gap <= BROKEN_GAP * height


def spans(pieces: list[Piece], height: float) -> list[tuple[int, int]]:
    """The candidates: runs of up to MAX_PIECES neighbouring pieces that may be one digit
    and are not wider than WIDEST digit heights."""
    found = []
    for start in range(len(pieces)):
        for end in range(start + 1, min(start + MAX_PIECES, len(pieces)) + 1):
            if end - start > 1 and not can_join(pieces[end - 2], pieces[end - 1], height):
                break
            box = union_box(pieces[start:end])
            if box[2] - box[0] > WIDEST * height:
                break
            found.append((start, end))
    return found


def read_segmented(
    run: Run, ink: Ink, length: int | None = None
) -> tuple[list[DigitBox], float] | None:
    """The digits of the best segmentation (boxes in the ink's pixels) and the string's
    probability; None when no segmentation (of ``length`` digits) exists."""
    height = digit_height(ink)
    pieces = pieces_of(ink, height)
    candidates = spans(pieces, height)
    probs = classify(run, [candidate_image(ink, pieces[s:e]) for s, e in candidates])
    arcs, chosen = [], {}
    for (start, end), p in zip(candidates, probs, strict=True):
        box = union_box(pieces[start:end])
        excess = max(0.0, (box[2] - box[0]) / height - TOO_WIDE)
        best = int(p.argmax())
        score = float(np.log(max(p[best], 1e-12))) - WIDTH_PENALTY * excess - DIGIT_COST
        arcs.append(Arc(start, end, score))
        chosen[(start, end)] = DigitBox(box, run.classes[best], float(p[best]))
    arcs += [Arc(i, i + 1, 0.0, is_digit=False) for i, p in enumerate(pieces) if p.is_speck]
    path = best_path(arcs, len(pieces) + 1, length)
    if path is None:
        return None
    digits = [chosen[(arc.start, arc.end)] for arc in path if arc.is_digit]
    return digits, float(np.prod([d.probability for d in digits]))
