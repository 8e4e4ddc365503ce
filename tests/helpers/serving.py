"""``cnnkit serve`` as a process on a free loopback port, for the tests of what only a
running server shows (its processes, signals, the page in a browser), and the hostile
uploads that the server's tests send."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.serve.settings import TOKEN_ENV, ServeSettings

CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def claiming_jpeg(width: int, height: int) -> bytes:
    """A real 16x16 JPEG (a few hundred bytes) whose frame header (SOF0) is rewritten to
    claim ``width`` x ``height`` pixels; libjpeg fills in the data that is missing."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (250, 250, 250)).save(buffer, "JPEG", quality=75)
    data = bytearray(buffer.getvalue())
    start = data.find(b"\xff\xc0")  # marker, length (2 bytes), precision (1), height, width
    data[start + 5 : start + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


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


def client_for(model, **settings):
    """A FastAPI test client of the app serving ``model`` (the model process, or a
    stand-in) with ``settings`` as ``ServeSettings`` takes them."""
    from fastapi.testclient import TestClient

    from cnnkit.serve.app import create_app

    return TestClient(create_app(model, ServeSettings(**settings)))


class StandInModel:
    """Stands in for the model process (``serve.model_process.ModelProcess``) where the
    routes alone are tested: what it describes; subclasses say how it answers."""

    # What ServedModel.describe gives that the routes read.
    description = {"model": "stand-in", "dataset": "none", "classes": ["a", "b"],
                   "preparation": "photo"}  # fmt: skip
    max_pixels = 1_000_000
    index = None
    is_alive = True

    async def connect(self):
        return self

    async def run_batch(self, kind, batch):
        raise NotImplementedError

    async def close(self):
        pass
