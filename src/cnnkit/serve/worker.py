"""The model process's loop: ``python -m cnnkit.serve.worker FD CHECKPOINT DEVICE THREADS
[INDEX]``, started by ``model_process.ModelProcess.start`` with its end of a socket pair
as FD.

It loads the run (``model.ServedModel``) and the index when there is one
(``index.ServedIndex``), says it is ready, then answers each ``Compute`` of ``wire``'s
frames with the ``Handler`` of its ``Operation`` until the HTTP process closes its end.
It ignores SIGINT and SIGTERM, so that a drain can still use it (a terminal's Ctrl-C and
a service manager's SIGTERM reach the whole group).

Every item gets its own answer (``answer``): each is prepared on its own (decoded), so
that one item's ``CnnkitError`` is its own 4xx and one item's bug (any other exception)
its own ``ItemFailure``, a 500 for its request alone, with the traceback in the server's
log; then the prepared items go through the model together, and should that fail, one
at a time, so that a bug in one item fails no other. Before each item the loop reads
the ``Withdraw`` frames that have arrived (``Inbox``) and skips the items whose request
has gone.
"""

import gc
import logging
import select
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError
from cnnkit.serve.wire import (
    WITHDRAWN,
    Compute,
    ItemFailure,
    Operation,
    Withdraw,
    frame,
    read_frame,
)

log = logging.getLogger(__name__)
FAILURE = "an internal error on this item; its traceback is in the server's log"


def as_they_are(prepared: list[Any]) -> list[Any]:
    return prepared


@dataclass(frozen=True)
class Handler:
    """How the model process answers the items of one operation: ``each`` item on its
    own (decoding; a ``CnnkitError`` is the item's answer), then the prepared items
    ``together`` (a forward pass), one result each."""

    each: Callable[[Any], Any]
    together: Callable[[list[Any]], list[Any]] = as_they_are


class Inbox:
    """The frames from the HTTP process: the next batch, and between its items the
    withdrawals of those whose request has gone."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.number: int | None = None  # the batch being answered
        self.withdrawn: set[int] = set()  # its positions to skip

    def next_batch(self) -> Compute:
        """The next batch (withdrawals of batches already answered are dropped);
        ``EOFError`` once the HTTP process has closed its end."""
        while not isinstance(message := read_frame(self.sock), Compute):
            pass
        self.number, self.withdrawn = message.number, set()
        return message

    def wanted(self, position: int) -> bool:
        """Whether item ``position`` of the batch is still waited for, after reading the
        withdrawals that have arrived."""
        while select.select([self.sock], [], [], 0)[0]:
            message = read_frame(self.sock)
            if isinstance(message, Withdraw) and message.number == self.number:
                self.withdrawn.add(message.position)
        return position not in self.withdrawn


def failed(operation: Operation, position: int) -> ItemFailure:
    """The answer of an item that raised an unexpected exception (being handled)."""
    log.exception("%s: item %d of its batch failed", operation, position)
    return ItemFailure(FAILURE)


def answer(
    operation: Operation, handler: Handler, items: list[Any], wanted: Callable[[int], bool]
) -> list[Any]:
    """One answer per item: its result, its ``CnnkitError``, an ``ItemFailure``, or
    ``WITHDRAWN`` when its request has gone before the item was reached."""
    results: list[Any] = [WITHDRAWN] * len(items)
    prepared: list[tuple[int, Any]] = []
    for position, item in enumerate(items):
        if not wanted(position):
            continue
        try:
            prepared.append((position, handler.each(item)))
        except CnnkitError as error:
            results[position] = error
        except Exception:
            results[position] = failed(operation, position)
    prepared = [(position, value) for position, value in prepared if wanted(position)]
    if not prepared:
        return results
    try:
        together = handler.together([value for _, value in prepared])
        if len(together) != len(prepared):
            raise RuntimeError(f"{len(together)} answers to {len(prepared)} items")
    except Exception:  # find the item that fails: each alone
        together = []
        for position, value in prepared:
            try:
                (result,) = handler.together([value])
            except CnnkitError as error:  # the item's own error, as when prepared
                result = error
            except Exception:
                result = failed(operation, position)
            together.append(result)
    for (position, _), result in zip(prepared, together, strict=True):
        results[position] = result
    return results


def freeze_imports() -> None:
    """Exempt what start-up made (torch's modules: 200,000 objects) from the garbage
    collector: a full collection of them was the tail of the latency."""
    gc.collect()
    gc.freeze()


def serve(sock: socket.socket, handlers: dict[Operation, Handler]) -> None:
    """Answer batches on ``sock`` until the HTTP process closes its end."""
    inbox = Inbox(sock)
    while True:
        try:
            batch = inbox.next_batch()
        except EOFError:
            return
        try:
            results = answer(batch.operation, handlers[batch.operation], batch.items, inbox.wanted)
            data = frame(results)
        except Exception:  # a bug outside any one item: the batch fails, the process lives
            log.exception("%s: a batch of %d items failed", batch.operation, len(batch.items))
            data = frame([ItemFailure(FAILURE)] * len(batch.items))
        sock.sendall(data)


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
    serve(sock, handlers)


def load(
    checkpoint: Path, device: str, threads: int, index: list[str]
) -> tuple[dict[Operation, Handler], dict[str, Any]]:
    """The child's handlers by operation and its ready message: the run, warmed up, and
    the index when there is one (``index``: its path, or nothing). Imported here, so
    that the HTTP process, which imports ``freeze_imports``, imports no torch."""
    import torch

    from cnnkit.data.image_files import MAX_PIXELS
    from cnnkit.runs import load_run
    from cnnkit.serve.model import ServedModel
    from cnnkit.serve.reading import ServedReader

    torch.set_num_threads(threads)
    served = ServedModel(load_run(checkpoint, device))
    served.warm_up()
    handlers = {
        Operation.PREDICT: Handler(served.read, served.probabilities),
        Operation.EXPLAIN: Handler(served.read_explained, served.explanations),
    }
    reader = ServedReader(served.run)
    handlers[Operation.READ] = Handler(reader.decode, reader.read)
    ready = {"description": served.describe(), "max_pixels": MAX_PIXELS, "index": None}
    if index:
        from cnnkit.serve.index import ServedIndex

        searched = ServedIndex.open(Path(index[0]), checkpoint, device)
        handlers |= {
            Operation.SEARCH: Handler(searched.search),
            Operation.CLASS: Handler(searched.by_class),
            Operation.THUMBNAIL: Handler(searched.thumbnail),
        }
        ready["index"] = searched.describe()
    return handlers, ready


if __name__ == "__main__":
    main(sys.argv[1:])
