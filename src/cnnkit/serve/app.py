"""The prediction server's routes: ``create_app(model, settings)`` is the ASGI app.

- ``POST /v1/predict?top=5``: the top classes of one or more images (``uploads``);
- ``POST /v1/explain?class=NAME``: one image as the network received it, every layer's
  activations, Grad-CAM and saliency for a class, the novelty verdict (``explain_routes``);
- ``POST /v1/read``: the handwritten number in one image, a box and class on each digit,
  for a model trained on digits (``read_routes``);
- ``GET /v1/model``: name, classes, sizes and the size analyzer's totals;
- ``GET /healthz`` (the process answers), ``GET /readyz`` (the model answers),
  ``GET /metrics`` (Prometheus), ``GET /docs`` (OpenAPI), ``GET /`` (the page).

The HTTP process reads requests and checks each image's format and header here; the
batcher sends the images, in batches, to the model process (``model_process``), which decodes
and classifies them while the event loop goes on with other requests. Every error is
JSON ``{"error": MESSAGE}`` with the status of its cause (``STATUSES``), the
framework's own (404, 405, 422) included; a bug is a 500 for its own request, with its
traceback in the server's log only (``ItemFailure`` for one item of a batch, the
middleware for anything else). A request whose client disconnects while it waits for
the model stops waiting, and its images are dropped or withdrawn (``batcher``).

With an index (``ModelProcess.start(..., index=)``) the model process also answers
search by example and by class and the items' thumbnails (``search_routes``); without
one those routes answer 404.
"""

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Scope

from cnnkit.errors import CnnkitError
from cnnkit.serve.answers import (
    ANY_ROUTE,
    DEFAULT_TOP,
    PROTECTED,
    UPLOADS,
    error_response,
    errors,
    status_of,
    submit,
    top_classes,
    upload_body,
)
from cnnkit.serve.batcher import ClientGone, MicroBatcher
from cnnkit.serve.explain_routes import explain_routes
from cnnkit.serve.limits import UploadLimits
from cnnkit.serve.metrics import Metrics, milliseconds_since
from cnnkit.serve.middleware import INTERNAL_ERROR, Gate
from cnnkit.serve.model_process import ModelProcess
from cnnkit.serve.read_routes import read_routes
from cnnkit.serve.search_routes import no_search_routes, search_routes
from cnnkit.serve.settings import ServeSettings
from cnnkit.serve.uploads import read_images, top_parameter
from cnnkit.serve.wire import ItemFailure, Operation

CLIENT_GONE = 499  # nginx's status for a request whose client closed the connection
UPLOAD_BODY = upload_body(DEFAULT_TOP, "classes per image, most probable first")


def create_app(model: ModelProcess, settings: ServeSettings) -> Gate:
    """The server of ``model`` (and of its index, if it has one) as an ASGI app."""
    metrics = Metrics()
    batcher = MicroBatcher(
        {},  # the model's handlers, once the app's event loop runs (lifespan)
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000,
        max_queue=settings.max_queue,
        timeout_s=settings.timeout_s,
        max_batch_pixels=settings.max_batch_pixels,
        observe=metrics.observe_batch,
    )
    metrics.queue_depth = lambda: batcher.depth
    metrics.dropped = lambda: batcher.dropped
    limits = UploadLimits(
        settings.max_images, settings.max_parts, model.max_pixels, settings.max_request_pixels
    )
    description = {**model.description, "search": model.index}
    operations = Operation.served(model.index is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = await model.connect()
        batcher.handlers = {op: partial(connection.run_batch, op) for op in operations}
        batcher.start()
        yield
        await batcher.close()  # uvicorn has drained the requests in flight: nothing waits
        await connection.close()

    app = FastAPI(
        title=f"cnnkit: {description['model']} on {description['dataset']}",
        description="Image classification with a trained cnnkit run (docs/serve.md).",
        lifespan=lifespan,
    )
    add_error_handlers(app)
    app.include_router(predict_routes(batcher, description, limits))
    app.include_router(explain_routes(batcher, description, limits))
    app.include_router(read_routes(batcher, description, limits))
    app.include_router(service_routes(batcher, model, description, metrics))
    if model.index is not None:
        one_image = dataclasses.replace(limits, images=1)
        app.include_router(search_routes(batcher, one_image))
    else:
        app.include_router(no_search_routes())
    page = (resources.files("cnnkit.serve") / "static" / "index.html").read_text()

    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_api_route("/", index, include_in_schema=False)
    app.mount("/static", StaticFiles(packages=[("cnnkit.serve", "static")]), name="static")
    # The uploads that wait for the model, which the Gate turns away when its queue is full.
    waits_for_model = {op.path for op in operations if op.takes_uploads}

    def overload(scope: Scope) -> str | None:
        if scope["method"] == "POST" and scope["path"] in waits_for_model:
            return batcher.refusal()
        return None

    return Gate(
        app, metrics, settings.token, settings.max_bytes, overload, settings.busy_pause_ms / 1000
    )


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON with one message: ours by ``STATUSES``, the framework's own."""

    @app.exception_handler(CnnkitError)
    async def cnnkit_error(request: Request, error: CnnkitError) -> JSONResponse:
        return error_response(status_of(error), str(error))

    @app.exception_handler(ItemFailure)
    async def item_failure(request: Request, error: ItemFailure) -> JSONResponse:
        return error_response(500, str(error))  # the model process logged its traceback

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, error: ClientGone) -> JSONResponse:
        return error_response(CLIENT_GONE, str(error))  # for the metrics: nobody reads it

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(500, INTERNAL_ERROR)  # the middleware logs the traceback

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            return error_response(404, f"not found: {request.url.path}")
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return error_response(422, f"{where}: {first['msg']}")


def predict_routes(batcher: MicroBatcher, description: dict, limits: UploadLimits) -> APIRouter:
    """``/v1/predict``."""
    router = APIRouter()
    name, classes = description["model"], description["classes"]

    @router.post(Operation.PREDICT.path, openapi_extra=UPLOAD_BODY, responses=errors(*UPLOADS))
    async def predict(request: Request) -> JSONResponse:
        """The top classes of each image, most probable first."""
        started = time.perf_counter()
        top = top_parameter(request, DEFAULT_TOP)
        uploads = await read_images(request, limits)
        results = await submit(batcher, request, Operation.PREDICT, uploads)
        predictions = [
            {"name": upload.name, "top": top_classes(probs, classes, top)}
            for upload, probs in zip(uploads, results, strict=True)
        ]
        answer = {"model": name, "predictions": predictions, "ms": milliseconds_since(started)}
        return JSONResponse(answer)

    return router


def service_routes(
    batcher: MicroBatcher, model: ModelProcess, description: dict, metrics: Metrics
) -> APIRouter:
    """``/v1/model``, ``/healthz``, ``/readyz`` and ``/metrics``."""
    router = APIRouter()

    @router.get("/v1/model", responses=errors(*PROTECTED))
    async def model_info() -> JSONResponse:
        """The model's name, data set, classes, input and size."""
        return JSONResponse(description)

    @router.get("/healthz", responses=errors(*ANY_ROUTE))
    async def healthz() -> JSONResponse:
        """200 while the process answers."""
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", responses=errors(*ANY_ROUTE, 503))
    async def readyz() -> JSONResponse:
        """200 while the model takes requests; 503 before it is loaded and while draining."""
        if not (batcher.is_running and model.is_alive):
            return error_response(503, "not ready: the model is starting, stopping or gone")
        return JSONResponse({"status": "ready"})

    @router.get("/metrics", response_class=PlainTextResponse, responses=errors(*PROTECTED))
    async def prometheus() -> PlainTextResponse:
        """Request counts and latencies by route and status, batch sizes, queue depth."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return router
