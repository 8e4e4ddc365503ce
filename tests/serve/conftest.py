"""Fixtures of the server's tests: a real LeNet-5 run on MNIST, an untrained CIFAR-shaped
run, real MNIST test digits as PNG files, and ``cnnkit serve`` as a subprocess."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.config import Recipe, TrainConfig
from cnnkit.models.fitting import build_for_images
from cnnkit.runs import RunRecord, save_checkpoint
from cnnkit.serve.settings import TOKEN_ENV
from tests.conftest import require_module
from tests.real_images import real_image_tree  # noqa: F401

CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@pytest.fixture(scope="session")
def serve_extra():
    """FastAPI and its test client: the [serve] extra (a failure under CI)."""
    require_module("fastapi", "serve")
    require_module("uvicorn", "serve")
    require_module("python_multipart", "serve")


@pytest.fixture(scope="session")
def digit_checkpoint(tmp_path_factory) -> Path:
    """LeNet-5 trained for one epoch on 6,000 real MNIST digits (about 95% right)."""
    from cnnkit.train.fit import fit  # tests may train; the server never imports it

    out = tmp_path_factory.mktemp("lenet5")
    config = TrainConfig(
        recipe=Recipe(epochs=1, batch_size=64, lr=0.01),
        out=out,
        train_limit=6000,
        test_limit=500,
        progress=False,
    )
    return fit(config).checkpoint


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A ``cnnkit serve`` subprocess on loopback."""

    process: subprocess.Popen
    url: str

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def refuses_connections(self) -> bool:
        host, port = self.url.removeprefix("http://").split(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and stderr."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stderr


@contextmanager
def serving(checkpoint: Path, *options: str):
    """``cnnkit serve CHECKPOINT`` on a free loopback port, ready (its /readyz is 200)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "serve", str(checkpoint), "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={key: value for key, value in os.environ.items() if key != TOKEN_ENV},
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"cnnkit serve exited: {process.communicate()[1]}")
            try:
                if served.get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("cnnkit serve did not get ready in 120 s")
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
