"""Dynamic micro-batching: concurrent requests share one forward pass.

Requests (``submit``) wait in one bounded queue; one asyncio task takes the oldest
waiting job, gathers the jobs of the same kind behind it (up to ``max_batch``, waiting
up to ``max_wait_s`` for more) and awaits the kind's handler on all of them at once:
for the server, one round trip to the model process, which decodes and classifies the
batch while the event loop goes on reading requests. A full queue is a
``ServerBusyError`` at once (503: a client retries, memory stays bounded), a job with no
answer within ``timeout_s`` a ``ServerTimeoutError`` (504); ``close`` answers every
queued job first.

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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.errors import ServerBusyError, ServerTimeoutError
from cnnkit.serve.settings import ServeSettings

# A handler takes the items of one batch and returns their results, in order; a result
# that is an exception is raised in its own request only.
Handler = Callable[[list[Any]], Awaitable[Sequence[Any]]]
# Called after every batch with its kind, size and seconds in the handler.
BatchObserver = Callable[[str, int, float], None]


@dataclass
class Job:
    kind: str
    item: Any
    future: asyncio.Future


@dataclass
class MicroBatcher:
    handlers: dict[str, Handler]
    max_batch: int = ServeSettings.max_batch
    max_wait_s: float = ServeSettings.max_wait_ms / 1000
    max_queue: int = ServeSettings.max_queue
    timeout_s: float = ServeSettings.timeout_s
    observe: BatchObserver | None = None
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

    async def submit_many(self, kind: str, items: list[Any]) -> list[Any]:
        """The handler's results for ``items``, queued together (or refused together)
        before this coroutine first waits; the first item's error is raised."""
        self.check_room(len(items))
        loop = asyncio.get_running_loop()
        jobs = [Job(kind, item, loop.create_future()) for item in items]
        self._pending.extend(jobs)
        self._arrived.set()
        futures = [job.future for job in jobs]
        try:
            _, late = await asyncio.wait(futures, timeout=self.timeout_s)
        finally:  # timed out, or the request went away: the task skips a cancelled job
            for future in futures:
                future.cancel()
        if late:
            raise ServerTimeoutError(
                f"no answer from the model within {self.timeout_s:g} s; the server is overloaded"
            )
        return [future.result() for future in futures]

    async def _work(self) -> None:
        while (batch := await self._next_batch()) is not None:
            started = time.perf_counter()
            try:
                results = await self.handlers[batch[0].kind]([job.item for job in batch])
                error = None
            except Exception as failure:  # every job of the batch gets it (a 500 or 503)
                results, error = [None] * len(batch), failure
            for job, result in zip(batch, results, strict=True):
                settle(job.future, result, error)
            if self.observe is not None:
                self.observe(batch[0].kind, len(batch), time.perf_counter() - started)

    async def _next_batch(self) -> list[Job] | None:
        """The next jobs of one kind, oldest first; None once closed and drained."""
        batch: list[Job] = []
        while not batch:
            while not self._pending:
                if self._closed:
                    return None
                self._arrived.clear()
                await self._arrived.wait()
            job = self._pending.popleft()
            if not job.future.done():  # else its request timed out or went away
                batch.append(job)
        gather_until = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            if self._pending:
                if self._pending[0].kind != batch[0].kind:
                    break
                job = self._pending.popleft()
                if not job.future.done():
                    batch.append(job)
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
