"""HTTP fuzzing: Schemathesis (property-based tests from the server's own OpenAPI schema,
on Hypothesis) against a real ``cnnkit serve`` on loopback, with a real LeNet-5 run, a
real index of MNIST digits and a bearer token. Every route of the schema gets cases that
fit it and cases that break it (a wrong type, a value out of range, a missing body);
every answer must be one that the route documents (its status, its content type, an
error's schema), never a 500, and every error JSON ``{"error": MESSAGE}``.

``CNNKIT_FUZZ_EXAMPLES`` sets the cases per route (default 100), as it sets the
mutants per reader of ``harness.py``: 5000 for a long run.
"""

import io
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from PIL import Image

from tests.helpers import require_module
from tests.helpers.serving import serving

EXAMPLES = int(os.environ.get("CNNKIT_FUZZ_EXAMPLES", "60"))
TOKEN = "fuzz-token-0b7e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every route of the schema: those of predictions, the service and an index's search.
ROUTES = {
    "POST /v1/predict", "POST /v1/explain", "GET /v1/model", "GET /healthz", "GET /readyz",
    "GET /metrics", "POST /v1/search", "GET /v1/search", "GET /v1/thumbnails/{item_id}",
}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory, digit_run) -> Path:
    """An exact index of the first 200 MNIST training digits, built with the run."""
    from cnnkit.search import BuildSettings, build_index, dataset_collection

    out = tmp_path_factory.mktemp("fuzz-index") / "mnist"
    options = BuildSettings(backend="exact", device="cpu")
    build_index(digit_run, out, lambda run: dataset_collection("mnist", "train", run, 200), options)
    return out


def fuzz(operation, mode, image: bytes | None = None) -> Counter[int]:
    """Hypothesis's cases of ``mode`` for ``operation`` (with ``image`` as the body, if
    given), each sent and its answer checked; the answers' statuses."""
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    sent: Counter[int] = Counter()
    body = {} if image is None else {"body": image, "media_type": "image/png"}

    @given(case=operation.as_strategy(generation_mode=mode, **body))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases every run, as the file fuzzing's fixed seed
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answered_as_documented(case):
        response = case.call(headers=AUTH, timeout=30)
        sent[response.status_code] += 1
        # A schema cannot say "a real PNG": bytes that fit it are refused (415), rightly.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == ["application/json"], response.headers
            assert set(response.json()) == {"error"}, response.text

    try:
        answered_as_documented()
    except Unsatisfiable:  # nothing to break in a route without parameters or body
        assert mode.value == "negative" and not sent
    return sent


def digit_png() -> bytes:
    """MNIST's first test digit as a PNG file: a body that the model answers."""
    from cnnkit.data import load_dataset

    buffer = io.BytesIO()
    Image.fromarray(load_dataset("mnist")[1].images[0, 0].numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow  # starts a server: seconds
def test_every_route_answers_as_documented_and_every_error_is_json(digit_run, fuzz_index):
    schemathesis = require_module("schemathesis", "test")
    require_module("fastapi", "serve")
    from schemathesis.generation import GenerationMode

    with serving(digit_run, "--index", str(fuzz_index), "--token", TOKEN) as served:
        schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        tried = {
            (operation.label, mode.value): fuzz(operation, mode)
            for operation in operations
            for mode in GenerationMode
        }
        image = digit_png()  # and a real image with every query that the schema allows
        for operation in operations:
            if operation.method.upper() == "POST":
                tried[operation.label, "a digit"] = fuzz(operation, GenerationMode.POSITIVE, image)
        returncode, stderr = served.stop()
    assert {label for label, _ in tried} == ROUTES
    assert returncode == 0 and "Traceback" not in stderr, stderr[-3000:]  # no bug logged
    statuses = sum(tried.values(), Counter())
    assert statuses.total() >= EXAMPLES * len(ROUTES)  # most routes spent their budget
    assert statuses[200] >= EXAMPLES  # the real digit's cases reached the model
    print(
        f"HTTP fuzzing: {statuses.total()} cases, all answered as documented; by status "
        f"{dict(sorted(statuses.items()))}; by route and kind of case "
        f"{ {key: count.total() for key, count in tried.items()} }"
    )
