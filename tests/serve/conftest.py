"""Fixtures of the server's tests: the session's LeNet-5 run on MNIST, an untrained CIFAR-shaped
run, real MNIST test digits as PNG files, and ``cnnkit serve`` as a subprocess."""

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.models.fitting import build_for_images
from cnnkit.runs import RunRecord, save_checkpoint
from tests.helpers import require_module
from tests.helpers.serving import CIFAR_CLASSES


@pytest.fixture(scope="session")
def serve_extra():
    """FastAPI and its test client: the [serve] extra (a failure under CI)."""
    require_module("fastapi", "serve")
    require_module("uvicorn", "serve")
    require_module("python_multipart", "serve")


@pytest.fixture
def load_handlers():
    """``worker.load`` in the test process as the model process calls it, with the
    server's torch threads (``ServeSettings.threads``: its warm-up fits the novelty
    detector, several times slower with two threads on a shared 2-core machine), and
    the test process's own thread count restored after."""
    from cnnkit.serve.settings import ServeSettings
    from cnnkit.serve.worker import load

    threads = torch.get_num_threads()
    yield lambda checkpoint, index=(): load(checkpoint, "cpu", ServeSettings.threads, list(index))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digit_checkpoint(digit_run) -> Path:
    """The session's digit run: LeNet-5 trained for an epoch on real MNIST."""
    return digit_run


@pytest.fixture(scope="session")
def digit_index(tmp_path_factory, digit_checkpoint) -> Path:
    """An exact search index of the first 1,000 MNIST training digits, built with the
    served LeNet-5 (search's own library, as ``cnnkit index build`` calls it)."""
    from cnnkit.search import BuildSettings, build_index, dataset_collection

    out = tmp_path_factory.mktemp("index") / "mnist"
    settings = BuildSettings(backend="exact", device="cpu")
    build_index(
        digit_checkpoint, out, lambda run: dataset_collection("mnist", "train", run, 1000), settings
    )
    return out


@pytest.fixture(scope="session")
def photo_checkpoint(tmp_path_factory) -> Path:
    """An untrained ResNet-8 run as if trained on a folder of CIFAR-10's 32x32 photos."""
    torch.manual_seed(0)
    network = build_for_images("resnet8", (3, 32, 32), 10)
    record = RunRecord(
        model="resnet8",
        num_classes=10,
        in_channels=3,
        input_size=network.input_size[1:],
        image_size=(32, 32),
        classes=CIFAR_CLASSES,
        mean=(0.49, 0.48, 0.45),
        std=(0.25, 0.24, 0.26),
        dataset="folder:cifar10",
        preparation="photo",
    )
    path = tmp_path_factory.mktemp("resnet8") / "checkpoint.pt"
    state = {"record": record.to_dict(), "model_state": network.state_dict(), "epoch": 0}
    save_checkpoint(state, path)
    return path


@dataclass(frozen=True)
class Digit:
    label: int
    png: bytes
    path: Path


@pytest.fixture(scope="session")
def digits(mnist, tmp_path_factory) -> list[Digit]:
    """The first 100 real MNIST test digits, each a PNG file as a scan would be."""
    _, test = mnist
    folder = tmp_path_factory.mktemp("digits")
    result = []
    for index in range(100):
        buffer = io.BytesIO()
        Image.fromarray(test.images[index, 0].numpy()).save(buffer, format="PNG")
        path = folder / f"{index:03d}.png"
        path.write_bytes(buffer.getvalue())
        result.append(Digit(int(test.labels[index]), buffer.getvalue(), path))
    return result
