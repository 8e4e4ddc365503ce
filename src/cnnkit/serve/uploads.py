"""The images of a request, in any of the three ways a client may send them.

- ``multipart/form-data`` with one or more files in the field ``image`` (a form, curl -F);
- JSON ``{"image": BASE64}`` or ``{"images": [BASE64, ...]}``, plain base64 or a
  ``data:`` URL as a canvas's ``toDataURL`` gives it;
- the image file itself as the body (``Content-Type: image/png``, curl --data-binary).

The body is read whole (the middleware has bounded it) and a form is split at its
boundary lines, its part headers read with python-multipart's header parser. For a
digit's upload, Starlette's ``request.form()`` cost 0.3 ms (it spools every file
through a temporary-file object), python-multipart's streaming parser 70 us, this 25 us.
What the bytes are is ``limits``' business; ``read_images`` applies both.

The query's ``top`` is read by hand too: FastAPI's validation of a declared parameter
cost about 0.1 ms a request (docs/serve.md); the routes declare it in their schema.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from cnnkit.errors import RequestError, UnsupportedImageError
from cnnkit.serve.limits import read_header

FIELD = "image"  # the multipart field and JSON key of one image; JSON "images" for a list
HOW = (
    "send multipart/form-data with the file in the field 'image', JSON {\"image\": base64}, "
    "or the image itself as the body"
)


@dataclass(frozen=True)
class Upload:
    name: str  # the client's file name, or "image 1", ...: for messages only
    data: bytes


def top_parameter(request: Request, default: int) -> int:
    """The query's ``top``: how many classes or items to answer with."""
    given = request.query_params.get("top", str(default))
    if not given.isdigit() or int(given) < 1:
        raise RequestError(f"top must be a whole number, at least 1; not {given!r}")
    return int(given)


async def read_images(request: Request, max_images: int, max_pixels: int) -> list[Upload]:
    """The request's images, each checked by its first bytes and header."""
    uploads = await read_uploads(request, max_images)
    for upload in uploads:
        read_header(upload.data, upload.name, max_pixels)
    return uploads


async def read_uploads(request: Request, max_images: int) -> list[Upload]:
    """The images of ``request``; a ``RequestError`` naming what is missing or wrong."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    body = await request.body()
    if not body:
        raise RequestError(f"empty request: {HOW}")
    if kind == b"multipart/form-data":
        uploads = parse_form(body, options.get(b"boundary", b""))
    elif kind == b"application/json":
        uploads = parse_json(body)
    elif not kind or kind.startswith(b"image/") or kind == b"application/octet-stream":
        uploads = [Upload("image 1", body)]
    else:
        raise UnsupportedImageError(f"a body of type {kind.decode()} is not an image: {HOW}")
    if len(uploads) > max_images:
        raise RequestError(f"{len(uploads)} images, more than {max_images} in one request")
    return uploads


def parse_form(body: bytes, boundary: bytes) -> list[Upload]:
    """The files of the form's ``image`` field, in order (RFC 7578 on RFC 2046's
    multipart syntax: parts between ``--BOUNDARY`` lines, the last one ``--BOUNDARY--``)."""
    if not boundary:
        raise RequestError("a multipart/form-data body without a boundary")
    sections = body.split(b"--" + boundary)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise RequestError("a malformed multipart/form-data body (no closing boundary)")
    uploads: list[Upload] = []
    names: list[str] = []
    for section in sections[1:-1]:  # the first is the preamble, the last the epilogue
        head, blank, data = section.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not blank or not data.endswith(b"\r\n") or lines[0].strip(b" \t"):
            raise RequestError("a malformed multipart/form-data body (a part without headers)")
        fields = (line.split(b":", 1) for line in lines[1:] if b":" in line)
        headers = {key.strip().lower(): value.strip() for key, value in fields}
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode(errors="replace")
        names.append(repr(name))
        if name == FIELD:
            filename = options.get(b"filename", b"").decode(errors="replace")
            # The part's last CRLF belongs to the boundary line that follows it.
            uploads.append(Upload(filename or f"image {len(uploads) + 1}", data[:-2]))
    if not uploads:
        raise RequestError(f"no field {FIELD!r} in the form (fields: {', '.join(names)}): {HOW}")
    return uploads


def parse_json(body: bytes) -> list[Upload]:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError(f"the body is not JSON ({error})") from None
    if isinstance(document, dict) and isinstance(document.get(FIELD), str):
        encoded = [document[FIELD]]
    elif isinstance(document, dict) and isinstance(document.get("images"), list):
        encoded = document["images"]
    else:
        raise RequestError(f"no key {FIELD!r} (a base64 string) or 'images' (a list): {HOW}")
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
