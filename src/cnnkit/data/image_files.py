"""Image files to pixels: the one decoder behind folder data sets, ``predict`` and every
later reader of a user's photos.

Pillow decodes JPEG, PNG and GIF (its first frame) in any of their modes (grayscale,
palette, CMYK, 16-bit), and a damaged file raises an exception instead of taking the
process down (torchvision's libpng decoder was seen to crash on a truncated PNG). The
header is read first, and an image whose header claims more than ``MAX_PIXELS`` pixels
is refused before a byte of pixels is allocated: a 100,000 x 100,000 PNG bomb is a few
hundred bytes on disk and 30 GB in memory.
"""

import io
import re
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from cnnkit.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # what folder data sets list
# Pillow's own threshold for its decompression-bomb warning (1024 * 1024 * 1024 // 4 // 3):
# a 9,459 x 9,459 image, 268 MB as RGB.
MAX_PIXELS = 89_478_485


def read_image(path: Path | BinaryIO, channels: int = 3, name: str | None = None) -> torch.Tensor:
    """uint8 (channels, H, W) pixels of the image file at ``path`` (or an open binary
    file, e.g. an upload's bytes in ``io.BytesIO``, called ``name`` in messages): one
    channel as luminance, three as RGB. Every problem is one ``ImageError`` naming it."""
    return chw_tensor(read_pixels(path, channels, name))


def chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) pixels as a writable uint8 (C, H, W) tensor of their own."""
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def read_pixels(path: Path | BinaryIO, channels: int = 3, name: str | None = None) -> np.ndarray:
    """``read_image`` as a read-only uint8 (H, W, channels) array, without torch: a
    batch of them is stacked into one tensor (``Run.read_files``), a quarter less work
    for a 32x32 JPEG than a tensor per image."""
    if name is None:
        name = str(path)
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: refused below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise too_many_pixels(name, width * height)
            image.load()
            return image_pixels(image, channels)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses twice its threshold itself
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        raise too_many_pixels(name, int(claimed.group(1)) if claimed else None) from None
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except Exception as error:  # Pillow raises many types on damaged data; all mean that
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{name}: not a readable image ({reason})") from None


def image_pixels(image: Image.Image, channels: int) -> np.ndarray:
    """A decoded Pillow image as read-only uint8 (H, W, channels): one channel as
    luminance, three as RGB (alpha dropped), as every file and held image is read."""
    eight_bit, mode = _eight_bit(image), "L" if channels == 1 else "RGB"
    # convert() copies even an image already in the mode (most JPEGs): skipped
    pixels = np.asarray(eight_bit if eight_bit.mode == mode else eight_bit.convert(mode))
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
