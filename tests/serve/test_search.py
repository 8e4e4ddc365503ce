"""The search routes of a server started with an index, through FastAPI's test client on
a real LeNet-5 run, a real index of 1,000 MNIST training digits and three digit files, and
real test digits: answers agree with ``cnnkit.search``'s own API, thumbnails come by item
id only, each item's error is its own, every bad request is one JSON message, and an
index of other weights refuses to start."""

import asyncio
import io
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.errors import FingerprintError, NotFoundError
from cnnkit.runs import save_checkpoint
from cnnkit.search import BuildSettings, add_to_index, open_index
from tests.helpers.serving import client_for

TOKEN = "search-token-51c2"
FILES = range(1000, 1003)  # the ids of the items that are files on the server


@pytest.fixture(scope="module")
def served_index(serve_extra, tmp_path_factory, digit_index, digits) -> Path:
    """The session's index of 1,000 MNIST training digits, copied, and three test digits
    added to it as PNG files (ids 1000 to 1002)."""
    folder = tmp_path_factory.mktemp("served-index")
    shutil.copytree(digit_index, folder / "index")
    (folder / "files").mkdir()
    files = [folder / "files" / digit.path.name for digit in digits[90:93]]
    for digit, file in zip(digits[90:93], files, strict=True):
        shutil.copy(digit.path, file)
    add_to_index(folder / "index", files, BuildSettings(device="cpu"))
    return folder / "index"


@pytest.fixture(scope="module")
def model(serve_extra, digit_checkpoint, served_index):
    from cnnkit.serve.model_process import ModelProcess

    process = ModelProcess.start(digit_checkpoint, "cpu", index=served_index)
    yield process
    process.close()


@pytest.fixture(scope="module")
def index(served_index):
    return open_index(served_index)


@pytest.fixture
def client(model):
    with client_for(model) as client:
        yield client


def form(png: bytes, name: str = "query.png") -> list:
    return [("image", (name, png, "image/png"))]


def test_search_by_example_agrees_with_the_index_api(client, index, digits, digit_checkpoint):
    right = 0
    for digit in digits[:10]:
        answer = client.post("/v1/search?top=5", files=form(digit.png))
        assert answer.status_code == 200, answer.text
        hits = answer.json()["hits"]
        (expected,) = index.query_files([digit.path], 5, checkpoint=digit_checkpoint)
        assert [h["id"] for h in hits] == [hit.record.id for hit in expected]
        assert [h["similarity"] for h in hits] == pytest.approx(
            [hit.score for hit in expected], abs=1e-5
        )
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
        assert all(h["thumbnail"] == f"/v1/thumbnails/{h['id']}" for h in hits)
        assert "path" not in hits[0]  # the server's file names stay on the server
        right += sum(h["label"] == str(digit.label) for h in hits)
    assert right >= 40  # of 50 neighbours, most of the query's class


def test_search_by_class_ranks_by_the_models_probability(client, index):
    answer = client.get("/v1/search", params={"class": "7", "top": 12})
    assert answer.status_code == 200
    hits = answer.json()["hits"]
    assert [h["id"] for h in hits] == [hit.record.id for hit in index.by_class("7", 12)]
    probabilities = [h["probability"] for h in hits]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0.9
    assert sum(h["label"] == "7" for h in hits) >= 11


def test_thumbnails_come_by_item_id_from_the_index(client, index):
    answer = client.get("/v1/thumbnails/17")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content == index.thumbnail(17, 96)
    assert Image.open(io.BytesIO(answer.content)).size == (96, 96)  # 28x28, enlarged
    missing = client.get("/v1/thumbnails/1003")  # ids 0..1002
    assert missing.status_code == 404 and missing.json() == {"error": "no item 1003 in the index"}
    for path in ("/v1/thumbnails/..%2Fmanifest.json", "/v1/thumbnails/-1x"):
        assert client.get(path).status_code in (404, 422)


def test_a_thumbnail_whose_file_is_gone_is_a_404_and_fails_no_other_item(model, index):
    from cnnkit.serve.batcher import Batch, Job
    from cnnkit.serve.wire import Operation

    gone = Path(index.record(1001).path)
    kept = gone.read_bytes()
    gone.unlink()
    try:
        with client_for(model) as client:
            answer = client.get("/v1/thumbnails/1001")

        async def one_batch() -> list:  # as the batcher sends them: the ids together
            connection = await model.connect()
            loop = asyncio.get_running_loop()
            jobs = [Job("thumbnail", item, loop.create_future()) for item in (1000, 1001, 17)]
            try:
                return await connection.run_batch(Operation.THUMBNAIL, Batch(jobs))
            finally:
                await connection.close()

        first, missing, dataset_item = asyncio.run(one_batch())
    finally:
        gone.write_bytes(kept)
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": "item 1001: its image is missing or unreadable on the server"}
    assert isinstance(missing, NotFoundError) and str(gone) not in str(missing)
    assert first == index.thumbnail(1000, 96) and dataset_item == index.thumbnail(17, 96)


BAD_SEARCHES = {
    "an unknown class": ("get", {"class": "seven"}, None, 404, "unknown class 'seven'"),
    "no class": ("get", {}, None, 400, "name the class"),
    "top 0": ("get", {"class": "7", "top": "0"}, None, 400, "top must be a whole number"),
    "no image": ("post", {}, b"", 400, "empty request"),
    "a text file": ("post", {}, b"hello", 415, "not an image"),
    "a truncated PNG": ("post", {}, "truncated", 400, "not a readable image"),
}


@pytest.mark.parametrize("case", BAD_SEARCHES)
def test_bad_searches_are_one_json_message_with_their_status(client, digits, case):
    method, params, body, status, fragment = BAD_SEARCHES[case]
    if method == "get":
        answer = client.get("/v1/search", params=params)
    else:
        data = digits[0].png[:200] if body == "truncated" else body
        answer = client.post("/v1/search", params=params, files=form(data) if data else None)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and fragment in answer.json()["error"]


def test_the_model_route_describes_the_index_and_the_token_guards_search(model):
    with client_for(model, token=TOKEN) as client:
        good = {"Authorization": f"Bearer {TOKEN}"}
        described = client.get("/v1/model", headers=good).json()["search"]
        for path in ("/v1/search?class=7", "/v1/thumbnails/1"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers=good).status_code == 200
        schema = client.get("/openapi.json").json()["paths"]
    assert described == {"items": 1003, "collection": "mnist train"}
    assert {"/v1/search", "/v1/thumbnails/{item_id}"} <= set(schema)


def test_every_operation_has_its_route(client):
    from cnnkit.serve.wire import Operation

    schema = client.get("/openapi.json").json()["paths"]
    for operation in Operation:
        assert operation.method.lower() in schema[operation.path], operation


def test_an_index_of_other_weights_refuses_to_start(
    serve_extra, digit_checkpoint, digit_index, tmp_path
):
    from cnnkit.serve.model_process import ModelProcess

    state = torch.load(digit_checkpoint, weights_only=True)
    state["model_state"]["c1.weight"] += 0.01  # another run of the same architecture
    other = tmp_path / "other.pt"
    save_checkpoint({key: value for key, value in state.items() if key != "format_version"}, other)
    with pytest.raises(FingerprintError, match="weights differ"):
        ModelProcess.start(other, "cpu", index=digit_index)
