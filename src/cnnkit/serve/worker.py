"""The model process's loop: ``python -m cnnkit.serve.worker FD CHECKPOINT DEVICE THREADS
[INDEX]``, started by ``model_process.ModelProcess.start`` with its end of a socket pair
as FD.

It loads the run (``model.ServedModel``) and the index when there is one
(``index.ServedIndex``), says it is ready, then answers each batch of ``wire``'s frames
with the handler of its ``Operation`` until the HTTP process closes its end. It ignores
SIGINT and SIGTERM, so that a drain can still use it (a terminal's Ctrl-C and a service
manager's SIGTERM reach the whole group).
"""

import gc
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError
from cnnkit.serve.wire import Operation, frame, read_frame

# What the child computes for a batch: its items in, one result or CnnkitError per item out.
BatchHandler = Callable[[list], list]


def freeze_imports() -> None:
    """Exempt what start-up made (torch's modules: 200,000 objects) from the garbage
    collector: a full collection of them was the tail of the latency."""
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
            operation, items = read_frame(sock)
        except EOFError:
            return
        try:
            results: Any = handlers[operation](items)
        except Exception as error:  # a bug: this batch gets a 500, the server goes on
            results = RuntimeError(f"{type(error).__name__}: {error}")
        sock.sendall(frame(results))


def load(
    checkpoint: Path, device: str, threads: int, index: list[str]
) -> tuple[dict[Operation, BatchHandler], dict[str, Any]]:
    """The child's handlers by operation and its ready message: the run, warmed up, and
    the index when there is one (``index``: its path, or nothing). Imported here, so
    that the HTTP process, which imports ``freeze_imports``, imports no torch."""
    import torch

    from cnnkit.data.image_files import MAX_PIXELS
    from cnnkit.runs import load_run
    from cnnkit.serve.model import ServedModel

    torch.set_num_threads(threads)
    served = ServedModel(load_run(checkpoint, device))
    served.warm_up()
    handlers: dict[Operation, BatchHandler] = {
        Operation.PREDICT: served.predict,
        Operation.EXPLAIN: served.explain,
    }
    ready = {"description": served.describe(), "max_pixels": MAX_PIXELS, "index": None}
    if index:
        from cnnkit.serve.index import ServedIndex

        searched = ServedIndex.open(Path(index[0]), checkpoint, device)
        handlers |= {
            Operation.SEARCH: searched.search,
            Operation.CLASS: searched.by_class,
            Operation.THUMBNAIL: searched.thumbnails,
        }
        ready["index"] = searched.describe()
    return handlers, ready


if __name__ == "__main__":
    main(sys.argv[1:])
