"""A reading drawn on its image: a box and the class on every digit (``--out``)."""

from pathlib import Path

from PIL import Image, ImageDraw

from cnnkit.data.held import HeldImage, held_pixels
from cnnkit.data.image_files import png_bytes
from cnnkit.files import atomic_write_bytes
from cnnkit.read.results import Reading


def drawn(image: HeldImage, reading: Reading) -> Image.Image:
    """The image in colour with each digit's box in red and its class above it."""
    pixels = held_pixels(image, channels=3).pixels[0]
    picture = Image.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    for digit in reading.digits:
        x0, y0, x1, y1 = digit.box
        draw.rectangle([(x0, y0), (x1 - 1, y1 - 1)], outline=(220, 30, 30))
        draw.text((x0, max(y0 - 11, 0)), digit.label, fill=(220, 30, 30))
    return picture


def save_boxes(image: HeldImage, reading: Reading, path: Path) -> Path:
    """``drawn`` written as a PNG at ``path``."""
    atomic_write_bytes(path, png_bytes(drawn(image, reading)))
    return path
