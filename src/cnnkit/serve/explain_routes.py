"""``POST /v1/explain?class=NAME&top=5``: what the network computed for one image, for
the page: the image as the network received it, every layer's activations (one PNG per
layer, ``wire.LayerMaps``), the top classes, Grad-CAM and saliency for the class
``class`` (the top class by default), and whether the image looks unlike the training
images (a caution when it does). The model process computes it (``model.ServedModel``,
through ``runs.explain``); this module reads the request and writes the JSON.

The maps are PNGs in base64 rather than lists of numbers: a layer's maps are one image
of a few hundred bytes that the page draws as it comes, where LeNet-5's every value as
JSON text (``Explanation.to_json``) is ten times the bytes, to write and to parse after
each stroke.
"""

import base64
import dataclasses
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cnnkit.errors import NotFoundError
from cnnkit.serve.answers import DEFAULT_TOP, UPLOADS, errors, submit, top_classes, upload_body
from cnnkit.serve.batcher import MicroBatcher
from cnnkit.serve.limits import UploadLimits
from cnnkit.serve.metrics import milliseconds_since
from cnnkit.serve.png import pixels_png
from cnnkit.serve.uploads import echo, read_images, top_parameter
from cnnkit.serve.wire import Explanation, LayerMaps, NoveltyVerdict, Operation

CLASSES_SHOWN = 12  # of the model's classes that the message of an unknown one lists


def class_parameter(request: Request, classes: list[str]) -> int | None:
    """The position of the query's ``class`` among the model's classes; None when the
    query names none (the top class is explained). A ``NotFoundError`` for a class the
    model does not have, as ``GET /v1/search?class=`` answers one."""
    name = request.query_params.get("class")
    if name is None:
        return None
    if name not in classes:
        more = ", ..." if len(classes) > CLASSES_SHOWN else ""
        shown = ", ".join(classes[:CLASSES_SHOWN]) + more
        raise NotFoundError(f"class {echo(name)} is not one of the model's classes ({shown})")
    return classes.index(name)


def png_text(pixels: np.ndarray) -> str:
    """uint8 pixels as a PNG file in base64."""
    return base64.b64encode(pixels_png(pixels)).decode()


def layer_json(layer: LayerMaps) -> dict[str, Any]:
    return {
        "name": layer.name,
        "kind": layer.kind,
        "shape": list(layer.shape),
        "units": layer.units,
        "maps": layer.maps,
        "range": [float(f"{layer.low:.5g}"), float(f"{layer.high:.5g}")],
        "png": png_text(layer.pixels),
    }


def caution(verdict: NoveltyVerdict | None) -> str | None:
    """The warning an unusual image's answer carries (``cnnkit explain`` prints the same)."""
    if verdict is None or not verdict.unusual:
        return None
    return (
        f"this image looks unlike the training images (novelty score {verdict.score:.1f} > "
        f"threshold {verdict.threshold:.1f}): the answer may mean little"
    )


def explanation_json(found: Explanation, classes: list[str], top: int) -> dict[str, Any]:
    """An explanation's JSON, less the request's own fields (model, name, ms)."""
    verdict = found.novelty
    return {
        "input": png_text(found.input),
        "layers": [layer_json(layer) for layer in found.layers],
        "top": top_classes(found.probs, classes, top),
        "target": classes[found.target],
        "gradcam_layer": found.gradcam_layer,
        "gradcam": None if found.gradcam is None else png_text(found.gradcam),
        "saliency": png_text(found.saliency),
        "novelty": None
        if verdict is None
        else {
            "score": round(verdict.score, 3),
            "threshold": round(verdict.threshold, 3),
            "unusual": verdict.unusual,
        },
        "caution": caution(verdict),
        "novelty_note": found.novelty_note or None,
    }


def explain_body(classes: list[str]) -> dict[str, Any]:
    """The OpenAPI description of the route: an upload, its ``top``, and ``class``."""
    body = upload_body(DEFAULT_TOP, "classes per image, most probable first")
    wanted = {
        "name": "class",
        "in": "query",
        "description": "the class whose evidence Grad-CAM and saliency show [the top class]",
        "schema": {"type": "string", "enum": classes},
    }
    return {**body, "parameters": [*body["parameters"], wanted]}


def explain_routes(batcher: MicroBatcher, description: dict, limits: UploadLimits) -> APIRouter:
    """``/v1/explain``, for one image at a time."""
    router = APIRouter()
    name, classes = description["model"], description["classes"]
    one_image = dataclasses.replace(limits, images=1)

    @router.post(
        Operation.EXPLAIN.path,
        openapi_extra=explain_body(classes),
        responses=errors(*UPLOADS, 404),
    )
    async def explain(request: Request) -> JSONResponse:
        """One image as the network received it, every layer's activations, the top
        classes, Grad-CAM and saliency for ``class``, and the novelty verdict."""
        started = time.perf_counter()
        top = top_parameter(request, DEFAULT_TOP)
        target = class_parameter(request, classes)
        (upload,) = await read_images(request, one_image)
        (found,) = await submit(batcher, request, Operation.EXPLAIN, [(upload, target)])
        answer = {"model": name, "name": upload.name, **explanation_json(found, classes, top)}
        return JSONResponse({**answer, "ms": milliseconds_since(started)})

    return router
