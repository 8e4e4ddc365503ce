"""The HTTP fuzzing (``http_harness.py``) in a fresh interpreter, against a real ``cnnkit
serve`` on loopback with a real LeNet-5 run, a real index of MNIST digits and a bearer
token: every route of the schema, every answer as documented, no 500, every error JSON."""

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.fuzz.http_harness import EXAMPLES
from tests.helpers import require_module
from tests.helpers.serving import serving

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fuzz-token-0b7e"
# Every route of the schema: those of predictions, reading, the service and an index's search.
ROUTES = {
    "POST /v1/predict", "POST /v1/explain", "GET /v1/model", "GET /healthz", "GET /readyz",
    "GET /metrics", "POST /v1/search", "GET /v1/search", "GET /v1/thumbnails/{item_id}",
    "POST /v1/read",
}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory, digit_run) -> Path:
    """An exact index of the first 200 MNIST training digits, built with the run."""
    from cnnkit.search import BuildSettings, build_index, dataset_collection

    out = tmp_path_factory.mktemp("fuzz-index") / "mnist"
    options = BuildSettings(backend="exact", device="cpu")
    build_index(digit_run, out, lambda run: dataset_collection("mnist", "train", run, 200), options)
    return out


@pytest.mark.slow  # starts a server: seconds
def test_every_route_answers_as_documented_and_every_error_is_json(digit_run, fuzz_index):
    require_module("schemathesis", "test")
    require_module("fastapi", "serve")
    with serving(digit_run, "--index", str(fuzz_index), "--token", TOKEN) as served:
        result = subprocess.run(
            [sys.executable, "-m", "tests.fuzz.http_harness", served.url, TOKEN],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        returncode, stderr = served.stop()
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert returncode == 0 and "Traceback" not in stderr, stderr[-3000:]  # no bug logged
    tried = {
        (route, kind): (int(count), answers)
        for route, kind, count, answers in re.findall(
            r"fuzz (\S+ \S+) (\S+): (\d+) cases \(([^)]*)\)", result.stdout
        )
    }
    assert {route for route, _ in tried} == ROUTES
    statuses = Counter()
    for _, answers in tried.values():
        statuses.update({int(s): int(n) for s, n in (a.split(":") for a in answers.split())})
    assert statuses.total() >= EXAMPLES * len(ROUTES)  # most routes spent their budget
    assert statuses[200] >= EXAMPLES  # the real digit's cases reached the model
    assert max(statuses) < 500
    print(f"HTTP fuzzing: {statuses.total()} cases, all answered as documented, by status "
          f"{dict(sorted(statuses.items()))}")  # fmt: skip
