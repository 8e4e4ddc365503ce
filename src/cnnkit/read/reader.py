"""Read the handwritten number in each image a user holds (a path, a PIL image, an array,
a tensor, or a list): the front door of ``cnnkit read`` and ``Run.read``.

Images are read as ``predict`` reads them (``data.held``, the one bounded reader: a
decompression bomb or a damaged file is one ``ImageError``), in grayscale, and their ink
found as ``predict``'s photo path finds it (``read.ink``). Two readers share the rest:
``segment`` (over-segmentation and the best path, ``read.segment``) and ``sdnn`` (the
network replicated along the field, ``read.sdnn``). An image in which there is nothing to
read (no ink, or a photo rather than writing) gives an empty ``Reading`` with its reason.
"""

import enum
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.config import is_count
from cnnkit.data.held import HeldImage, held_pixels
from cnnkit.errors import ConfigError
from cnnkit.read.find import find_digits
from cnnkit.read.ink import MAX_SIDE, Ink, find_ink
from cnnkit.read.results import DigitBox, Reading, Readings
from cnnkit.read.sdnn import check_sdnn, read_sdnn
from cnnkit.read.segment import read_segmented
from cnnkit.runs import Run

MOST_INK = 0.3  # writing on paper covers less than this fraction of an image
MOST_PIECES = 500  # and has fewer separate pieces of ink than this


class Reader(enum.Enum):
    SEGMENT = "segment"  # segment and recognise (Sec. V-VI), the default
    SDNN = "sdnn"  # the space displacement neural network (Sec. VII)

    @classmethod
    def named(cls, name: "str | Reader") -> "Reader":
        if isinstance(name, Reader):
            return name
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise ConfigError(f"reader={name!r}: expected one of {known}") from None


def read_images(
    run: Run,
    images: HeldImage | Sequence[HeldImage],
    reader: str | Reader = Reader.SEGMENT,
    length: int | None = None,
) -> Reading | Readings:
    """The number written in each image: a ``Reading`` for one image, ``Readings`` for a
    list or a batch. ``length``: read exactly that many digits (a zip code's five)."""
    chosen = Reader.named(reader)
    if length is not None and not is_count(length):
        raise ConfigError(f"length={length!r}: expected a whole number of digits, 1 or more")
    if chosen is Reader.SDNN:
        check_sdnn(run)
    method = read_segmented if chosen is Reader.SEGMENT else read_sdnn
    return each_image(run, images, chosen.value, lambda ink: method(run, ink, length), length)


def find_images(run: Run, images: HeldImage | Sequence[HeldImage]) -> Reading | Readings:
    """Every digit in each image (a page of scattered digits): a ``Reading`` whose
    ``digits`` are the boxes found, top to bottom, then left to right."""
    return each_image(run, images, "find", lambda ink: find_digits(run, ink), None)


Method = Callable[[Ink], tuple[list[DigitBox], float] | None]


def each_image(
    run: Run,
    images: HeldImage | Sequence[HeldImage],
    reader: str,
    method: Method,
    length: int | None,
) -> Reading | Readings:
    held = held_pixels(images, channels=1, least_side=MAX_SIDE)
    readings = Readings(
        read_one(pixels[:, :, 0], name, original_size(image, pixels), reader, method, length)
        for pixels, name, image in zip(held.pixels, held.names, listed(images), strict=True)
    )
    return readings[0] if held.single else readings


def read_one(
    gray: np.ndarray,
    source: str,
    size: tuple[int, int],
    reader: str,
    method: Method,
    length: int | None,
) -> Reading:
    """One grayscale image's digits by ``method``; ``size`` (width, height) is the
    image's own, which the boxes are given in."""
    ink = find_ink(gray)
    empty = nothing_to_read(ink)
    if empty:
        return Reading(source, "", 0.0, [], reader, empty)
    found = method(ink)
    if found is None or not found[0]:
        reason = f"no reading of {length} digits" if length else "no digit found in the ink"
        return Reading(source, "", 0.0, [], reader, reason)
    digits, confidence = found
    scale = (size[0] / ink.labels.shape[1], size[1] / ink.labels.shape[0])
    boxes = [scaled(digit, scale) for digit in digits]
    return Reading(source, "".join(d.label for d in boxes), confidence, boxes, reader)


def nothing_to_read(ink: Ink) -> str:
    """Why there is nothing to read in ``ink`` (empty when there may be)."""
    if ink.count == 0:
        return "no ink: the image is one colour"
    covered = float(ink.mask.mean())
    if covered > MOST_INK:
        return (
            f"ink covers {100 * covered:.0f}% of the image: a photo or a drawing, not digits "
            f"written on paper (at most {100 * MOST_INK:.0f}%)"
        )
    if ink.count > MOST_PIECES:
        return f"{ink.count:,} separate pieces of ink: texture, not digits written on paper"
    return ""


def scaled(digit: DigitBox, scale: tuple[float, float]) -> DigitBox:
    x0, y0, x1, y1 = digit.box
    sx, sy = scale
    box = (int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy)))
    return DigitBox(box, digit.label, digit.probability)


def listed(images: HeldImage | Sequence[HeldImage]) -> list[HeldImage]:
    """The images one by one, as ``held_pixels`` names them."""
    if isinstance(images, list | tuple):
        return list(images)
    if isinstance(images, np.ndarray | torch.Tensor) and images.ndim == 4:
        return list(images)  # a batch
    return [images]  # type: ignore[list-item]  # one image: the sequences were listed


def original_size(image: HeldImage, pixels: np.ndarray) -> tuple[int, int]:
    """(width, height) of the image as given, before a large one was read reduced."""
    if isinstance(image, str | Path):
        try:
            with Image.open(image) as header:
                return header.size
        except Exception:  # read already, so readable; a race changed it: as read
            return pixels.shape[1], pixels.shape[0]
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray):
        return image.shape[1], image.shape[0]
    return image.shape[-1], image.shape[-2]  # a channels-first tensor
