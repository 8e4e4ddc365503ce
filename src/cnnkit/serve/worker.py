"""The model process: decoding and the model, beside the HTTP process, both sides.

Why a process: the event loop, uploads' decoding (about 0.5 ms a digit, in numpy and
Pillow) and eager PyTorch all want the GIL, and PyTorch lets go of it around every
operation: beside a busy event loop a LeNet-5 forward pass in a thread ran 100 times
slower than alone, and decoding on the loop capped the server near 700 requests/s
(docs/serve.md). In its own process the model and the decoder have a core and a GIL
of their own; the HTTP process only parses requests and checks limits.

``ModelProcess.start`` runs ``python -m cnnkit.serve.worker FD CHECKPOINT DEVICE
THREADS`` with one end of a socket pair as FD. Messages are pickled
``multiprocessing.connection`` frames, between two processes of this package only: the
child first sends ``("ready", description)`` or ``("error", CnnkitError)``; then for each
batch ``(kind, uploads)`` it answers a list with one result or ``ImageError`` per
upload, or one exception for the whole batch (a bug). The child ignores SIGINT and
SIGTERM, so that a drain can still use it (a terminal's Ctrl-C and a service manager's
SIGTERM reach the whole group), and exits when the HTTP process closes its end.
"""

import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError, ServerBusyError

STOP_WAIT_S = 10.0  # how long a closing server waits for the model process to exit


@dataclass
class ModelProcess:
    """The HTTP process's handle on the model process."""

    process: subprocess.Popen
    connection: Connection
    description: dict[str, Any]  # ServedModel.describe() of the child's run
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, checkpoint: Path, device: str = "auto", threads: int = 1) -> "ModelProcess":
        """The model process for ``checkpoint``, once its model answered a warm-up
        image; the child's ``CnnkitError`` (a bad checkpoint) raised here."""
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "cnnkit.serve.worker", str(theirs.fileno())]
        process = subprocess.Popen(
            [*command, str(checkpoint), device, str(threads)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        connection = Connection(ours.detach())
        try:
            status, payload = connection.recv()
        except EOFError:
            process.wait()
            raise CnnkitError(
                f"{checkpoint}: the model process exited with status {process.returncode} "
                "before it was ready"
            ) from None
        if status == "error":
            process.wait()
            raise payload
        return cls(process, connection, payload)

    def run_batch(self, kind: str, items: list[Any]) -> list[Any]:
        """The child's results for one batch (called by the batcher's one thread)."""
        with self._lock:  # one batch at a time on the connection, whoever calls
            try:
                self.connection.send((kind, items))
                results = self.connection.recv()
            except (EOFError, OSError):
                raise ServerBusyError(
                    f"the model process has exited (status {self.process.poll()}); "
                    "restart the server"
                ) from None
        if isinstance(results, Exception):
            raise results
        return results

    @property
    def is_alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Close our end (the child exits on it) and wait for the child."""
        self.connection.close()
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(argv: list[str]) -> None:
    """The child: load the run, say so, then answer batches until the parent closes."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    fd, checkpoint, device, threads = argv
    connection = Connection(int(fd))
    try:
        import torch

        from cnnkit.runs import load_run
        from cnnkit.serve.model import ServedModel

        torch.set_num_threads(int(threads))
        served = ServedModel(load_run(Path(checkpoint), device))
        served.warm_up()
        connection.send(("ready", served.describe()))
    except CnnkitError as error:
        connection.send(("error", error))
        return
    handlers = {"predict": served.predict, "explain": served.explain}
    while True:
        try:
            kind, items = connection.recv()
        except EOFError:
            return
        try:
            results: Any = handlers[kind](items)
        except Exception as error:  # a bug: this batch gets a 500, the server goes on
            results = RuntimeError(f"{type(error).__name__}: {error}")
        connection.send(results)


if __name__ == "__main__":
    main(sys.argv[1:])
