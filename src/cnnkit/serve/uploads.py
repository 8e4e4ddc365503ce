"""The images of a request, in any of the three ways a client may send them, and the
query's whole numbers.

- ``multipart/form-data`` with one or more files in the field ``image`` (a form, curl -F);
- JSON ``{"image": BASE64}`` or ``{"images": [BASE64, ...]}``, plain base64 or a
  ``data:`` URL as a canvas's ``toDataURL`` gives it;
- the image file itself as the body (``Content-Type: image/png``, curl --data-binary).

The body is read whole (the middleware has bounded it) and a form is split at its
boundary lines, one part at a time, its part headers read with python-multipart's header
parser: for a digit's upload this costs a twelfth of Starlette's ``request.form()``
(which spools every file through a temporary-file object) and a third of
python-multipart's streaming parser (docs/serve.md). The parser stops at the first
part beyond ``max_parts`` and the first image beyond ``max_images``, so that a form of a
million empty parts costs no more than one of a hundred. What the bytes are is
``limits``' business; ``read_images`` applies both.

The query's ``top`` is read by hand too: FastAPI's validation of a declared parameter
cost more than the rest of a request's parsing (docs/serve.md); the routes declare it in
their schema.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from cnnkit.errors import RequestError, UnsupportedImageError
from cnnkit.serve.limits import UploadLimits, check_request_pixels, read_header

FIELD = "image"  # the multipart field and JSON key of one image; JSON "images" for a list
HOW = (
    "send multipart/form-data with the file in the field 'image', JSON {\"image\": base64}, "
    "or the image itself as the body"
)
MAX_TOP = 1000  # classes or items one answer may list
ECHO_CHARS = 60  # of a client's value that a message repeats
NAME_CHARS = 255  # of a file name that answers repeat (a file system's longest name)
# A whole number as a query gives it: ASCII digits only (str.isdigit also takes "²", which
# int() refuses), and few enough of them that int() is cheap.
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class Upload:
    name: str  # the client's file name, or "image 1", ...: for messages only
    data: bytes
    pixels: int = 0  # what its header claims, once read_images has read it


def echo(value: str) -> str:
    """A client's value as a message may repeat it: quoted, and cut short."""
    cut = value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "..."
    return repr(cut)


def whole_number(text: str, what: str, low: int, high: int) -> int:
    """``text`` as a whole number from ``low`` to ``high``; a ``RequestError`` naming
    ``what`` otherwise. The one parser of the numbers in a request's URL."""
    if WHOLE_NUMBER.fullmatch(text) is None or not low <= int(text) <= high:
        raise RequestError(
            f"{what} must be a whole number from {low:,} to {high:,}; not {echo(text)}"
        )
    return int(text)


def top_parameter(request: Request, default: int) -> int:
    """The query's ``top``: how many classes or items to answer with."""
    given = request.query_params.get("top")
    return default if given is None else whole_number(given, "top", 1, MAX_TOP)


async def read_images(request: Request, limits: UploadLimits) -> list[Upload]:
    """The request's images, each checked by its first bytes and header, and all
    together against the request's pixel budget, before any is decoded."""
    uploads = await read_uploads(request, limits.images, limits.parts)
    checked = [
        Upload(
            upload.name, upload.data, read_header(upload.data, upload.name, limits.pixels).pixels
        )
        for upload in uploads
    ]
    check_request_pixels([upload.pixels for upload in checked], limits.request_pixels)
    return checked


async def read_uploads(request: Request, max_images: int, max_parts: int) -> list[Upload]:
    """The images of ``request``; a ``RequestError`` naming what is missing or wrong."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    body = await request.body()
    if not body:
        raise RequestError(f"empty request: {HOW}")
    if kind == b"multipart/form-data":
        return parse_form(body, options.get(b"boundary", b""), max_images, max_parts)
    if kind == b"application/json":
        return parse_json(body, max_images)
    if not kind or kind.startswith(b"image/") or kind == b"application/octet-stream":
        return [Upload("image 1", body)]
    shown = echo(kind.decode(errors="replace"))
    raise UnsupportedImageError(f"a body of type {shown} is not an image: {HOW}")


def too_many(max_images: int) -> RequestError:
    return RequestError(f"more than {max_images} images in one request")


def parse_form(body: bytes, boundary: bytes, max_images: int, max_parts: int) -> list[Upload]:
    """The files of the form's ``image`` field, in order (RFC 7578 on RFC 2046's
    multipart syntax: parts between ``--BOUNDARY`` lines, the last one ``--BOUNDARY--``)."""
    if not boundary:
        raise RequestError("a multipart/form-data body without a boundary")
    delimiter = b"--" + boundary
    uploads: list[Upload] = []
    names: list[str] = []  # the first few other fields', for the message
    start = body.find(delimiter)  # what comes before it is the preamble
    parts = 0
    while start >= 0:
        start += len(delimiter)
        if body.startswith(b"--", start):  # the closing delimiter; the epilogue follows
            break
        end = body.find(delimiter, start)
        if end < 0:
            raise RequestError("a malformed multipart/form-data body (no closing boundary)")
        parts += 1
        if parts > max_parts:
            raise RequestError(f"a form of more than {max_parts} parts")
        name, upload = parse_part(body[start:end], len(uploads) + 1)
        if name == FIELD:
            uploads.append(upload)
            if len(uploads) > max_images:
                raise too_many(max_images)
        elif len(names) < 5 and echo(name) not in names:
            names.append(echo(name))
        start = end
    if start < 0 or parts == 0:
        raise RequestError("a malformed multipart/form-data body (no closing boundary)")
    if not uploads:
        shown = ", ".join(names) or "none"
        raise RequestError(f"no field {FIELD!r} in the form (fields: {shown}): {HOW}")
    return uploads


def parse_part(section: bytes, number: int) -> tuple[str, Upload]:
    """The field name of one part (between two delimiters) and its file."""
    head, blank, data = section.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not blank or not data.endswith(b"\r\n") or lines[0].strip(b" \t"):
        raise RequestError("a malformed multipart/form-data body (a part without headers)")
    fields = (line.split(b":", 1) for line in lines[1:] if b":" in line)
    headers = {key.strip().lower(): value.strip() for key, value in fields}
    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    name = options.get(b"name", b"").decode(errors="replace")
    filename = options.get(b"filename", b"").decode(errors="replace")[:NAME_CHARS]
    # The part's last CRLF belongs to the boundary line that follows it.
    return name, Upload(filename or f"image {number}", data[:-2])


def parse_json(body: bytes, max_images: int) -> list[Upload]:
    try:
        document = json.loads(body)
    # JSONDecodeError is a ValueError, as is an integer of more digits than Python
    # converts (4,300); arrays nested beyond the recursion limit are a RecursionError.
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise RequestError(f"the body is not JSON that the server reads ({reason[:200]})") from None
    if isinstance(document, dict) and isinstance(document.get(FIELD), str):
        encoded = [document[FIELD]]
    elif isinstance(document, dict) and isinstance(document.get("images"), list):
        encoded = document["images"]
    else:
        raise RequestError(f"no key {FIELD!r} (a base64 string) or 'images' (a list): {HOW}")
    if not encoded:
        raise RequestError(f"an empty list of 'images': {HOW}")
    if len(encoded) > max_images:
        raise too_many(max_images)
    return [decode_base64(text, f"image {n}") for n, text in enumerate(encoded, 1)]


def decode_base64(text: object, name: str) -> Upload:
    if not isinstance(text, str):
        raise RequestError(f"{name}: not a base64 string")
    if text.startswith("data:"):  # a data URL: data:image/png;base64,....
        text = text.partition(",")[2]
    try:
        return Upload(name, base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise RequestError(f"{name}: not valid base64") from None
