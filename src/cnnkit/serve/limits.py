"""What the server accepts as an image, checked before a pixel is decoded.

Four checks, cheapest first, each with its own status: the request's size (the
middleware, 413, before the body is read), the format by its first bytes (415: only
the formats a photo or a drawing comes in, so that none of Pillow's rarer decoders
ever sees a request), the pixel count that each header claims (413: a
100,000 x 100,000 PNG is a few hundred bytes and would be 30 GB of pixels), and the
pixels that a request's images claim together (413: sixteen JPEGs of a few hundred
bytes that each claim 9,000 x 9,000 pixels are each under the limit of one image, and
together ask the model process for 1.3 billion pixels). The batcher holds each batch to a budget of
claimed pixels too (``batcher``). Decoding itself is the run layer's
(``Run.read_file``); its failures are 400s.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from cnnkit.config import IMAGE_SIGNATURES as SIGNATURES
from cnnkit.config import image_format_of
from cnnkit.errors import (
    ImageError,
    ImageTooLargeError,
    RequestTooLargeError,
    UnsupportedImageError,
)


@dataclass(frozen=True)
class UploadLimits:
    """What one request to a route that takes images may send."""

    images: int  # images in the request
    parts: int  # parts of a multipart form, whatever their names
    pixels: int  # claimed by one image's header (the decoder's limit)
    request_pixels: int  # claimed by all of the request's images together


@dataclass(frozen=True)
class ImageHeader:
    format: str  # one of SIGNATURES
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff_format(data: bytes, name: str) -> str:
    """The format of ``data`` by its signature; an ``UnsupportedImageError`` otherwise.
    The client's Content-Type is not trusted: the bytes say what they are."""
    fmt = image_format_of(data)
    if fmt is not None:
        return fmt
    if not data:
        raise UnsupportedImageError(f"{name}: empty file, not an image")
    accepted = ", ".join(SIGNATURES)
    raise UnsupportedImageError(f"{name}: not an image of an accepted format ({accepted})")


def read_header(data: bytes, name: str, max_pixels: int) -> ImageHeader:
    """The format and size of the image in ``data``, read from its header only; an
    ``ImageTooLargeError`` when it claims more than ``max_pixels`` pixels."""
    fmt = sniff_format(data, name)
    try:
        with warnings.catch_warnings():  # Pillow warns of bombs that we refuse anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice its warning size
        claim = f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,}"
        raise _too_large(name, claim, max_pixels) from None
    except Image.UnidentifiedImageError:  # its message names our BytesIO object
        raise ImageError(f"{name}: not a readable image (a damaged {fmt} header)") from None
    except Exception as error:  # Pillow raises many types on a damaged header; all mean that
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{name}: not a readable image ({reason})") from None
    if width * height > max_pixels:
        raise _too_large(name, f"{width:,} x {height:,}", max_pixels)
    return ImageHeader(fmt, width, height)


def _too_large(name: str, claim: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: its header claims {claim} pixels; the server decodes at most {max_pixels:,}"
    )


def check_request_pixels(claims: list[int], budget: int) -> None:
    """A ``RequestTooLargeError`` when the images' headers claim more than ``budget``
    pixels together."""
    if sum(claims) > budget:
        raise RequestTooLargeError(
            f"the {len(claims)} images' headers claim {sum(claims):,} pixels together; the "
            f"server decodes at most {budget:,} for one request (send fewer or smaller images)"
        )
