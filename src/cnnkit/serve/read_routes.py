"""``POST /v1/read``: the handwritten number in one image, as ``cnnkit read`` reads it:
the digit string, its confidence, and for each digit its box in the image's pixels, its
class and probability, and the network's probabilities of every class (the page's wide
canvas shows them as the number is written). An image with nothing to read is an empty
``text`` with its ``reason``. Only a model trained on digits reads; any other answers
404, as a search route does on a server without an index. The model process computes it
(``reading.ServedReader``); this module reads the request and writes the JSON.
"""

import dataclasses
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cnnkit.errors import NotFoundError
from cnnkit.serve.answers import UPLOADS, errors, submit, upload_body
from cnnkit.serve.batcher import MicroBatcher
from cnnkit.serve.limits import UploadLimits
from cnnkit.serve.metrics import milliseconds_since
from cnnkit.serve.uploads import read_images
from cnnkit.serve.wire import DigitRead, NumberRead, Operation

DIGITS = "digit"  # the preparation of runs trained on digits (MNIST's), which can read


def reads_digits(preparation: str) -> bool:
    """Whether a run of this preparation can read numbers: one trained on digits."""
    return preparation == DIGITS


def cannot_read(model: str, dataset: str) -> NotFoundError:
    """The answer to a read on a model that was not trained on digits."""
    return NotFoundError(
        f"reading numbers needs a model trained on handwritten digits (MNIST); "
        f"this server's {model} was trained on {dataset}"
    )


def digit_json(digit: DigitRead, classes: list[str]) -> dict[str, Any]:
    return {
        "box": list(digit.box),
        "class": digit.label,
        "probability": round(digit.probability, 6),
        "probabilities": {
            name: round(float(p), 6) for name, p in zip(classes, digit.probs, strict=True)
        },
    }


def reading_json(found: NumberRead, classes: list[str]) -> dict[str, Any]:
    """A reading's JSON, less the request's own fields (model, name, ms)."""
    width, height = found.size
    answer = {
        "text": found.text,
        "confidence": round(found.confidence, 6),
        "digits": [digit_json(digit, classes) for digit in found.digits],
        "width": width,
        "height": height,
    }
    return answer | ({"reason": found.reason} if found.reason else {})


def read_body() -> dict[str, Any]:
    """The OpenAPI description of the route: one upload (as the other routes take it),
    no query."""
    return {"requestBody": upload_body(1, "")["requestBody"]}


def read_routes(batcher: MicroBatcher, description: dict, limits: UploadLimits) -> APIRouter:
    """``/v1/read``, for one image at a time."""
    router = APIRouter()
    name, classes = description["model"], description["classes"]
    one_image = dataclasses.replace(limits, images=1)
    reads = reads_digits(description["preparation"])

    @router.post(Operation.READ.path, openapi_extra=read_body(), responses=errors(*UPLOADS, 404))
    async def read(request: Request) -> JSONResponse:
        """The number written in one image: its digits, their boxes and probabilities."""
        started = time.perf_counter()
        if not reads:
            raise cannot_read(name, description["dataset"])
        (upload,) = await read_images(request, one_image)
        (found,) = await submit(batcher, request, Operation.READ, [upload])
        answer = {"model": name, "name": upload.name, **reading_json(found, classes)}
        return JSONResponse({**answer, "ms": milliseconds_since(started)})

    return router
