"""Image files to pixels: the one decoder behind folder data sets, ``predict`` and every
later reader of a user's photos.

Pillow decodes JPEG, PNG, GIF (its first frame) and WebP in any of their modes
(grayscale, palette, CMYK, 16-bit), and a damaged file raises an exception instead of
taking the process down (torchvision's libpng decoder was seen to crash on a truncated
PNG). Only those four formats reach a decoder, as in the server
(``config.IMAGE_SIGNATURES``): a TIFF or a BMP is refused by its first bytes, so that
none of Pillow's rarer decoders sees a user's file. A path must name a regular file (a
FIFO would block the reader forever).
The header is read first, and an image whose header claims more than ``MAX_PIXELS``
pixels is refused before a byte of pixels is allocated: a 100,000 x 100,000 PNG bomb is
a few hundred bytes on disk and 30 GB in memory.

A reader that needs less than the whole image says so (``least_side``): a larger one
comes back reduced by a whole factor, a JPEG decoded at 1/2, 1/4 or 1/8 of its size
(libjpeg's scaled decoding, Pillow's ``draft``), so that a 600-byte JPEG claiming
9,000 x 9,000 pixels costs a megabyte, not a gigabyte of preparation.
"""

import base64
import contextlib
import io
import os
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from cnnkit.config import IMAGE_FORMAT_NAMES as FORMAT_NAMES
from cnnkit.config import image_format_of
from cnnkit.errors import ImageError, UnsupportedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # what folder data sets list
# Pillow's own threshold for its decompression-bomb warning (1024 * 1024 * 1024 // 4 // 3):
# a 9,459 x 9,459 image, 268 MB as RGB.
MAX_PIXELS = 89_478_485


def read_image(
    path: Path | BinaryIO, channels: int = 3, name: str | None = None, least_side: int | None = None
) -> torch.Tensor:
    """uint8 (channels, H, W) pixels of the image file at ``path`` (or an open binary
    file, e.g. an upload's bytes in ``io.BytesIO``, called ``name`` in messages): one
    channel as luminance, three as RGB. Every problem is one ``ImageError`` naming it.
    ``least_side``: see ``read_pixels``."""
    return chw_tensor(read_pixels(path, channels, name, least_side))


def chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) pixels as a writable uint8 (C, H, W) tensor of their own."""
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def read_pixels(
    path: Path | BinaryIO, channels: int = 3, name: str | None = None, least_side: int | None = None
) -> np.ndarray:
    """``read_image`` as a read-only uint8 (H, W, channels) array, without torch: a
    batch of them is stacked into one tensor (``Run.read_files``), a quarter less work
    for a 32x32 JPEG than a tensor per image.

    With ``least_side``, an image whose sides are both at least twice that comes back
    reduced by the largest whole factor that keeps both sides at least ``least_side``
    (a JPEG decoded reduced, then Pillow's box filter): its decoding and every step
    after it cost what an image of about that size costs, whatever the header claims."""
    if name is None:
        name = str(path)
    fmt = "image"
    try:
        with _opened(path, name) as file:
            fmt = image_format(file, name)
            with warnings.catch_warnings():  # Pillow's own bomb warning: refused below instead
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(file, formats=[fmt])
            with image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise too_many_pixels(name, width * height)
                if least_side is not None and min(width, height) >= 2 * least_side:
                    image.draft(None, (least_side, least_side))  # JPEG only; others: no-op
                image.load()
                return image_pixels(image, channels, least_side)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses twice its threshold itself
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        raise too_many_pixels(name, int(claimed.group(1)) if claimed else None) from None
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except Image.UnidentifiedImageError:  # its message names Python's file object
        raise ImageError(f"{name}: not a readable image (a damaged {fmt} header)") from None
    except Exception as error:  # Pillow raises many types on damaged data; all mean that
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{name}: not a readable image ({reason})") from None


@contextlib.contextmanager
def _opened(path: Path | BinaryIO, name: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file (an open file as it is). The
    file is opened without blocking and checked through its descriptor, so that a FIFO
    neither blocks the open nor can be swapped in between a check and the open."""
    if not isinstance(path, str | os.PathLike):
        yield path
        return
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, device or socket"
        raise ImageError(f"{name}: not a regular file ({kind}), not an image")
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "rb") as file:
        yield file


def image_format(file: BinaryIO, name: str) -> str:
    """The format (a key of ``config.IMAGE_SIGNATURES``) of the image in ``file``, by
    its first bytes, read without moving the file's position; an
    ``UnsupportedImageError`` otherwise."""
    start = file.tell()
    head = file.read(12)
    file.seek(start)
    fmt = image_format_of(head)
    if fmt is not None:
        return fmt
    if not head:
        raise UnsupportedImageError(f"{name}: an empty file, not an image")
    raise UnsupportedImageError(f"{name}: not a readable image (not a {FORMAT_NAMES} file)")


def image_pixels(image: Image.Image, channels: int, least_side: int | None = None) -> np.ndarray:
    """A decoded Pillow image as read-only uint8 (H, W, channels): one channel as
    luminance, three as RGB (alpha dropped), as every file and held image is read;
    reduced by a whole factor as ``read_pixels`` says when ``least_side`` is given."""
    eight_bit, mode = _eight_bit(image), "L" if channels == 1 else "RGB"
    # convert() copies even an image already in the mode (most JPEGs): skipped
    picture = eight_bit if eight_bit.mode == mode else eight_bit.convert(mode)
    factor = min(picture.size) // least_side if least_side else 1
    if factor > 1:
        picture = picture.reduce(factor)  # the mean of each factor x factor block
    pixels = np.asarray(picture)
    return pixels[:, :, None] if channels == 1 else pixels


def too_many_pixels(name: str, pixels: int | None) -> ImageError:
    claimed = f"{pixels:,} pixels" if pixels else "too many pixels"
    return ImageError(
        f"{name}: its header claims {claimed}, more than cnnkit decodes ({MAX_PIXELS:,}); "
        "a decompression bomb or a scan too large"
    )


def _eight_bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit grayscale (16-bit PNGs) as 8-bit by their high byte; Pillow's
    own conversion to "L" would clip every value above 255 to white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        high = np.asarray(image).astype(np.int64) >> 8
        return Image.fromarray(np.clip(high, 0, 255).astype(np.uint8))
    return image


def png_bytes(picture: Image.Image) -> bytes:
    """A picture as the bytes of a PNG file."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """A PNG file as a data URI, for an ``<img>`` of a page that fetches nothing."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
