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

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from cnnkit.errors import NotFoundError, RequestError
from cnnkit.serve.batcher import MicroBatcher
from cnnkit.serve.metrics import milliseconds_since
from cnnkit.serve.uploads import read_images, top_parameter
from cnnkit.serve.wire import Operation

DEFAULT_TOP = 10  # items per query, as cnnkit search shows
NO_INDEX = "no index: this server was started without one (cnnkit serve --index INDEX)"


def search_routes(batcher: MicroBatcher, max_pixels: int, upload_body: dict) -> APIRouter:
    """The routes of an index served by the model process behind ``batcher``;
    ``upload_body``: the OpenAPI description of an image upload."""
    router = APIRouter()

    @router.post(Operation.SEARCH.path, openapi_extra=upload_body)
    async def by_example(request: Request) -> JSONResponse:
        """The nearest items of the collection to one image, by cosine similarity."""
        started = time.perf_counter()
        top = top_parameter(request, DEFAULT_TOP)
        (upload,) = await read_images(request, 1, max_pixels)
        hits = await batcher.submit(Operation.SEARCH, (upload, top))
        return JSONResponse({"name": upload.name, "hits": hits, "ms": milliseconds_since(started)})

    @router.get(Operation.CLASS.path)
    async def by_class(request: Request) -> JSONResponse:
        """The items the model finds most probably of the class ``class``."""
        started = time.perf_counter()
        name = request.query_params.get("class")
        if not name:
            raise RequestError("name the class: GET /v1/search?class=NAME, or POST an image")
        hits = await batcher.submit(Operation.CLASS, (name, top_parameter(request, DEFAULT_TOP)))
        return JSONResponse({"class": name, "hits": hits, "ms": milliseconds_since(started)})

    @router.get(Operation.THUMBNAIL.path)
    async def thumbnail(item_id: int) -> Response:
        """A PNG of the item, its longer side 96 pixels."""
        return Response(await batcher.submit(Operation.THUMBNAIL, item_id), media_type="image/png")

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
