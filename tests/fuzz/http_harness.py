"""HTTP fuzzing of a running ``cnnkit serve``, run as ``python -m tests.fuzz.http_harness
URL TOKEN`` by ``test_http.py``: Schemathesis (property-based tests from the server's own
OpenAPI schema, on Hypothesis) sends every route of the schema cases that fit it and
cases that break it (a wrong type, a value out of range, a missing body), and the
routes that take an image also a real MNIST digit with every query the schema allows.
Every answer must be one that the route documents (its status, its content type, an
error's schema), never a 500, and every error JSON ``{"error": MESSAGE}``.

A fresh interpreter of its own, as the file fuzzing's: cnnkit's inference turns on
flushing denormal floats for the whole process (``torch.set_flush_denormal``), and
Hypothesis cannot generate floats in a process that does. ``CNNKIT_FUZZ_EXAMPLES`` sets
the cases per route and kind (default 60): 5000 for a long run.
"""

import io
import os
import sys
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = int(os.environ.get("CNNKIT_FUZZ_EXAMPLES", "60"))


def fuzz(operation, mode: GenerationMode, auth: dict, image: bytes | None = None) -> Counter:
    """Hypothesis's cases of ``mode`` for ``operation`` (with ``image`` as the body, if
    given), each sent and its answer checked; the answers' statuses."""
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
        response = case.call(headers=auth, timeout=30)
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
        assert mode is GenerationMode.NEGATIVE and not sent
    return sent


def digit_png() -> bytes:
    """MNIST's first test digit as a PNG file: a body that the model answers."""
    from cnnkit.data import load_dataset

    buffer = io.BytesIO()
    Image.fromarray(load_dataset("mnist")[1].images[0, 0].numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def main(url: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    image = digit_png()
    for operation in operations:
        kinds = {mode.value: fuzz(operation, mode, auth) for mode in GenerationMode}
        if operation.method.upper() == "POST":
            kinds["digit"] = fuzz(operation, GenerationMode.POSITIVE, auth, image)
        for kind, statuses in kinds.items():
            shown = " ".join(f"{status}:{count}" for status, count in sorted(statuses.items()))
            print(f"fuzz {operation.label} {kind}: {statuses.total()} cases ({shown})")


if __name__ == "__main__":
    main(*sys.argv[1:])
