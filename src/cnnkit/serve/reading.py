"""What the model process computes to read the number written in an upload: the reader's
reading (``read.read_images``, the one ``cnnkit read`` and ``Run.read`` use) in the form
the page draws (``wire.NumberRead``), with the network's probabilities of every class for
each digit's box. ``worker`` runs it for ``Operation.READ``: ``decode`` an item at a time
(an upload that fails to decode gets its ``ImageError`` as its answer), then ``read``;
the route has turned away the models that do not read (``read_routes``).

The reader gives each digit its class and that class's probability only; the page shows
every class's at each position, so each box's ink is classified once more here, as the
reader normalises a candidate (``transforms.digits.mnist_style``). For digits apart from
each other the box holds the reader's candidate exactly; where digits touch, the box may
also hold a neighbour's edge, which the reader's own candidate left out.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnnkit.data.image_files import read_pixels
from cnnkit.read import Reading, read_images
from cnnkit.read.ink import MAX_SIDE, Ink, find_ink
from cnnkit.read.results import Box
from cnnkit.read.segment import classify
from cnnkit.runs import Run
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import DigitRead, NumberRead
from cnnkit.transforms.digits import mnist_style


@dataclass(frozen=True)
class Decoded:
    gray: np.ndarray  # uint8 (H, W), reduced toward the reader's size when large
    size: tuple[int, int]  # (width, height) of the image as uploaded


@dataclass
class ServedReader:
    run: Run

    def decode(self, upload: Upload) -> Decoded:
        """The upload's grayscale pixels (a large one reduced as the reader reduces it),
        and its own size; an ``ImageError`` when it cannot be read."""
        pixels = read_pixels(io.BytesIO(upload.data), 1, upload.name, least_side=MAX_SIDE)
        with Image.open(io.BytesIO(upload.data)) as header:  # read whole above: readable
            size = header.size
        return Decoded(pixels[:, :, 0], size)

    def read(self, images: list[Decoded]) -> list[NumberRead]:
        """The number written in each image, by the default reader."""
        return [self.read_one(image) for image in images]

    def read_one(self, image: Decoded) -> NumberRead:
        reading = read_images(self.run, image.gray)
        assert isinstance(reading, Reading)  # one image, one reading
        if not reading.digits:
            return NumberRead("", 0.0, (), image.size, reading.reason)
        ink = find_ink(image.gray)
        boxes = [digit.box for digit in reading.digits]  # in the pixels of ``gray``
        probs = classify(self.run, [box_digit(ink, box) for box in boxes])
        height, width = image.gray.shape
        scale = (image.size[0] / width, image.size[1] / height)
        digits = tuple(
            DigitRead(scaled(digit.box, scale), digit.label, digit.probability, p)
            for digit, p in zip(reading.digits, probs, strict=True)
        )
        return NumberRead(reading.text, reading.confidence, digits, image.size)


def box_digit(ink: Ink, box: Box) -> np.ndarray:
    """The ink inside ``box`` (in the image's pixels, which ``ink`` may have shrunk) as a
    28x28 MNIST-style digit."""
    x0, y0, x1, y1 = (round(v / ink.scale) for v in box)
    strength = ink.strength[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    # On a black border, so that mnist_style takes it as white ink on black paper.
    return mnist_style(np.pad(np.rint(255 * strength).astype(np.uint8), 2))


def scaled(box: Box, scale: tuple[float, float]) -> Box:
    """A box of the reduced pixels in the image's own."""
    x0, y0, x1, y1 = box
    sx, sy = scale
    return (int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy)))
