"""The model process: decoding and the model, beside the HTTP process, both sides.

Why a process: the event loop, the uploads' decoding (0.3 to 0.5 ms a digit, in numpy
and Pillow) and eager PyTorch all want the GIL, and PyTorch lets go of it around every
operation: beside a busy event loop, a LeNet-5 forward pass in a thread ran over 100
times slower than alone (docs/serve.md). In its own process the model and the decoder
have a core and a GIL of their own; the HTTP process only parses requests and checks
limits.

``ModelProcess.start`` runs ``python -m cnnkit.serve.worker FD CHECKPOINT DEVICE
THREADS [INDEX]`` with one end of a socket pair as FD. Each message is a frame: its
length (8 bytes, big-endian) and a pickle, between two processes of this package only.
The child first sends ``("ready", {"description": ..., "max_pixels": ..., "index":
...})`` or ``("error", CnnkitError)``; then it answers each batch ``(kind, items)``
(``KINDS``) with a list of one result or ``CnnkitError`` per item, or with one exception
for the whole batch (a bug). The
child ignores SIGINT and SIGTERM, so that a drain can still use it (a terminal's Ctrl-C
and a service manager's SIGTERM reach the whole group), and exits when the HTTP process
closes its end.
"""

import asyncio
import gc
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError, ServerBusyError

STOP_WAIT_S = 10.0  # how long a closing server waits for the model process to exit
LENGTH_BYTES = 8
# What the child computes, by the kind of a batch: ServedModel's, and ServedIndex's
# when it serves an index (``load``).
MODEL_KINDS = ("predict", "explain")
INDEX_KINDS = ("search", "class", "thumbnail")


@dataclass(frozen=True)
class Explanation:
    """The child's answer to explain for one image (defined here, without torch, for
    the HTTP process to unpickle): the image as the network received it and its first
    convolution's feature maps."""

    input_png: bytes  # uint8 at the model's input size, after the run's preparation
    layer: str | None  # the first convolution's name in the model; None when it has none
    map_pngs: list[bytes]  # one grayscale PNG per feature map, each scaled to 0-255
    probs: np.ndarray  # (K,) class probabilities


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(LENGTH_BYTES, "big") + data


def read_frame(sock: socket.socket) -> Any:
    """The next message on a blocking socket; ``EOFError`` once the other end closed."""

    def exactly(count: int) -> bytes:
        chunks = []
        while count:
            chunk = sock.recv(min(count, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    return pickle.loads(exactly(int.from_bytes(exactly(LENGTH_BYTES), "big")))


@dataclass
class ModelProcess:
    """The HTTP process's handle on the model process."""

    process: subprocess.Popen
    sock: socket.socket
    description: dict[str, Any]  # ServedModel.describe() of the child's run
    # The decoder's pixel limit (data.image_files.MAX_PIXELS), which the HTTP process
    # checks headers against: it imports no torch, so the child tells it.
    max_pixels: int
    index: dict[str, Any] | None  # ServedIndex.describe(); None when serving no index
    connected: bool = False  # an app's event loop has its end open

    @classmethod
    def start(
        cls, checkpoint: Path, device: str = "auto", threads: int = 1, index: Path | None = None
    ) -> "ModelProcess":
        """The model process for ``checkpoint`` (and the search ``index``), once its
        model answered a warm-up image; the child's ``CnnkitError`` (a bad checkpoint,
        an index of other weights) raised here."""
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "cnnkit.serve.worker", str(theirs.fileno())]
        process = subprocess.Popen(
            [*command, str(checkpoint), device, str(threads), *([str(index)] if index else [])],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        try:
            status, payload = read_frame(ours)
        except EOFError:
            process.wait()
            raise CnnkitError(
                f"{checkpoint}: the model process exited with status {process.returncode} "
                "before it was ready"
            ) from None
        if status == "error":
            process.wait()
            raise payload
        return cls(process, ours, **payload)

    async def connect(self) -> "ModelConnection":
        """Our end on the running event loop, for one app at a time: a duplicate of the
        socket, so that closing it leaves the socket to the next app (as in tests)."""
        if self.connected:
            raise RuntimeError("the model process already serves an app")
        reader, writer = await asyncio.open_connection(sock=self.sock.dup())
        self.connected = True
        return ModelConnection(self, reader, writer)

    @property
    def is_alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Close our end (the child exits on it) and wait for the child."""
        self.sock.close()
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class ModelConnection:
    """The model process as an app's event loop talks to it, one batch at a time."""

    model: ModelProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def run_batch(self, kind: str, items: list[Any]) -> list[Any]:
        """The child's results for one batch, awaited while the event loop serves other
        requests. Called by the batcher's one task only."""
        try:
            self.writer.write(frame((kind, items)))
            length = int.from_bytes(await self.reader.readexactly(LENGTH_BYTES), "big")
            results = pickle.loads(await self.reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            raise ServerBusyError(
                f"the model process has exited (status {self.model.process.poll()}); "
                "restart the server"
            ) from None
        if isinstance(results, Exception):
            raise results
        return results

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
        self.model.connected = False


def freeze_imports() -> None:
    """Exempt what start-up made (torch's modules: 200,000 objects) from the garbage
    collector: a full collection of them took 200 ms here, the tail of the latency."""
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> None:
    """The child: load the run, say so, then answer batches until the parent closes."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    fd, checkpoint, device, threads, *index = argv
    sock = socket.socket(fileno=int(fd))
    try:
        handlers, ready = load(Path(checkpoint), device, int(threads), index)
        freeze_imports()
        sock.sendall(frame(("ready", ready)))
    except CnnkitError as error:
        sock.sendall(frame(("error", error)))
        return
    while True:
        try:
            kind, items = read_frame(sock)
        except EOFError:
            return
        try:
            results: Any = handlers[kind](items)
        except Exception as error:  # a bug: this batch gets a 500, the server goes on
            results = RuntimeError(f"{type(error).__name__}: {error}")
        sock.sendall(frame(results))


def load(
    checkpoint: Path, device: str, threads: int, index: list[str]
) -> tuple[dict[str, Callable[[list], list]], dict[str, Any]]:
    """The child's handlers by kind and its ready message: the run, warmed up, and the
    index when there is one (``index``: its path, or nothing)."""
    import torch

    from cnnkit.data.image_files import MAX_PIXELS
    from cnnkit.runs import load_run
    from cnnkit.serve.model import ServedModel

    torch.set_num_threads(threads)
    served = ServedModel(load_run(checkpoint, device))
    served.warm_up()
    handlers: dict[str, Callable[[list], list]] = {
        "predict": served.predict,
        "explain": served.explain,
    }
    ready = {"description": served.describe(), "max_pixels": MAX_PIXELS, "index": None}
    if index:
        from cnnkit.serve.index import ServedIndex

        searched = ServedIndex.open(Path(index[0]), checkpoint, device)
        handlers |= {
            "search": searched.search,
            "class": searched.by_class,
            "thumbnail": searched.thumbnails,
        }
        ready["index"] = searched.describe()
    return handlers, ready


if __name__ == "__main__":
    main(sys.argv[1:])
