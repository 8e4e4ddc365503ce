"""Handwritten numbers made from MNIST's digits, seeded and deterministic: what the readers
are tested and measured on, since no string data set ships with cnnkit.

A string is a row of MNIST digits, each slanted, thickened or thinned, moved up or down
off the baseline, and placed with a gap, touching its neighbour, or overlapping it, then
written in dark ink on textured paper (LeCun et al. 1998, Sec. V-VII, describe the zip
codes and check amounts these imitate). A page scatters 5 to 20 digits over a sheet with
distractor strokes (form lines and specks) for detection. The same seed gives the same
pixels: one ``numpy.random.Generator`` draws everything. Evaluate on the test split's
digits only; the readers never train on them.
"""

import enum
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cnnkit.data.images import ImageSet

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 exclusive
INK_LEVEL = 64  # a source pixel at least this bright (of 255) is ink for boxes and contact


class Spacing(enum.Enum):
    """How neighbouring digits of a string meet."""

    GAP = "gap"  # blank paper between their ink
    TOUCHING = "touching"  # their ink meets at one point at least
    OVERLAPPING = "overlapping"  # the next one's ink pushed 2-4 pixels into the last one's

    @classmethod
    def names(cls) -> list[str]:
        return [member.value for member in cls]


@dataclass(frozen=True)
class Distortions:
    """What a person's writing and the paper change, each drawn per digit or per image."""

    slant: float = 0.15  # largest horizontal shear, pixels per pixel of height
    drift: int = 2  # largest baseline step between neighbours, pixels
    stroke: float = 0.3  # chance that a digit's strokes are one pixel thicker or thinner
    scale: tuple[float, float] = (0.9, 1.15)  # a digit's size, relative to MNIST's
    gap: tuple[int, int] = (3, 9)  # blank pixels between neighbours under Spacing.GAP
    paper: bool = True  # textured, shaded paper; False: white paper, black ink


@dataclass(frozen=True)
class Written:
    """A generated image: ``text`` is its digits left to right (a page's: in the order
    of ``boxes``), ``boxes[i]`` the ink box of the digit ``text[i]``."""

    image: np.ndarray  # uint8 (H, W) grayscale, dark ink on light paper
    text: str
    boxes: list[Box]
    sources: list[int]  # each digit's index in the digit set it came from


def write_string(
    digits: ImageSet,
    length: int,
    spacing: Spacing,
    rng: np.random.Generator,
    distortions: Distortions = Distortions(),
) -> Written:
    """A string of ``length`` digits drawn from ``digits`` (MNIST-style, 28x28 uint8)."""
    sources = [int(i) for i in rng.integers(len(digits), size=length)]
    return write_digits(digits, sources, spacing, rng, distortions)


def write_digits(
    digits: ImageSet,
    sources: list[int],
    spacing: Spacing,
    rng: np.random.Generator,
    distortions: Distortions = Distortions(),
) -> Written:
    """The string of the digits at ``sources`` in ``digits``, in that order."""
    shapes = [distorted(digits.images[i, 0].numpy(), rng, distortions) for i in sources]
    height = max(s.shape[0] for s in shapes) + 2 * distortions.drift * len(shapes) + 16
    width = sum(s.shape[1] for s in shapes) + distortions.gap[1] * len(shapes) + 16
    ink = np.zeros((height, width), np.uint8)
    baseline, right, boxes = height // 2, 8, []
    for position, shape in enumerate(shapes):
        baseline += int(rng.integers(-distortions.drift, distortions.drift + 1))
        top = int(np.clip(baseline - shape.shape[0] // 2, 0, height - shape.shape[0]))
        if position == 0:
            left = right
        elif spacing is Spacing.GAP:
            left = right + int(rng.integers(*distortions.gap, endpoint=True))
        else:
            left = contact(ink, shape, top)
            if spacing is Spacing.OVERLAPPING:
                left -= int(rng.integers(2, 5))
        left = max(left, 0)
        region = ink[top : top + shape.shape[0], left : left + shape.shape[1]]
        np.maximum(region, shape, out=region)
        boxes.append(ink_box(shape, left, top))
        right = max(right, boxes[-1][2])
    labels = "".join(digits.classes[int(digits.labels[i])] for i in sources)
    image, boxes = trimmed(ink, boxes, margin=8)
    return Written(on_paper(image, rng, distortions.paper), labels, boxes, list(sources))


def write_page(
    digits: ImageSet,
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    count: tuple[int, int] = (5, 20),
    distractors: tuple[int, int] = (2, 5),
    distortions: Distortions = Distortions(scale=(1.0, 1.6)),
) -> Written:
    """A page of ``size`` (height, width) with 5-20 digits scattered apart from each other
    and from the distractors: form lines and specks of ink that are no digit."""
    height, width = size
    ink = np.zeros(size, np.uint8)
    taken = np.zeros(size, bool)  # where nothing else may be put (with a margin)
    boxes, text, sources = [], "", []
    for _ in range(int(rng.integers(count[0], count[1], endpoint=True))):
        index = int(rng.integers(len(digits)))
        shape = distorted(digits.images[index, 0].numpy(), rng, distortions)
        place = free_place(taken, shape.shape, rng, margin=4)
        if place is None:
            continue
        top, left = place
        region = ink[top : top + shape.shape[0], left : left + shape.shape[1]]
        np.maximum(region, shape, out=region)
        box = ink_box(shape, left, top)
        taken[max(box[1] - 4, 0) : box[3] + 4, max(box[0] - 4, 0) : box[2] + 4] = True
        boxes.append(box)
        text += digits.classes[int(digits.labels[index])]
        sources.append(index)
    for _ in range(int(rng.integers(distractors[0], distractors[1], endpoint=True))):
        draw_distractor(ink, taken, rng)
    return Written(on_paper(ink, rng, distortions.paper), text, boxes, sources)


def distorted(digit: np.ndarray, rng: np.random.Generator, distortions: Distortions) -> np.ndarray:
    """An MNIST digit (white on black, 28x28) cropped to its ink, resized, slanted and
    its strokes thickened or thinned."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    if len(rows) == 0:
        return np.zeros((1, 1), np.uint8)
    picture = Image.fromarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    scale = rng.uniform(*distortions.scale)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.BILINEAR)
    shear = rng.uniform(-distortions.slant, distortions.slant)
    spread = int(np.ceil(abs(shear) * picture.height))
    # x_source = x - shear * (y - height / 2): the top leans right for a positive shear
    picture = picture.transform(
        (picture.width + spread, picture.height),
        Image.Transform.AFFINE,
        (1, shear, -spread / 2 - shear * picture.height / 2, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    pixels = np.asarray(picture)
    change = rng.random()
    if change < distortions.stroke:  # half a pixel of pen: the mean with a 3x3 max or min
        thicker = change < distortions.stroke / 2
        kind = ImageFilter.MaxFilter(3) if thicker else ImageFilter.MinFilter(3)
        changed = np.asarray(picture.filter(kind))
        if (changed >= INK_LEVEL).sum() >= 8:  # not a thin stroke thinned away
            pixels = ((pixels.astype(np.uint16) + changed) // 2).astype(np.uint8)
    return np.pad(pixels, 1)


def contact(ink: np.ndarray, shape: np.ndarray, top: int) -> int:
    """The left edge at which ``shape``, placed at row ``top``, first touches the ink
    already written (the nearest rows meet in neighbouring pixels)."""
    band = ink[top : top + shape.shape[0]] >= INK_LEVEL
    mine = shape >= INK_LEVEL
    rows = band.any(axis=1) & mine.any(axis=1)
    if not rows.any():  # no common row: their boxes side by side
        return int(np.flatnonzero((ink >= INK_LEVEL).any(axis=0))[-1]) + 1
    right_edge = band.shape[1] - 1 - np.argmax(band[:, ::-1], axis=1)  # last ink column
    left_edge = np.argmax(mine, axis=1)  # first ink column of the new digit
    return int((right_edge[rows] - left_edge[rows]).max()) + 1


def ink_box(shape: np.ndarray, left: int, top: int) -> Box:
    rows = np.flatnonzero((shape >= INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((shape >= INK_LEVEL).any(axis=0))
    if len(rows) == 0:
        return (left, top, left + 1, top + 1)
    x0, y0 = left + int(cols[0]), top + int(rows[0])
    return (x0, y0, left + int(cols[-1]) + 1, top + int(rows[-1]) + 1)


def trimmed(ink: np.ndarray, boxes: list[Box], margin: int) -> tuple[np.ndarray, list[Box]]:
    """The ink cut to its boxes with ``margin`` blank pixels around, boxes moved with it."""
    x0 = max(min(b[0] for b in boxes) - margin, 0)
    y0 = max(min(b[1] for b in boxes) - margin, 0)
    x1 = min(max(b[2] for b in boxes) + margin, ink.shape[1])
    y1 = min(max(b[3] for b in boxes) + margin, ink.shape[0])
    moved = [(b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0) for b in boxes]
    return ink[y0:y1, x0:x1], moved


def on_paper(ink: np.ndarray, rng: np.random.Generator, textured: bool) -> np.ndarray:
    """White-on-black ink as dark ink on paper: a tint with a shading gradient and grain."""
    if not textured:
        return 255 - ink
    height, width = ink.shape
    paper = rng.uniform(205, 240) + rng.uniform(-12, 12) * np.linspace(-1, 1, width)[None, :]
    paper = paper + rng.normal(0, 4, size=(height, width))
    pen = rng.uniform(10, 60)
    page = paper - (ink / 255.0) * (paper - pen)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)


def free_place(
    taken: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, margin: int
) -> tuple[int, int] | None:
    """A (top, left) where a ``shape`` box lies on free paper, from 50 draws; None if full."""
    height, width = taken.shape
    for _ in range(50):
        top = int(rng.integers(margin, max(margin + 1, height - shape[0] - margin)))
        left = int(rng.integers(margin, max(margin + 1, width - shape[1] - margin)))
        if top + shape[0] > height or left + shape[1] > width:
            continue
        if not taken[top : top + shape[0], left : left + shape[1]].any():
            return top, left
    return None


def draw_distractor(ink: np.ndarray, taken: np.ndarray, rng: np.random.Generator) -> None:
    """A form line (long, thin, nearly straight) or a speck, where nothing else is."""
    height, width = ink.shape
    picture = Image.new("L", (width, height))
    draw = ImageDraw.Draw(picture)
    if rng.random() < 0.6:
        length = int(rng.integers(width // 3, width - 8))
        x0, y0 = int(rng.integers(4, width - length)), int(rng.integers(4, height - 4))
        x1, y1 = x0 + length, y0 + int(rng.integers(-4, 5))
        draw.line([(x0, y0), (x1, y1)], fill=255, width=int(rng.integers(1, 3)))
    else:
        x0, y0 = int(rng.integers(4, width - 8)), int(rng.integers(4, height - 8))
        side = int(rng.integers(2, 4))
        draw.ellipse([(x0, y0), (x0 + side, y0 + side)], fill=255)
    stroke = np.asarray(picture)
    if (taken & (stroke > 0)).any():
        return  # it would cross a digit: left out, so that every digit stays findable
    np.maximum(ink, stroke, out=ink)
    taken |= stroke > 0
