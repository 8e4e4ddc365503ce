"""``POST /v1/read`` through FastAPI's test client, with the real model process behind it
on the session's LeNet-5: a number written with real MNIST test digits apart from each
other is read exactly, with its boxes in the image's pixels and every class's probability
at each position; a blank image is an empty text with its reason; a model trained on
photos answers 404 with why."""

import io

import numpy as np
import pytest
from PIL import Image

from cnnkit.read.strings import Distortions, Spacing, write_digits
from tests.helpers.serving import StandInModel, client_for

CALM = Distortions(slant=0.0, stroke=0.0, scale=(1.0, 1.0), drift=1)  # still, white paper


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(serve_extra, digit_checkpoint):
    from cnnkit.serve.model_process import ModelProcess

    process = ModelProcess.start(digit_checkpoint, "cpu")
    with client_for(process) as client:
        yield client
    process.close()


class PhotoModel(StandInModel):
    """Stands in for the model process of a model trained on photos: never asked."""

    description = {"model": "resnet8", "dataset": "folder:cifar10", "classes": ["cat", "dog"],
                   "preparation": "photo"}  # fmt: skip

    async def run_batch(self, kind, batch):
        raise AssertionError("a photo model was asked to read")


def test_a_number_written_with_real_test_digits_is_read_with_its_boxes(client, mnist):
    _, test = mnist
    written = write_digits(test, [0, 1, 2], Spacing.GAP, np.random.default_rng(0), CALM)
    assert written.text == "721"  # the first three test digits
    wide = np.kron(written.image, np.ones((3, 3), np.uint8))  # as a canvas three times larger
    answer = client.post("/v1/read", files=[("image", ("number.png", png(wide), "image/png"))])
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["text"] == "721" and "reason" not in found
    assert (found["width"], found["height"]) == (wide.shape[1], wide.shape[0])
    assert 0 < found["confidence"] <= 1
    for digit, box, label in zip(found["digits"], written.boxes, "721", strict=True):
        assert digit["class"] == label
        assert digit["box"] == pytest.approx([3 * v for v in box], abs=6)  # the image's pixels
        probabilities = digit["probabilities"]
        assert list(probabilities) == [str(k) for k in range(10)]  # every class, in order
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-4)
        assert max(probabilities, key=probabilities.get) == label
        assert probabilities[label] == pytest.approx(digit["probability"], abs=0.05)
    assert found["confidence"] == pytest.approx(
        np.prod([d["probability"] for d in found["digits"]]), rel=1e-4
    )


def test_a_blank_image_is_an_empty_text_with_its_reason(client):
    blank = png(np.zeros((120, 600), np.uint8))
    answer = client.post("/v1/read", content=blank, headers={"Content-Type": "image/png"})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["text"], found["digits"]) == ("", [])
    assert "no ink" in found["reason"]


def test_an_upload_that_is_no_image_is_one_json_message(client):
    answer = client.post("/v1/read", content=b"not an image", headers={"Content-Type": "image/png"})
    assert answer.status_code == 415 and "not an image" in answer.json()["error"]


def test_a_photo_model_answers_404_with_why():
    with client_for(PhotoModel()) as client:
        answer = client.post("/v1/read", content=png(np.zeros((28, 28), np.uint8)))
    assert answer.status_code == 404
    assert "trained on handwritten digits" in answer.json()["error"]
    assert "folder:cifar10" in answer.json()["error"]
