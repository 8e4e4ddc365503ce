"""The micro-batcher with handlers that stand in for the model: batches gather
concurrent requests in order, the queue is bounded, slow answers time out, close drains."""

import asyncio
import time

import pytest

from cnnkit.errors import ImageError, ServerBusyError, ServerTimeoutError
from cnnkit.serve.batcher import Batch, ClientGone, MicroBatcher
from cnnkit.serve.wire import WITHDRAWN


def recording_handler(seconds: float = 0.0):
    """A handler that doubles its items after ``seconds`` and records its batches."""
    batches: list[list[int]] = []

    async def handle(batch: Batch) -> list[int]:
        batches.append(batch.items)
        await asyncio.sleep(seconds)
        return [2 * item for item in batch.items]

    return handle, batches


def blocked_handler():
    """A handler that answers its items as they are once ``release`` is set."""
    release = asyncio.Event()

    async def blocked(batch: Batch) -> list:
        await release.wait()
        return batch.items

    return blocked, release


def run(batcher: MicroBatcher, clients):
    """``clients(batcher)`` on a fresh event loop with the batcher running."""

    async def main():
        batcher.start()
        try:
            return await clients()
        finally:
            await batcher.close()

    return asyncio.run(main())


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    handle, batches = recording_handler(seconds=0.02)
    batcher = MicroBatcher({"double": handle}, max_batch=8)

    async def clients():
        return await asyncio.gather(*(batcher.submit("double", n) for n in range(40)))

    assert run(batcher, clients) == [2 * n for n in range(40)]
    assert sorted(item for batch in batches for item in batch) == list(range(40))
    assert [len(batch) for batch in batches] == [8] * 5  # gathered, up to max_batch
    assert all(batch == sorted(batch) for batch in batches)  # oldest first


def test_the_first_job_waits_for_more_when_told():
    handle, batches = recording_handler()
    batcher = MicroBatcher({"double": handle}, max_batch=8, max_wait_s=0.05)

    async def clients():
        first = asyncio.ensure_future(batcher.submit("double", 0))
        await asyncio.sleep(0.01)  # arrives while the first one waits
        return await asyncio.gather(first, batcher.submit("double", 1))

    assert run(batcher, clients) == [0, 2]
    assert batches == [[0, 1]]


def test_batch_size_one_runs_every_request_alone():
    handle, batches = recording_handler()
    batcher = MicroBatcher({"double": handle}, max_batch=1)

    async def clients():
        return await asyncio.gather(*(batcher.submit("double", n) for n in range(10)))

    assert run(batcher, clients) == [2 * n for n in range(10)]
    assert [len(batch) for batch in batches] == [1] * 10


def test_kinds_are_never_mixed_in_one_batch():
    seen: list[tuple[str, list[int]]] = []

    def handler(kind):
        async def handle(batch):
            seen.append((kind, batch.items))
            return [kind] * len(batch.items)

        return handle

    batcher = MicroBatcher({"a": handler("a"), "b": handler("b")})

    async def clients():
        return await asyncio.gather(*(batcher.submit("ab"[n % 2], n) for n in range(12)))

    assert run(batcher, clients) == ["ab"[n % 2] for n in range(12)]
    assert all(all(n % 2 == "ab".index(kind) for n in items) for kind, items in seen)


def test_an_item_that_fails_fails_only_its_own_request():
    async def read(batch):
        return [ImageError(f"bad {i}") if i == 3 else i for i in batch.items]

    batcher = MicroBatcher({"read": read})

    async def clients():
        return await asyncio.gather(
            *(batcher.submit("read", n) for n in range(6)), return_exceptions=True
        )

    results = run(batcher, clients)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5]
    assert isinstance(results[3], ImageError) and str(results[3]) == "bad 3"


def test_a_failing_handler_fails_its_batch_and_the_next_batch_goes_on():
    calls = []

    async def flaky(batch):
        calls.append(batch.items)
        if len(calls) == 1:
            raise RuntimeError("the model broke")
        return batch.items

    batcher = MicroBatcher({"x": flaky}, max_batch=2)

    async def clients():
        return await asyncio.gather(
            *(batcher.submit("x", n) for n in range(4)), return_exceptions=True
        )

    results = run(batcher, clients)
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert results[2:] == [2, 3]


def test_a_full_queue_refuses_at_once():
    blocked, release = blocked_handler()
    batcher = MicroBatcher({"x": blocked}, max_batch=1, max_queue=2)

    async def clients():
        running = asyncio.ensure_future(batcher.submit("x", 0))  # taken by the task
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.submit("x", n)) for n in (1, 2)]
        await asyncio.sleep(0.01)
        assert batcher.depth == 2
        started = time.perf_counter()
        with pytest.raises(ServerBusyError, match="busy"):
            await batcher.submit("x", 3)
        refused_in = time.perf_counter() - started
        release.set()
        return refused_in, await asyncio.gather(running, *queued)

    refused_in, answers = run(batcher, clients)
    assert refused_in < 0.01 and answers == [0, 1, 2]


def test_a_request_that_waits_too_long_times_out_and_is_skipped():
    handle, batches = recording_handler(seconds=0.3)
    batcher = MicroBatcher({"double": handle}, max_batch=1, timeout_s=0.1)

    async def clients():
        return await asyncio.gather(
            *(batcher.submit("double", n) for n in range(3)), return_exceptions=True
        )

    results = run(batcher, clients)
    assert all(isinstance(r, ServerTimeoutError) for r in results)
    assert batches == [[0]]  # the two that timed out while queued never ran


def test_close_answers_every_queued_request_then_refuses():
    handle, _ = recording_handler(seconds=0.01)
    batcher = MicroBatcher({"double": handle}, max_batch=2)

    async def clients():
        pending = [asyncio.ensure_future(batcher.submit("double", n)) for n in range(6)]
        await asyncio.sleep(0)  # all six queued
        await batcher.close()
        assert not batcher.is_running
        with pytest.raises(ServerBusyError, match="shutting down"):
            await batcher.submit("double", 7)
        return await asyncio.gather(*pending)

    assert run(batcher, clients) == [0, 2, 4, 6, 8, 10]


def test_a_request_s_items_are_queued_together_before_it_waits_or_refused_together():
    blocked, release = blocked_handler()
    batcher = MicroBatcher({"x": blocked}, max_batch=1, max_queue=3)

    async def clients():
        running = asyncio.ensure_future(batcher.submit("x", 0))  # taken by the task
        await asyncio.sleep(0.01)
        two = batcher.submit_many("x", [1, 2])
        waiting = asyncio.ensure_future(two)
        await asyncio.sleep(0)  # its first step, up to its first wait
        assert batcher.depth == 2  # both queued in that one step, no task per item
        with pytest.raises(ServerBusyError, match="busy"):  # two more do not fit in three
            await batcher.submit_many("x", [3, 4])
        assert batcher.depth == 2  # neither of them was queued
        release.set()
        return await asyncio.gather(running, waiting)

    assert run(batcher, clients) == [0, [1, 2]]


def test_a_request_larger_than_the_queue_waits_for_an_empty_one():
    handle, batches = recording_handler(seconds=0.01)
    batcher = MicroBatcher({"double": handle}, max_batch=8, max_queue=2)

    async def clients():
        return await batcher.submit_many("double", [1, 2, 3])

    assert run(batcher, clients) == [2, 4, 6]
    assert batches == [[1, 2, 3]]


def test_a_batch_closes_before_its_pixel_budget_is_exceeded_and_always_takes_one_job():
    blocked, release = blocked_handler()
    batches: list[list[int]] = []

    async def recorded(batch: Batch) -> list:
        batches.append(batch.items)
        return await blocked(batch)

    batcher = MicroBatcher({"x": recorded}, max_batch=8, max_batch_pixels=100)
    claims = [60, 30, 10, 50, 150, 5, 5]  # pixels that each item's header claims

    async def clients():
        running = asyncio.ensure_future(batcher.submit("x", "first"))  # holds the task
        await asyncio.sleep(0.01)
        waiting = [
            asyncio.ensure_future(batcher.submit_many("x", [n], [c])) for n, c in enumerate(claims)
        ]
        await asyncio.sleep(0.01)
        release.set()
        return await asyncio.gather(running, *waiting)

    run(batcher, clients)
    assert batches == [["first"], [0, 1, 2], [3], [4], [5, 6]]  # 100, 50, 150 alone, 10


def test_an_item_whose_request_goes_away_mid_batch_is_withdrawn_from_the_handler():
    release = asyncio.Event()
    withdrawn: list[int] = []

    async def handle(batch: Batch) -> list:
        batch.when_withdrawn(withdrawn.append)
        await release.wait()
        return [WITHDRAWN if n in withdrawn else item for n, item in enumerate(batch.items)]

    batcher = MicroBatcher({"x": handle})

    async def clients():
        gone = asyncio.Event()
        staying = asyncio.ensure_future(batcher.submit_many("x", ["a"]))
        leaving = asyncio.ensure_future(batcher.submit_many("x", ["b", "c"], gone=gone.wait()))
        await asyncio.sleep(0.01)  # one batch of all three in the handler
        gone.set()
        with pytest.raises(ClientGone):
            await leaving
        release.set()
        return await staying

    assert run(batcher, clients) == ["a"]
    assert withdrawn == [1, 2]
    assert batcher.dropped == {("x", "model"): 2}


def test_a_request_that_times_out_drops_its_queued_items_and_withdraws_the_running_one():
    release = asyncio.Event()
    withdrawn: list[int] = []

    async def handle(batch: Batch) -> list:
        batch.when_withdrawn(withdrawn.append)
        await release.wait()
        return [WITHDRAWN if n in withdrawn else n for n in range(len(batch.items))]

    batcher = MicroBatcher({"x": handle}, max_batch=1, timeout_s=0.05)

    async def clients():
        with pytest.raises(ServerTimeoutError):
            await batcher.submit_many("x", ["a", "b"])  # a in the handler, b queued
        release.set()

    run(batcher, clients)
    assert withdrawn == [0]
    assert batcher.dropped == {("x", "queue"): 1, ("x", "model"): 1}
