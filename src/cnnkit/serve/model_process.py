"""The HTTP process's handle on the model process: start it, send it batches, close it.

Why a process: the event loop, the uploads' decoding (0.3 to 0.5 ms a digit, in numpy
and Pillow) and eager PyTorch all want the GIL, and PyTorch lets go of it around every
operation: beside a busy event loop, a LeNet-5 forward pass in a thread ran over 100
times slower than alone (docs/serve.md). In its own process the model and the decoder
have a core and a GIL of their own; the HTTP process only parses requests and checks
limits.

``ModelProcess.start`` runs ``python -m cnnkit.serve.worker FD CHECKPOINT DEVICE
THREADS [INDEX]`` (``worker``) with one end of a socket pair as FD, and the two talk in
``wire``'s frames (``Compute`` a batch, ``Withdraw`` an item of it). The child ignores
SIGINT and SIGTERM, so that a drain can still use it (a terminal's Ctrl-C and a service
manager's SIGTERM reach the whole group), and exits when the HTTP process closes its end.
"""

import asyncio
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError, ServerBusyError
from cnnkit.serve.batcher import Batch
from cnnkit.serve.wire import Compute, Operation, Withdraw, frame, read_frame, receive_frame

STOP_WAIT_S = 10.0  # how long a closing server waits for the model process to exit


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
    batches: int = 0  # sent so far: the next batch's number

    async def run_batch(self, operation: Operation, batch: Batch) -> list[Any]:
        """The child's answers for one batch, awaited while the event loop serves other
        requests; an item whose request goes away meanwhile is withdrawn (the child
        skips it if it has not started it). Called by the batcher's one task only."""
        self.batches += 1
        number = self.batches
        try:
            self.writer.write(frame(Compute(number, operation, batch.items)))
            batch.when_withdrawn(partial(self.withdraw, number))
            return await receive_frame(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise ServerBusyError(
                f"the model process has exited (status {self.model.process.poll()}); "
                "restart the server"
            ) from None

    def withdraw(self, number: int, position: int) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(Withdraw(number, position)))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
        self.model.connected = False
