"""What the routes share: the status of each error and its JSON answer, the OpenAPI
description of an upload and of the error answers, and waiting for the model on a
request's behalf until it answers, times out or its client disconnects.

Each route declares the statuses it may answer (``errors``), so that the schema at
``/openapi.json`` lists them and the HTTP fuzzing (tests/fuzz/test_http.py) holds every
answer to them.
"""

from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import Receive

from cnnkit.errors import (
    CnnkitError,
    ImageError,
    ImageTooLargeError,
    NotFoundError,
    RequestError,
    RequestTooLargeError,
    ServerBusyError,
    ServerTimeoutError,
    UnsupportedImageError,
)
from cnnkit.serve.batcher import MicroBatcher
from cnnkit.serve.middleware import RETRY_AFTER_S, clipped
from cnnkit.serve.uploads import MAX_TOP, Upload
from cnnkit.serve.wire import Operation

DEFAULT_TOP = 5  # classes per image, as cnnkit predict shows
# The status of each error, most specific first.
STATUSES: tuple[tuple[type[CnnkitError], int], ...] = (
    (ImageTooLargeError, 413),
    (RequestTooLargeError, 413),
    (UnsupportedImageError, 415),
    (ImageError, 400),
    (RequestError, 400),
    (NotFoundError, 404),
    (ServerBusyError, 503),
    (ServerTimeoutError, 504),
)
ERROR_CAUSES = {
    400: "a malformed request or image, a bad parameter (docs/serve.md lists the causes)",
    401: "a missing or wrong bearer token",
    404: "no such route, class or item; a search route without an index",
    405: "a method the route does not take",
    413: "a body over the byte limit, or images whose headers claim too many pixels",
    415: "a body or file that is not an image of an accepted format",
    422: "an item id that is not a whole number",
    431: "request line and headers over the limit",
    500: "an internal error (a bug), its traceback in the server's log",
    503: "the queue is full or the server is stopping (Retry-After), or the model is gone",
    504: "no answer from the model within the timeout",
}
# What any route may answer; a route that waits for the model; one that takes uploads.
ANY_ROUTE = (400, 405, 431, 500)
PROTECTED = (*ANY_ROUTE, 401)
WAITS = (*PROTECTED, 503, 504)
UPLOADS = (*WAITS, 413, 415)
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def top_classes(probs: np.ndarray, classes: list[str], top: int) -> list[dict[str, Any]]:
    """The ``top`` most probable classes, most probable first."""
    best = np.argsort(-probs, kind="stable")[:top]
    return [{"class": classes[i], "probability": round(float(probs[i]), 6)} for i in best]


def status_of(error: CnnkitError) -> int:
    return next((status for kind, status in STATUSES if isinstance(error, kind)), 500)


def error_response(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"error": clipped(message)}, status_code=status, headers=headers)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a route's error answers: JSON with one message."""
    return {
        status: {
            "description": ERROR_CAUSES[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in sorted(set(statuses))
    }


def upload_body(default_top: int, top_means: str) -> dict[str, Any]:
    """The OpenAPI description of a route that takes images: its ``top`` and body."""
    return {
        "parameters": [
            {
                "name": "top",
                "in": "query",
                "description": top_means,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TOP,
                    "default": default_top,
                },
            }
        ],
        "requestBody": {
            "required": True,
            "description": "multipart field 'image' (repeat it for several), JSON "
            '{"image": BASE64} or {"images": [BASE64, ...]}, or the image file as the body',
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                        "required": ["image"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {"type": "string", "format": "byte"},
                            "images": {
                                "type": "array",
                                "items": {"type": "string", "format": "byte"},
                            },
                        },
                    }
                },
                "image/*": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    }


async def disconnected(receive: Receive) -> None:
    """Returns when the client disconnects (the request's body has been read: what
    the server's receive gives next is the disconnection)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def claimed_pixels(item: Any) -> int:
    """The pixels that an item's image claims: an upload's, or that of the upload first
    in a tuple (a query and its ``top``); 0 for an item without one."""
    upload = item[0] if isinstance(item, tuple) and item else item
    return upload.pixels if isinstance(upload, Upload) else 0


async def submit(
    batcher: MicroBatcher, request: Request, operation: Operation, items: list[Any]
) -> list[Any]:
    """The model's answers for a request's items, each batched with the pixels that
    its image claims; given up, the items dropped or withdrawn, if the client
    disconnects first."""
    pixels = [claimed_pixels(item) for item in items]
    return await batcher.submit_many(operation, items, pixels, disconnected(request.receive))
