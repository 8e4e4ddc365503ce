"""Dynamic micro-batching: concurrent requests share one forward pass, off the event loop.

Requests (``submit``) wait in one bounded queue; one worker thread takes the first
waiting job, gathers the jobs of the same kind behind it (up to ``max_batch``,
waiting up to ``max_wait_s`` for more) and runs them through the kind's handler in
one call. The model thus runs in one thread, never on the event loop, and never in
two threads at once. A full queue is a ``ServerBusyError`` at once (503: a client
retries, memory stays bounded) and a job that gets no answer within ``timeout_s`` a
``ServerTimeoutError`` (504). ``close`` lets the worker finish every queued job.
"""

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from cnnkit.errors import ServerBusyError, ServerTimeoutError

# A handler takes the items of one batch and returns their results, in order; a result
# that is an exception is raised in its own request only.
Handler = Callable[[list[Any]], Sequence[Any]]
# Called after every batch with its kind, size and seconds in the handler.
BatchObserver = Callable[[str, int, float], None]


@dataclass
class Job:
    kind: str
    item: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class MicroBatcher:
    handlers: dict[str, Handler]
    max_batch: int = 32
    max_wait_s: float = 0.002
    max_queue: int = 256
    timeout_s: float = 10.0
    observe: BatchObserver | None = None
    _pending: deque[Job] = field(default_factory=deque, init=False)
    _ready: threading.Condition = field(default_factory=threading.Condition, init=False)
    _closed: bool = field(default=False, init=False)
    _worker: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="cnnkit-model", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Refuse new jobs, let the worker answer the queued ones, and wait for it."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join()

    @property
    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch it is running)."""
        return len(self._pending)

    @property
    def is_running(self) -> bool:
        return self._worker is not None and self._worker.is_alive() and not self._closed

    def check_room(self) -> None:
        """A ``ServerBusyError`` when a job submitted now would be refused, so that a
        request can be turned away before its body is read."""
        if self._closed:
            raise ServerBusyError("the server is shutting down")
        if len(self._pending) >= self.max_queue:
            raise ServerBusyError(
                f"the server is busy ({self.max_queue} images waiting for the model); retry"
            )

    async def submit(self, kind: str, item: Any) -> Any:
        """The handler's result for ``item``, computed in a batch with others."""
        loop = asyncio.get_running_loop()
        job = Job(kind, item, loop.create_future(), loop)
        with self._ready:
            self.check_room()
            self._pending.append(job)
            self._ready.notify()
        try:
            return await asyncio.wait_for(job.future, self.timeout_s)
        except asyncio.TimeoutError:  # wait_for cancelled the future: the worker skips it
            raise ServerTimeoutError(
                f"no answer from the model within {self.timeout_s:g} s; the server is overloaded"
            ) from None

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.perf_counter()
            try:
                results = self.handlers[batch[0].kind]([job.item for job in batch])
                error = None
            except Exception as failure:  # every job of the batch gets it (a 500)
                results, error = [None] * len(batch), failure
            seconds = time.perf_counter() - started
            for job, result in zip(batch, results, strict=True):
                with suppress(RuntimeError):  # its event loop has closed: nobody waits
                    job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            if self.observe is not None:
                self.observe(batch[0].kind, len(batch), seconds)

    def _next_batch(self) -> list[Job] | None:
        """The next jobs of one kind, oldest first; None once closed and drained."""
        with self._ready:
            batch: list[Job] = []
            while not batch:
                while not self._pending:
                    if self._closed:
                        return None
                    self._ready.wait()
                job = self._pending.popleft()
                if not job.future.cancelled():  # its request timed out or went away
                    batch.append(job)
            gather_until = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                if self._pending:
                    if self._pending[0].kind != batch[0].kind:
                        break
                    job = self._pending.popleft()
                    if not job.future.cancelled():
                        batch.append(job)
                    continue
                remaining = gather_until - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._ready.wait(remaining)
            return batch


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Runs on the event loop: answer ``future`` unless its request stopped waiting."""
    if future.done():
        return
    if error is None and isinstance(result, BaseException):
        error = result
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
