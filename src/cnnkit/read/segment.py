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

from cnnkit.read.ink import Ink, connected
from cnnkit.read.results import DigitBox
from cnnkit.read.viterbi import Arc, best_path
from cnnkit.runs import Run
from cnnkit.transforms.digits import mnist_style

HEIGHT_WINDOW = 9  # columns over which a digit's height is measured
MAX_PIECES = 3  # a digit is cut into at most this many pieces
CUT_MARGIN = 0.15  # no cut nearer a piece's side than this many digit heights
CUT_SPACING = 0.2  # nor nearer another cut
WIDE = 1.25  # a piece wider than this many digit heights may hold several digits
CUTS_PER_HEIGHT = 2.5  # at most this many cuts per digit height of a component's width
MOST_STEP = 1  # columns a cut path may move sideways from one row to the next
SIDE_STEP = 0.3  # what a cut path's step sideways costs, in pixels of ink crossed
TOO_WIDE = 0.8  # candidates wider than this many digit heights are penalised ...
WIDTH_PENALTY = 4.0  # ... by this much log-probability per digit height beyond it
WIDEST = 1.8  # and none is wider than this
BROKEN_GAP = 0.1  # pieces of two components this close (digit heights) may be one digit
DIGIT_COST = 0.5  # log-probability each digit costs, so that a digit cut in two loses
DEBRIS = 0.15  # a separate part of a candidate with less of its ink is a neighbour's
CORE = 0.5  # ink above this fraction of the darkest is a stroke's core
SPECK = 0.35  # a component lower than this many digit heights may be a speck


@dataclass(frozen=True)
class Piece:
    """Part of one component's ink: ``mask`` over the component's box, at ``origin``."""

    component: int  # its label in ``Ink.labels``
    origin: tuple[int, int]  # x0, y0 of the component's box
    mask: np.ndarray  # bool (rows, columns) of the component's box
    box: tuple[int, int, int, int]
    is_speck: bool

    def pixels(self, shape: tuple[int, ...]) -> np.ndarray:
        """bool mask of this piece's ink in an image of ``shape`` (H, W)."""
        x0, y0 = self.origin
        full = np.zeros(shape[:2], bool)
        full[y0 : y0 + self.mask.shape[0], x0 : x0 + self.mask.shape[1]] = self.mask
        return full


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
    """The over-segmentation: each component; a wide one split where its strokes' cores
    part (the ink above CORE of the darkest: touching digits often meet only in their
    faint edges), and what is still wide cut along the paths of least ink from top to
    bottom; left to right by their centres."""
    boxes, areas = ink.boxes(), ink.areas()
    big_area = float(np.median(areas[areas >= 0.2 * areas.max()]))
    pieces = []
    for component in range(1, ink.count + 1):
        x0, y0, x1, y1 = (int(v) for v in boxes[component - 1])
        is_speck = bool(y1 - y0 < SPECK * height and areas[component - 1] < 0.25 * big_area)
        inside = ink.labels[y0:y1, x0:x1] == component
        regions = [inside]
        if x1 - x0 > WIDE * height:
            regions = core_regions(inside, ink.strength[y0:y1, x0:x1])
        for region in regions:
            for part in cut_apart(region, height):
                if part.any():
                    box = mask_box(part, x0, y0)
                    pieces.append(Piece(component, (x0, y0), part, box, is_speck))
    return sorted(pieces, key=lambda p: (p.box[0] + p.box[2], p.box[1]))


def core_regions(inside: np.ndarray, strength: np.ndarray) -> list[np.ndarray]:
    """A component's ink split by its cores: the connected parts of its ink above CORE
    (a tenth of the largest's size at least), each grown back over the faint ink nearest
    it; the component whole if it has one core."""
    cores, count = connected(inside & (strength > CORE))
    if count < 2:
        return [inside]
    areas = np.bincount(cores.ravel(), minlength=count + 1)
    cores[areas[cores] < 0.1 * areas[1:].max()] = 0
    if len(np.unique(cores)) < 3:  # paper and one core
        return [inside]
    grown = cores.copy()
    for _ in range(max(inside.shape)):
        unset = inside & (grown == 0)
        if not unset.any():
            break
        padded = np.pad(grown, 1)
        rows, cols = grown.shape
        nearest = np.max(
            [
                padded[1 + dy : 1 + dy + rows, 1 + dx : 1 + dx + cols]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            ],
            axis=0,
        )
        grown = np.where(unset, nearest, grown)
    return [grown == label for label in np.unique(grown[grown > 0])]


def cut_apart(region: np.ndarray, height: float) -> list[np.ndarray]:
    """A region of ink, cut along ``cut_paths`` when it is wider than a digit."""
    columns = np.flatnonzero(region.any(axis=0))
    if len(columns) == 0 or columns[-1] - columns[0] + 1 <= WIDE * height:
        return [region]
    left_edge = columns[0]
    trimmed = region[:, left_edge : columns[-1] + 1]
    cuts = [left_edge + path for path in cut_paths(trimmed, height)]
    rows = region.shape[0]
    edges = [np.full(rows, 0), *cuts, np.full(rows, region.shape[1])]
    x = np.arange(region.shape[1])[None, :]
    return [
        region & (x >= left[:, None]) & (x < right[:, None])
        for left, right in zip(edges[:-1], edges[1:], strict=True)
    ]


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
    steps = np.arange(-MOST_STEP, MOST_STEP + 1)
    for row in range(rows):
        padded = np.pad(cost, MOST_STEP, constant_values=np.inf)
        # options[k, x]: arriving at column x from column x + steps[k] of the row above
        options = np.stack([padded[MOST_STEP + s : MOST_STEP + s + width] for s in steps])
        options += SIDE_STEP * np.abs(steps)[:, None]
        moves[row] = steps[options.argmin(axis=0)]
        cost = options.min(axis=0) + inside[row]
    margin, spacing = max(2, round(CUT_MARGIN * height)), max(2, round(CUT_SPACING * height))
    inner = range(margin, width - margin)
    minima = [c for c in inner if cost[c] <= cost[c - 1] and cost[c] <= cost[c + 1]]
    most = max(1, round(CUTS_PER_HEIGHT * width / height))
    paths: list[np.ndarray] = []
    for end in sorted(minima, key=lambda c: (cost[c], c)):
        path = traced(moves, end)
        # a path that runs beside one already chosen (in the mean) cuts the same way
        if all(np.abs(path - other).mean() >= spacing for other in paths):
            paths.append(path)
        if len(paths) == most:
            break
    return sorted(paths, key=lambda path: path.mean())


def traced(moves: np.ndarray, end: int) -> np.ndarray:
    """The column in every row of the cheapest path that ends at column ``end``."""
    path, column = np.empty(len(moves), np.int64), end
    for row in range(len(moves) - 1, -1, -1):
        path[row] = column
        column += moves[row, column]
    return path


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
        keep |= piece.pixels(ink.labels.shape)[y0:y1, x0:x1]
    strength = np.where(keep & ~debris(keep & (labels > 0)), ink.strength[y0:y1, x0:x1], 0.0)
    # On a black border, so that mnist_style takes it as white ink on black paper.
    white_on_black = np.pad(np.rint(255 * strength).astype(np.uint8), 2)
    return mnist_style(white_on_black)


def debris(mask: np.ndarray) -> np.ndarray:
    """The parts of a candidate's ink smaller than DEBRIS of it and apart from the rest:
    the ends of a neighbour's strokes that a cut left on this side."""
    labels, count = connected(mask)
    if count < 2:
        return np.zeros(mask.shape, bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    small = np.flatnonzero(areas < DEBRIS * areas.sum()) + 1
    return np.isin(labels, small)


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
        if end - start == 1 and pieces[start].is_speck:
            continue  # a speck alone is no digit
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
