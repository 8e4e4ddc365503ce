"""Every digit on a page (the lecture's object detection, for digits): the ink's pieces
found as ``read.ink`` finds them, fragments of one digit joined, pieces that are no
digit by their shape left out (form lines far longer than a digit, specks far smaller),
each remaining one read by the network, normalised as MNIST's digits were. The result is
a ``Reading`` whose ``digits`` hold every box with its class and probability, top to
bottom, then left to right; its ``text`` is their classes in that order."""

import numpy as np

from cnnkit.read.ink import DisjointSets, Ink
from cnnkit.read.results import DigitBox
from cnnkit.read.segment import Piece, candidate_image, classify, union_box
from cnnkit.runs import Run

LINE = 2.5  # a piece longer than this many digit heights is a line, not a digit
SPECK = 0.4  # a piece smaller than this many digit heights on both sides is a speck
TOUCH = 2  # pieces this many pixels apart, one above the other, are one digit's


def find_digits(run: Run, ink: Ink) -> tuple[list[DigitBox], float] | None:
    """The digits on a page (boxes in the ink's pixels) and the product of their
    probabilities; None when no piece of ink looks like a digit."""
    boxes = ink.boxes()
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    height = float(np.median((boxes[:, 3] - boxes[:, 1])[sides >= np.percentile(sides, 50)]))
    groups = joined(boxes, sides >= SPECK * height)
    pieces, kept = [], []
    for group in groups:
        box = (
            int(boxes[group, 0].min()),
            int(boxes[group, 1].min()),
            int(boxes[group, 2].max()),
            int(boxes[group, 3].max()),
        )
        width, tall = box[2] - box[0], box[3] - box[1]
        if max(width, tall) > LINE * height or max(width, tall) < SPECK * height:
            continue
        pieces.append([whole(ink, int(i) + 1, boxes[i]) for i in group])
        kept.append(box)
    if not pieces:
        return None
    probs = classify(run, [candidate_image(ink, group) for group in pieces])
    digits = [
        DigitBox(union_box(group), run.classes[int(p.argmax())], float(p.max()))
        for group, p in zip(pieces, probs, strict=True)
    ]
    ordered = in_lines(digits, height)
    return ordered, float(np.prod([d.probability for d in ordered]))


def in_lines(digits: list[DigitBox], height: float) -> list[DigitBox]:
    """Digits as a page is read: lines top to bottom (a digit whose middle is within
    half a digit height of a line's first joins it), each left to right."""
    lines: list[list[DigitBox]] = []
    for digit in sorted(digits, key=lambda d: d.box[1] + d.box[3]):
        middle = (digit.box[1] + digit.box[3]) / 2
        if lines and abs(middle - (lines[-1][0].box[1] + lines[-1][0].box[3]) / 2) <= height / 2:
            lines[-1].append(digit)
        else:
            lines.append([digit])
    return [digit for line in lines for digit in sorted(line, key=lambda d: d.box[0])]


def joined(boxes: np.ndarray, large: np.ndarray) -> list[list[int]]:
    """Indices of the pieces grouped into digits: a piece joins another whose columns it
    shares and that lies within TOUCH pixels above or below it (a 5's hat, a broken 4)."""
    groups = DisjointSets(len(boxes))
    order = np.argsort(boxes[:, 0])
    for a_index, a in enumerate(order):
        for b in order[a_index + 1 :]:
            if boxes[b, 0] >= boxes[a, 2]:
                break
            gap = max(boxes[a, 1], boxes[b, 1]) - min(boxes[a, 3], boxes[b, 3])
            if gap <= TOUCH and (large[a] or large[b]):
                groups.join(int(a), int(b))
    found: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        found.setdefault(groups.root(i), []).append(i)
    return list(found.values())


def whole(ink: Ink, component: int, box: np.ndarray) -> Piece:
    """A component as one piece."""
    x0, y0, x1, y1 = (int(v) for v in box)
    mask = ink.labels[y0:y1, x0:x1] == component
    return Piece(component, (x0, y0), mask, (x0, y0, x1, y1), False)
