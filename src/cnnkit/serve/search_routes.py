"""The search routes of a server started with an index (``cnnkit serve --index``):

- ``POST /v1/search?top=10``: the nearest items to an image (by example), the image sent
  as to ``/v1/predict``;
- ``GET /v1/search?class=NAME&top=10``: the items the model finds most probably of a
  class (by category);
- ``GET /v1/thumbnails/{id}``: an item's PNG thumbnail, by its id in the index: the
  only way to an item's pixels, so that no request ever names a file.

The model process answers them (``serve.index``) through the batcher, as it answers
predictions; without an index every one of them is a 404 with a message.
"""

import time
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from cnnkit.errors import NotFoundError, RequestError
from cnnkit.serve.answers import UPLOADS, WAITS, errors, submit, upload_body
from cnnkit.serve.batcher import MicroBatcher
from cnnkit.serve.limits import UploadLimits
from cnnkit.serve.metrics import milliseconds_since
from cnnkit.serve.uploads import read_images, top_parameter
from cnnkit.serve.wire import Operation

DEFAULT_TOP = 10  # items per query, as cnnkit search shows
NO_INDEX = "no index: this server was started without one (cnnkit serve --index INDEX)"
PNG: dict[int | str, dict[str, Any]] = {
    200: {"description": "a PNG", "content": {"image/png": {"schema": {"type": "string"}}}}
}


def search_routes(batcher: MicroBatcher, limits: UploadLimits) -> APIRouter:
    """The routes of an index served by the model process behind ``batcher``;
    ``limits``: what a query's upload may be."""
    router = APIRouter()
    body = upload_body(DEFAULT_TOP, "how many items, most similar first")

    @router.post(Operation.SEARCH.path, openapi_extra=body, responses=errors(*UPLOADS))
    async def by_example(request: Request) -> JSONResponse:
        """The nearest items of the collection to one image, by cosine similarity."""
        started = time.perf_counter()
        top = top_parameter(request, DEFAULT_TOP)
        (upload,) = await read_images(request, limits)
        (hits,) = await submit(batcher, request, Operation.SEARCH, [(upload, top)])
        return JSONResponse({"name": upload.name, "hits": hits, "ms": milliseconds_since(started)})

    by_class_query = {
        "parameters": [
            {
                "name": "class",
                "in": "query",
                "required": True,
                "description": "a class of the model",
                "schema": {"type": "string"},
            },
            body["parameters"][0],
        ]
    }

    @router.get(Operation.CLASS.path, openapi_extra=by_class_query, responses=errors(*WAITS, 404))
    async def by_class(request: Request) -> JSONResponse:
        """The items the model finds most probably of the class ``class``."""
        started = time.perf_counter()
        name = request.query_params.get("class")
        if not name:
            raise RequestError("name the class: GET /v1/search?class=NAME, or POST an image")
        top = top_parameter(request, DEFAULT_TOP)
        (hits,) = await submit(batcher, request, Operation.CLASS, [(name, top)])
        return JSONResponse({"class": name, "hits": hits, "ms": milliseconds_since(started)})

    @router.get(
        Operation.THUMBNAIL.path,
        response_class=Response,
        responses={**PNG, **errors(*WAITS, 404, 422)},
    )
    async def thumbnail(request: Request, item_id: int = Path(ge=0)) -> Response:
        """A PNG of the item, its longer side 96 pixels."""
        (png,) = await submit(batcher, request, Operation.THUMBNAIL, [item_id])
        return Response(png, media_type="image/png")

    return router


def no_search_routes() -> APIRouter:
    """The routes of an index's operations on a server without one: 404 with a message."""
    router = APIRouter()

    async def no_index() -> None:
        raise NotFoundError(NO_INDEX)

    for op in Operation:
        if op.needs_index:
            router.add_api_route(op.path, no_index, methods=[op.method], include_in_schema=False)
    return router
