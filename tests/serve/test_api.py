"""The HTTP API through FastAPI's test client, on a real LeNet-5 run and real MNIST
digits, with the real model process behind it: predictions agree with ``cnnkit
predict``, explain shows every layer as the size analyzer counts it and C1's maps as an
independent convolution computes them, every bad request is
one JSON message with the status of its cause, and odd but valid images are read."""

import asyncio
import base64
import io
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.analysis import size_report
from cnnkit.predict import predict_files
from cnnkit.runs import load_run
from cnnkit.serve.middleware import CONTENT_SECURITY_POLICY, MAX_MESSAGE
from cnnkit.serve.settings import ServeSettings
from cnnkit.serve.wire import WITHDRAWN, ItemFailure
from tests.helpers.serving import StandInModel, claiming_jpeg, client_for

TOKEN = "test-token-7f3a"


@pytest.fixture(scope="module")
def model(serve_extra, digit_checkpoint):
    from cnnkit.serve.model_process import ModelProcess

    process = ModelProcess.start(digit_checkpoint, "cpu")
    yield process
    process.close()


@pytest.fixture
def client(model):
    with client_for(model) as client:  # one app at a time on the model process
        yield client


def form(*pngs: bytes, field: str = "image") -> list:
    return [(field, (f"{n}.png", png, "image/png")) for n, png in enumerate(pngs)]


def top1(answer: dict) -> list[str]:
    return [prediction["top"][0]["class"] for prediction in answer["predictions"]]


def test_predictions_on_real_digits_agree_with_cnnkit_predict(client, digits, digit_checkpoint):
    answers = [
        client.post("/v1/predict?top=3", files=form(*[d.png for d in digits[i : i + 50]]))
        for i in (0, 50)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    predictions = [p for a in answers for p in a.json()["predictions"]]
    assert all(len(p["top"]) == 3 for p in predictions)
    labels = top1({"predictions": predictions})
    right = sum(label == str(d.label) for label, d in zip(labels, digits, strict=True))
    assert right >= 90  # one epoch on 6,000 digits: about 95%
    reference = predict_files(digit_checkpoint, [d.path for d in digits], top=3)
    for served, local in zip(predictions, reference, strict=True):
        assert [t["class"] for t in served["top"]] == [name for name, _ in local.top]
        assert [t["probability"] for t in served["top"]] == pytest.approx(
            [p for _, p in local.top], abs=1e-5
        )
    assert answers[0].json()["model"] == "lenet5" and answers[0].json()["ms"] > 0


def test_json_base64_data_urls_and_raw_bodies_give_the_same_answer(client, digits):
    pngs = [d.png for d in digits[:3]]
    multipart = client.post("/v1/predict", files=form(*pngs)).json()
    encoded = [base64.b64encode(png).decode() for png in pngs]
    as_json = client.post("/v1/predict", json={"images": encoded}).json()
    data_url = client.post(
        "/v1/predict", json={"image": "data:image/png;base64," + encoded[0]}
    ).json()
    raw = client.post("/v1/predict", content=pngs[0], headers={"content-type": "image/png"})
    for answer in (as_json, data_url, raw.json()):
        first = multipart["predictions"][: len(answer["predictions"])]
        assert [p["top"] for p in answer["predictions"]] == [p["top"] for p in first]
    assert top1(multipart) == [str(d.label) for d in digits[:3]]


def png_values(text: str) -> np.ndarray:
    """A base64 PNG of the answer as its uint8 pixels."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def test_explain_answers_every_layer_as_the_size_analyzer_counts_it(
    client, digits, digit_checkpoint
):
    digit = digits[0]
    answer = client.post("/v1/explain", files=form(digit.png)).json()
    run = load_run(digit_checkpoint, "cpu")
    report = size_report(run.model, run.model.input_size, "lenet5")
    counted = [(row.name, list(row.output_shape), row.units) for row in report.layers]
    shown = [(layer["name"], layer["shape"], layer["units"]) for layer in answer["layers"]]
    assert shown == [row for row in counted if row[0] != "input"]
    assert [layer["name"] for layer in answer["layers"]] == [
        "c1",
        "s2",
        "c3",
        "s4",
        "c5",
        "f6",
        "output",
    ]  # fmt: skip  (LeCun et al. 1998, Fig. 2)
    assert [layer["maps"] for layer in answer["layers"]] == [6, 6, 16, 16, 0, 0, 0]
    sprites = [png_values(layer["png"]).shape for layer in answer["layers"]]
    assert sprites == [(28, 168), (14, 84), (10, 160), (5, 80), (1, 120), (1, 84), (1, 10)]
    assert answer["top"][0]["class"] == answer["target"] == str(digit.label)
    seen = png_values(answer["input"])
    expected = run.prepare(run.read_file(digit.path)[None])[0, 0].numpy()
    assert seen.shape == (32, 32) and np.array_equal(seen, expected)  # MNIST padded to 32
    # C1 recomputed outside the model: a plain convolution of the normalised input and
    # LeNet-5's squashing function, 1.7159 tanh(2x/3) (LeCun et al. 1998, Appendix A).
    x = (torch.from_numpy(expected).float() / 255 - run.record.mean[0]) / run.record.std[0]
    conv = torch.nn.functional.conv2d(x[None, None], run.model.c1.weight, run.model.c1.bias)
    reference = (1.7159 * torch.tanh(2 * conv[0] / 3)).detach().numpy()
    c1 = answer["layers"][0]
    low, high = c1["range"]
    assert low == pytest.approx(reference.min(), abs=1e-3)
    assert high == pytest.approx(reference.max(), abs=1e-3)
    decoded = low + png_values(c1["png"]).astype(float) / 255 * (high - low)
    strip = np.concatenate(list(reference), axis=1)  # the six maps side by side
    assert np.abs(decoded - strip).max() <= (high - low) / 255  # within one grey level
    gradcam, saliency = png_values(answer["gradcam"]), png_values(answer["saliency"])
    assert answer["gradcam_layer"] == "c3"  # C5's maps are 1x1: its Grad-CAM is constant
    assert gradcam.shape == saliency.shape == (32, 32) and gradcam.max() == 255
    assert answer["novelty"]["unusual"] is False and answer["caution"] is None


def test_the_class_parameter_moves_grad_cam_and_an_unknown_class_is_a_404(client, digits):
    png = digits[1].png
    first = client.post("/v1/explain", files=form(png)).json()
    runner_up = first["top"][1]["class"]
    second = client.post(f"/v1/explain?class={runner_up}", files=form(png)).json()
    assert second["target"] == runner_up and second["top"] == first["top"]
    assert not np.array_equal(png_values(first["gradcam"]), png_values(second["gradcam"]))
    assert not np.array_equal(png_values(first["saliency"]), png_values(second["saliency"]))
    for bad in ("11", "", "seven"):
        answer = client.post(f"/v1/explain?class={bad}", files=form(png))
        assert answer.status_code == 404
        assert answer.json() == {
            "error": f"class {bad!r} is not one of the model's classes (0, 1, 2, 3, 4, 5, 6, "
            "7, 8, 9)"
        }


def test_an_image_unlike_the_training_digits_gets_a_caution(client):
    # A checkerboard: as unlike a handwritten digit as an image gets; LeNet-5 still
    # calls it a digit with near certainty, so the softmax alone would not warn.
    board = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(board).save(buffer, format="PNG")
    answer = client.post("/v1/explain", files=form(buffer.getvalue())).json()
    novelty = answer["novelty"]
    assert novelty["unusual"] is True and novelty["score"] > novelty["threshold"]
    assert answer["caution"].startswith("this image looks unlike the training images")
    assert answer["novelty_note"] is None


def test_model_reports_the_papers_sizes(client):
    answer = client.get("/v1/model").json()
    assert answer["model"] == "lenet5" and answer["dataset"] == "mnist"
    assert answer["classes"] == [str(d) for d in range(10)]
    assert answer["input_shape"] == [1, 32, 32] and answer["preparation"] == "digit"
    assert answer["parameters"] == 60_000  # LeCun et al. 1998, Sec. II-B
    # The paper's connections: C1 122,304 + S2 5,880 + C3 151,600 + S4 2,000 + C5 48,120
    # + F6 10,164, and 840 in the RBF output, counting a connection per bias.
    assert answer["connections_with_biases"] == 340_908
    assert answer["search"] is None  # no index


def test_health_readiness_and_metrics(model, digits):
    with client_for(model) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        for digit in digits[:5]:
            assert client.post("/v1/predict", files=form(digit.png)).status_code == 200
        client.post("/v1/predict", content=b"")
        client.get("/static/page.js")
        client.get("/no/such/page")
        text = client.get("/metrics").text
    lines = text.splitlines()
    ok = 'cnnkit_requests_total{route="/v1/predict",method="POST",status="200"} 5'
    assert ok in lines
    assert 'cnnkit_requests_total{route="/v1/predict",method="POST",status="400"} 1' in lines
    buckets = [
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith('cnnkit_request_duration_seconds_bucket{route="/v1/predict",')
        and 'status="200"' in line
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 5  # cumulative, +Inf counts all
    assert 'cnnkit_batch_size_sum{kind="predict"} 5' in lines
    assert 'cnnkit_requests_total{route="/static",method="GET",status="200"} 1' in lines
    assert 'cnnkit_requests_total{route="unmatched",method="GET",status="404"} 1' in lines
    assert "cnnkit_queue_depth 0" in lines
    assert "# TYPE cnnkit_request_duration_seconds histogram" in lines


def test_the_page_and_its_files_are_sent_with_strict_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" in page.text and "http" not in page.text  # nothing from elsewhere
    for name, kind in (("page.js", "javascript"), ("page.css", "text/css")):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "http://" not in answer.text and "https://" not in answer.text
    assert client.get("/v1/model").headers["x-content-type-options"] == "nosniff"
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/model", "/metrics"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` 8-bit gray pixels, followed by a
    few bytes of image data: what a decompression bomb looks like, without the bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def tiff_of(png: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buffer, format="TIFF")
    return buffer.getvalue()


JSON = {"content-type": "application/json"}


def many_parts(count: int, name: str) -> dict:
    """A multipart request of ``count`` empty parts in the field ``name``."""
    part = f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n\r\n'.encode()
    body = part * count + b"--b--\r\n"
    return dict(content=body, headers={"content-type": "multipart/form-data; boundary=b"})


BAD_REQUESTS = {
    "empty body": (dict(content=b""), 400, "empty request"),
    "wrong field": (dict(files=[("file", ("a.png", b"x", "image/png"))]), 400, "no field 'image'"),
    "a text file": (dict(files=[("image", ("a.txt", b"hello", "text/plain"))]), 415, "a.txt"),
    "a text body": (
        dict(content=b"hello", headers={"content-type": "text/plain"}),
        415,
        "text/plain",
    ),
    "a TIFF": ("tiff", 415, "accepted format"),
    "a truncated PNG": ("truncated", 400, "not a readable image"),
    "a bomb header": (
        dict(files=[("image", ("bomb.png", png_header(100_000, 100_000), "image/png"))]),
        413,
        "bomb.png: its header claims",
    ),
    "bad base64": (dict(json={"image": "not base64!"}), 400, "not valid base64"),
    "bad JSON": (
        dict(content=b"{", headers={"content-type": "application/json"}),
        400,
        "not JSON",
    ),
    "top 0": ("top0", 400, "top must be a whole number"),
    "65 images": ("many", 400, "more than 64"),
    # str.isdigit takes a superscript two, which int() refuses; int() refuses 5,000 digits
    "top ²": (dict(params={"top": "²"}), 400, "top must be a whole number"),
    "top of 5,000 digits": (dict(params={"top": "9" * 5000}), 400, "top must be a whole number"),
    "a JSON number of 5,000 digits": (
        dict(content=b'{"image": ' + b"9" * 5000 + b"}", headers=JSON),
        400,
        "not JSON",
    ),
    "JSON nested 200,000 deep": (
        dict(content=b"[" * 200_000 + b"]" * 200_000, headers=JSON),
        400,
        "nested too deeply",
    ),
    "an empty list of images": (dict(json={"images": []}), 400, "an empty list"),  # fuzzing
    "a form of 20,000 parts": ("parts", 400, "more than 128 parts"),
    "a form of long field names": ("names", 400, "no field 'image'"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_requests_are_one_json_message_with_their_status(client, digits, case):
    request, status, fragment = BAD_REQUESTS[case]
    png = digits[0].png
    made = {
        "tiff": dict(files=form(tiff_of(png))),
        "truncated": dict(files=form(png[: len(png) // 2])),
        "top0": dict(files=form(png), params={"top": 0}),
        "many": dict(files=form(*[png] * 65)),
        "parts": many_parts(20_000, "x"),
        "names": many_parts(100, "x" * 1000),
    }
    answer = client.post("/v1/predict", **(made[request] if isinstance(request, str) else request))
    assert answer.status_code == status, answer.text[:1000]
    assert answer.headers["content-type"] == "application/json"
    message = answer.json()["error"]
    assert set(answer.json()) == {"error"} and fragment in message and "\n" not in message
    assert len(message) <= MAX_MESSAGE  # what a client sent is not echoed at length


def test_a_request_claiming_more_pixels_than_its_budget_is_a_413_before_decoding(model):
    hostile = claiming_jpeg(9_000, 9_000)  # 81 million pixels each: under one image's limit
    files = [("image", (f"{n}.jpg", hostile, "image/jpeg")) for n in range(16)]
    with client_for(model, timeout_s=2) as client:
        answer = client.post("/v1/predict", files=files)
        metrics = client.get("/metrics").text
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert "claim 1,296,000,000 pixels together" in answer.json()["error"]
    assert "at most 100,000,000 for one request" in answer.json()["error"]
    assert "cnnkit_batch_size_count" not in metrics  # nothing reached the model process


def test_a_body_over_the_byte_limit_is_refused_before_it_is_read(model, digits):
    with client_for(model, max_bytes=10_000) as client:
        declared = client.post("/v1/predict", files=form(b"\x89PNG\r\n\x1a\n" + b"0" * 20_000))
        chunked = client.post("/v1/predict", content=iter([b"0" * 6_000] * 3))
        fits = client.post("/v1/predict", files=form(digits[0].png))
    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert "limit of 10,000 bytes" in answer.json()["error"]
    assert fits.status_code == 200


def odd_images(digit) -> dict[str, bytes]:
    """Valid images in the modes a user's files come in, all of the same real digit."""
    gray = np.asarray(Image.open(io.BytesIO(digit.png)))
    files = {}
    buffer = io.BytesIO()
    Image.fromarray(np.full((1, 1), 255, np.uint8)).save(buffer, format="PNG")
    files["1x1.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(gray.astype(np.uint16) * 257).save(buffer, format="PNG")  # 16-bit gray
    files["16-bit.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(gray).convert("CMYK").save(buffer, format="JPEG", quality=95)
    files["cmyk.jpg"] = buffer.getvalue()
    buffer = io.BytesIO()
    frames = [Image.fromarray(gray), Image.fromarray(255 - gray)]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    files["animated.gif"] = buffer.getvalue()
    return files


def confident_digit(client, digits):
    """The first digit the model classifies right with a probability over 0.95."""
    for digit in digits:
        (best,) = client.post("/v1/predict?top=1", files=form(digit.png)).json()["predictions"]
        if best["top"][0]["class"] == str(digit.label) and best["top"][0]["probability"] > 0.95:
            return digit
    raise AssertionError("the fixture model is not confident on any digit")


def test_odd_but_valid_images_get_a_prediction(client, digits):
    digit = confident_digit(client, digits)
    files = odd_images(digit)
    assert Image.open(io.BytesIO(files["16-bit.png"])).mode.startswith("I;16")
    assert Image.open(io.BytesIO(files["cmyk.jpg"])).mode == "CMYK"
    assert getattr(Image.open(io.BytesIO(files["animated.gif"])), "n_frames", 1) == 2
    for name, data in files.items():
        answer = client.post("/v1/predict", files=[("image", (name, data, "image/*"))])
        assert answer.status_code == 200, (name, answer.text)
        if name != "1x1.png":  # the same digit in another mode, first frame of the GIF
            assert top1(answer.json()) == [str(digit.label)], name


def test_the_token_guards_the_api_and_metrics_but_not_the_page(model, digits):
    with client_for(model, token=TOKEN) as client:
        for path in ("/v1/model", "/metrics"):
            missing = client.get(path)
            wrong = client.get(path, headers={"Authorization": "Bearer nope"})
            assert missing.status_code == wrong.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            assert "missing bearer token" in missing.json()["error"]
            assert wrong.json() == {"error": "wrong bearer token"}
        assert client.post("/v1/predict", files=form(digits[0].png)).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/v1/model", headers=good).status_code == 200
        for scheme in ("bearer", "BEARER", "Bearer  "):  # RFC 9110: any case, then spaces
            assert client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"}).is_success
        assert client.post("/v1/predict", files=form(digits[0].png), headers=good).json()
        for path in ("/", "/static/page.js", "/healthz", "/readyz"):
            assert client.get(path).status_code == 200, path


def test_search_without_an_index_is_a_404_with_a_message(client):
    for answer in (
        client.get("/v1/search?class=7"),
        client.post("/v1/search", content=b"x"),
        client.get("/v1/thumbnails/1"),
    ):
        assert answer.status_code == 404
        assert "no index" in answer.json()["error"]
    assert client.get("/no/such/route").json() == {"error": "not found: /no/such/route"}


class SlowModel(StandInModel):
    """Stands in for the model process: each batch takes 0.4 s."""

    description = {**StandInModel.description, "model": "slow"}

    async def run_batch(self, kind, batch):
        await asyncio.sleep(0.4)
        return [np.array([0.25, 0.75])] * len(batch.items)


def test_a_full_queue_turns_requests_away_before_their_body_is_read(digits):
    with client_for(SlowModel(), max_batch=1, max_queue=1, busy_pause_ms=100) as client:
        threads = [
            threading.Thread(
                target=client.post, args=("/v1/predict",), kwargs={"files": form(digits[0].png)}
            )
            for _ in range(2)
        ]
        for thread in threads:  # one in the model, one waiting: the queue is full
            thread.start()
            time.sleep(0.05)
        started = time.perf_counter()
        busy = client.post("/v1/predict", content=b"not an image")  # a 415 if it were read
        held = time.perf_counter() - started
        for thread in threads:
            thread.join()
        metrics = client.get("/metrics").text
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    assert held >= 0.1  # held for --busy-pause-ms before it was sent
    assert 'route="unmatched",method="POST",status="503"} 1' in metrics


def test_overload_answers_503_with_retry_after_and_a_long_wait_504(digits):
    answers = []
    with client_for(SlowModel(), max_batch=1, max_queue=1, timeout_s=0.2) as client:

        def ask():
            answers.append(client.post("/v1/predict", files=form(digits[0].png)))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # one in the model, one waiting, one turned away
        for thread in threads:
            thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [503, 504, 504], [a.text for a in answers]
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    assert all(set(answer.json()) == {"error"} for answer in answers)  # JSON, none a 500


class BrokenModel(SlowModel):
    """Stands in for a model process with bugs: an item named bug.png fails in it (an
    ``ItemFailure``), one named odd.png gets an answer that the route cannot use."""

    async def run_batch(self, kind, batch):
        answers = {"bug.png": ItemFailure("an internal error on this item"), "odd.png": "odd"}
        return [answers.get(upload.name, np.array([0.25, 0.75])) for upload in batch.items]


def test_a_bug_is_a_json_500_for_its_own_request_with_the_traceback_in_the_log(digits, caplog):
    with client_for(BrokenModel()) as client:
        item = client.post(
            "/v1/predict", files=[("image", ("bug.png", digits[0].png, "image/png"))]
        )
        route = client.post(
            "/v1/predict", files=[("image", ("odd.png", digits[0].png, "image/png"))]
        )
        fine = client.post("/v1/predict", files=[("image", ("ok.png", digits[0].png, "image/png"))])
        wrong_method = client.get("/v1/predict")
    for answer in (item, route):
        assert answer.status_code == 500 and answer.headers["content-type"] == "application/json"
        assert "Traceback" not in answer.text and "odd" not in answer.text
    assert item.json() == {"error": "an internal error on this item"}
    assert "traceback is in the server's log" in route.json()["error"]
    assert fine.status_code == 200
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"error"}
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert "POST /v1/predict failed" in logged.getMessage()


class HeldModel(SlowModel):
    """Stands in for the model process: holds each batch until ``go`` is set, records
    the batches' image names and the positions withdrawn from them, and answers a
    withdrawn item ``WITHDRAWN`` as the model process does."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.withdrawn: list[int] = []

    async def connect(self):
        self.holding, self.go = asyncio.Event(), asyncio.Event()  # on the app's loop
        return self

    async def run_batch(self, kind, batch):
        self.batches.append([upload.name for upload in batch.items])
        withdrawn: list[int] = []
        batch.when_withdrawn(withdrawn.append)
        self.holding.set()
        await self.go.wait()
        self.go.clear()
        self.withdrawn += withdrawn
        answer = np.array([0.25, 0.75])
        return [WITHDRAWN if n in withdrawn else answer for n in range(len(batch.items))]


def upload_scope(body: bytes) -> dict:
    headers = [(b"content-type", b"image/png"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def post(app, body: bytes, gone: asyncio.Event) -> list[dict]:
    """A raw ASGI request of ``body`` whose client disconnects when ``gone`` is set;
    the messages the app sent."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(upload_scope(body), receive, send)
    return sent


def test_work_whose_client_disconnected_is_dropped_or_withdrawn_not_computed(digits):
    """Request 1 holds the model; 2 and 3 wait in the queue, and 2's client leaves: its
    image is dropped before any batch takes it. Then 3 and 4 share a batch, and 4's
    client leaves while it runs: its image is withdrawn (the model process skips it)."""
    from cnnkit.serve.app import create_app

    model = HeldModel()
    app = create_app(model, ServeSettings())
    png = digits[0].png

    async def clients():
        lifespan = asyncio.Queue()
        await lifespan.put({"type": "lifespan.startup"})
        started = asyncio.Event()

        async def lifespan_send(message):
            started.set()

        running = asyncio.ensure_future(app({"type": "lifespan"}, lifespan.get, lifespan_send))
        await started.wait()
        gone = [asyncio.Event() for _ in range(4)]
        first = asyncio.ensure_future(post(app, png, gone[0]))
        await model.holding.wait()  # request 1 is in the model
        model.holding.clear()
        second, third = (asyncio.ensure_future(post(app, png, gone[n])) for n in (1, 2))
        await asyncio.sleep(0.05)  # both queued
        gone[1].set()
        second_sent = await second  # answered at once, while the model still holds 1
        fourth = asyncio.ensure_future(post(app, png, gone[3]))
        await asyncio.sleep(0.05)
        model.go.set()  # 1 is answered; 3 and 4 go to the model together
        await model.holding.wait()
        gone[3].set()
        fourth_sent = await fourth
        model.go.set()
        answers = [await first, second_sent, await third, fourth_sent]
        await lifespan.put({"type": "lifespan.shutdown"})
        await running
        return [sent[0]["status"] for sent in answers]

    statuses = asyncio.run(clients())
    assert statuses == [200, 499, 200, 499]
    assert model.batches == [["image 1"], ["image 1", "image 1"]]  # 2 never reached it
    assert model.withdrawn == [1]  # 4, the second of its batch
    metrics = app.metrics.render().splitlines()
    assert 'cnnkit_dropped_items_total{kind="predict",stage="queue"} 1' in metrics
    assert 'cnnkit_dropped_items_total{kind="predict",stage="model"} 1' in metrics
    assert 'cnnkit_requests_total{route="/v1/predict",method="POST",status="499"} 2' in metrics
