"""The micro-batcher with handlers that stand in for the model: batches gather
concurrent requests in order, the queue is bounded, slow answers time out, close drains."""

import asyncio
import threading
import time

import pytest

from cnnkit.errors import ImageError, ServerBusyError, ServerTimeoutError
from cnnkit.serve.batcher import MicroBatcher


def recording_handler(seconds: float = 0.0):
    """A handler that doubles its items after ``seconds`` and records its batches."""
    batches: list[list[int]] = []

    def handle(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(seconds)
        return [2 * item for item in items]

    return handle, batches


def run_with(batcher: MicroBatcher, coroutine):
    batcher.start()
    try:
        return asyncio.run(coroutine)
    finally:
        batcher.close()


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    handle, batches = recording_handler(seconds=0.02)
    batcher = MicroBatcher({"double": handle}, max_batch=8, max_wait_s=0.005)

    async def clients():
        return await asyncio.gather(*(batcher.submit("double", n) for n in range(40)))

    assert run_with(batcher, clients()) == [2 * n for n in range(40)]
    assert sorted(item for batch in batches for item in batch) == list(range(40))
    assert max(len(batch) for batch in batches) == 8  # up to max_batch
    assert len(batches) <= 40 // 8 + 2  # gathered, not one at a time
    assert all(batch == sorted(batch) for batch in batches)  # oldest first


def test_batch_size_one_runs_every_request_alone():
    handle, batches = recording_handler()
    batcher = MicroBatcher({"double": handle}, max_batch=1)

    async def clients():
        return await asyncio.gather(*(batcher.submit("double", n) for n in range(10)))

    assert run_with(batcher, clients()) == [2 * n for n in range(10)]
    assert [len(batch) for batch in batches] == [1] * 10


def test_kinds_are_never_mixed_in_one_batch():
    seen: list[tuple[str, list[int]]] = []

    def handler(kind):
        return lambda items: seen.append((kind, list(items))) or [kind] * len(items)

    batcher = MicroBatcher({"a": handler("a"), "b": handler("b")}, max_wait_s=0.01)

    async def clients():
        return await asyncio.gather(*(batcher.submit("ab"[n % 2], n) for n in range(12)))

    assert run_with(batcher, clients()) == ["ab"[n % 2] for n in range(12)]
    assert all(all(n % 2 == "ab".index(kind) for n in items) for kind, items in seen)


def test_an_item_that_fails_fails_only_its_own_request():
    batcher = MicroBatcher(
        {"read": lambda items: [ImageError(f"bad {i}") if i == 3 else i for i in items]},
        max_wait_s=0.01,
    )

    async def clients():
        return await asyncio.gather(
            *(batcher.submit("read", n) for n in range(6)), return_exceptions=True
        )

    results = run_with(batcher, clients())
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5]
    assert isinstance(results[3], ImageError) and str(results[3]) == "bad 3"


def test_a_full_queue_refuses_at_once():
    release = threading.Event()

    def blocked(items):
        release.wait(5)
        return items

    batcher = MicroBatcher({"x": blocked}, max_batch=1, max_queue=2)

    async def clients():
        running = asyncio.ensure_future(batcher.submit("x", 0))  # taken by the worker
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit("x", n)) for n in (1, 2)]
        await asyncio.sleep(0.05)
        assert batcher.depth == 2
        started = time.perf_counter()
        with pytest.raises(ServerBusyError, match="busy"):
            await batcher.submit("x", 3)
        refused_in = time.perf_counter() - started
        release.set()
        return refused_in, await asyncio.gather(running, *queued)

    refused_in, answers = run_with(batcher, clients())
    assert refused_in < 0.05 and answers == [0, 1, 2]


def test_a_request_that_waits_too_long_times_out_and_is_skipped():
    handle, batches = recording_handler(seconds=0.3)
    batcher = MicroBatcher({"double": handle}, max_batch=1, timeout_s=0.1)

    async def clients():
        return await asyncio.gather(
            *(batcher.submit("double", n) for n in range(3)), return_exceptions=True
        )

    results = run_with(batcher, clients())
    assert all(isinstance(r, ServerTimeoutError) for r in results)
    assert len(batches) == 1  # the two that timed out while queued never ran


def test_close_answers_every_queued_request_then_refuses():
    handle, _ = recording_handler(seconds=0.01)
    batcher = MicroBatcher({"double": handle}, max_batch=2)

    async def clients():
        pending = [asyncio.ensure_future(batcher.submit("double", n)) for n in range(6)]
        await asyncio.sleep(0)  # all six queued
        closing = asyncio.get_running_loop().run_in_executor(None, batcher.close)
        answers = await asyncio.gather(*pending)
        await closing
        with pytest.raises(ServerBusyError, match="shutting down"):
            await batcher.submit("double", 7)
        return answers

    batcher.start()
    assert asyncio.run(clients()) == [0, 2, 4, 6, 8, 10]
    assert not batcher.is_running
