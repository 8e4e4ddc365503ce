"""Dynamic micro-batching: concurrent requests share one forward pass.

Requests (``submit``) wait in one bounded queue; one asyncio task takes the oldest
waiting job, gathers the jobs of the same kind behind it (up to ``max_batch``, waiting
up to ``max_wait_s`` for more) and awaits the kind's handler on all of them at once:
for the server, one round trip to the model process, which decodes and classifies the
batch while the event loop goes on reading requests. A full queue is a
``ServerBusyError`` at once (503: a client retries, memory stays bounded), a job with no
answer within ``timeout_s`` a ``ServerTimeoutError`` (504); ``close`` answers every
queued job first.

A batch is also held to a budget of claimed pixels (``max_batch_pixels``; each job's
``pixels``, what its image's header claims): it always takes its first job, and closes
before a job that would exceed the budget, so that large images are decoded in batches
of their own rather than in front of every small one.

Work whose request has gone (timed out, or its client disconnected: ``submit_many``'s
``gone``) is not computed: a queued job is dropped when the task reaches it, and a job
already handed to the handler is withdrawn (``Batch.when_withdrawn``): the server's
handler tells the model process, which skips the item if it has not started it and
answers ``WITHDRAWN``. ``dropped`` counts both, by kind and stage, for ``/metrics``.

A request's items are queued in the same step of the event loop as the room for them
is checked, all or none (``submit_many``). Queued from tasks of their own (as
``asyncio.gather`` of one coroutine per item did), every request read in one pass of
the loop passed the check before any of them was queued: under overload most requests
were then parsed in full before their 503, and the 503s cost as much as predictions
(docs/serve.md).

Why a task and not a thread: the model computes in its own process, so the batcher
only waits; a waiting thread would have to take the GIL back from the busy event loop
each time it woke, which Python grants every 5 ms (``sys.getswitchinterval``).
"""

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cnnkit.errors import ServerBusyError, ServerTimeoutError
from cnnkit.serve.settings import ServeSettings
from cnnkit.serve.wire import WITHDRAWN


@dataclass
class Job:
    kind: str
    item: Any
    future: asyncio.Future
    pixels: int = 0  # what its image's header claims; 0 for an item without an upload


@dataclass
class Batch:
    """The jobs of one kind that a handler answers together."""

    jobs: list[Job]

    @property
    def items(self) -> list[Any]:
        return [job.item for job in self.jobs]

    def when_withdrawn(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(position)`` when the request of the job at ``position``
        stops waiting before the batch is answered."""

        def on_done(position: int, future: asyncio.Future) -> None:
            if future.cancelled():
                callback(position)

        for position, job in enumerate(self.jobs):
            job.future.add_done_callback(partial(on_done, position))


class ClientGone(Exception):
    """The request's client disconnected before its answer was ready."""


# A handler takes one batch and returns its items' results, in order; a result that is
# an exception is raised in its own request only, and ``WITHDRAWN`` means that the item
# was not computed because its request had gone.
Handler = Callable[[Batch], Awaitable[Sequence[Any]]]
# Called after every batch with its kind, size and seconds in the handler.
BatchObserver = Callable[[str, int, float], None]


@dataclass
class MicroBatcher:
    handlers: dict[str, Handler]
    max_batch: int = ServeSettings.max_batch
    max_wait_s: float = ServeSettings.max_wait_ms / 1000
    max_queue: int = ServeSettings.max_queue
    timeout_s: float = ServeSettings.timeout_s
    max_batch_pixels: int = ServeSettings.max_batch_pixels
    observe: BatchObserver | None = None
    # Items not computed because their request had gone, by (kind, stage): "queue" for
    # those dropped before a batch took them, "model" for those withdrawn from a batch.
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter, init=False)
    _pending: deque[Job] = field(default_factory=deque, init=False)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closed: bool = field(default=False, init=False)
    _task: asyncio.Task | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        """Refuse new jobs and wait until every queued one is answered."""
        self._closed = True
        self._arrived.set()
        if self._task is not None:
            await self._task

    @property
    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch it is running)."""
        return len(self._pending)

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closed

    def refusal(self, count: int = 1) -> str | None:
        """Why ``count`` more items would be refused now, or None. A request of more
        images than the queue holds waits for an empty queue rather than forever."""
        if self._closed:
            return "the server is shutting down"
        if len(self._pending) + count > max(self.max_queue, count):
            return f"the server is busy ({self.max_queue} images waiting for the model); retry"
        return None

    def check_room(self, count: int = 1) -> None:
        """A ``ServerBusyError`` when ``count`` items submitted now would be refused."""
        if (reason := self.refusal(count)) is not None:
            raise ServerBusyError(reason)

    async def submit(self, kind: str, item: Any) -> Any:
        """The handler's result for ``item``, computed in a batch with others."""
        (result,) = await self.submit_many(kind, [item])
        return result

    async def submit_many(
        self,
        kind: str,
        items: list[Any],
        pixels: Sequence[int] | None = None,
        gone: Awaitable[Any] | None = None,
    ) -> list[Any]:
        """The handler's results for ``items`` (whose images claim ``pixels``), queued
        together (or refused together) before this coroutine first waits; the error of
        the item that fails first is raised. ``gone`` completes if the client disconnects: then a
        ``ClientGone``, and the items are dropped or withdrawn, as on a timeout."""
        self.check_room(len(items))
        loop = asyncio.get_running_loop()
        claims = pixels if pixels is not None else [0] * len(items)
        jobs = [
            Job(kind, item, loop.create_future(), claim)
            for item, claim in zip(items, claims, strict=True)
        ]
        self._pending.extend(jobs)
        self._arrived.set()
        futures = [job.future for job in jobs]
        answered = asyncio.gather(*futures)
        answered.add_done_callback(retrieved)
        watcher = None if gone is None else asyncio.ensure_future(gone)
        try:
            watched = {answered} if watcher is None else {answered, watcher}
            await asyncio.wait(watched, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:  # answered, failed, timed out or gone: the rest is dropped or withdrawn
            for future in futures:
                future.cancel()
            if watcher is not None:
                watcher.cancel()
        if answered.done() and not answered.cancelled():
            return answered.result()  # the first item's error, if one failed
        if watcher is not None and watcher.done() and not watcher.cancelled():
            raise ClientGone("the client disconnected before its answer was ready")
        raise ServerTimeoutError(
            f"no answer from the model within {self.timeout_s:g} s; the server is overloaded"
        )

    async def _work(self) -> None:
        while (batch := await self._next_batch()) is not None:
            kind = batch[0].kind
            started = time.perf_counter()
            try:
                results = await self.handlers[kind](Batch(batch))
                error = None
            except Exception as failure:  # every job of the batch gets it (a 500 or 503)
                results, error = [None] * len(batch), failure
            for job, result in zip(batch, results, strict=True):
                if result is WITHDRAWN:
                    self.dropped[kind, "model"] += 1
                settle(job.future, result, error)
            if self.observe is not None:
                self.observe(kind, len(batch), time.perf_counter() - started)

    def _take(self) -> Job | None:
        """The oldest queued job, or None (counted) when its request has gone."""
        job = self._pending.popleft()
        if job.future.done():  # its request timed out, failed or went away
            self.dropped[job.kind, "queue"] += 1
            return None
        return job

    async def _next_batch(self) -> list[Job] | None:
        """The next jobs of one kind, oldest first, within the batch's size and pixel
        budget; None once closed and drained."""
        batch: list[Job] = []
        while not batch:
            while not self._pending:
                if self._closed:
                    return None
                self._arrived.clear()
                await self._arrived.wait()
            if (job := self._take()) is not None:
                batch.append(job)
        pixels = batch[0].pixels
        gather_until = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            if self._pending:
                waiting = self._pending[0]
                if waiting.kind != batch[0].kind:
                    break
                if not waiting.future.done() and pixels + waiting.pixels > self.max_batch_pixels:
                    break
                if (job := self._take()) is not None:
                    batch.append(job)
                    pixels += job.pixels
                continue
            remaining = gather_until - time.monotonic()
            if remaining <= 0 or self._closed:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return batch


def retrieved(future: asyncio.Future) -> None:
    """Mark ``future``'s outcome as seen: a gathering whose jobs were cancelled ends in
    an exception that nobody awaits, which asyncio would otherwise log."""
    if not future.cancelled():
        future.exception()


def settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Answer ``future`` unless its request stopped waiting."""
    if future.done():
        return
    if error is None and isinstance(result, BaseException):
        error = result
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
