"""The dynamic batcher on its own: grouping, isolation, bounds, cancellation, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ai_server.runtime.batcher import (
    BatcherClosedError,
    BatchStats,
    DynamicBatcher,
    QueueFullError,
)


class Recorder:
    """A batch function that doubles numbers and remembers each batch it saw."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.gate = gate

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append(list(items))
        return [2 * item for item in items]


async def until_busy(batcher: DynamicBatcher[int, int]) -> None:
    """Wait until the worker has handed a batch to the model."""
    while not batcher._inflight:
        await asyncio.sleep(0.005)


def make(fn, **kwargs) -> DynamicBatcher[int, int]:
    options = {"max_batch_size": 4, "max_wait_ms": 50, "max_queue": 100} | kwargs
    return DynamicBatcher("test", fn, **options)


async def test_concurrent_items_share_batches_and_get_their_own_results() -> None:
    fn = Recorder(delay=0.02)
    stats: list[BatchStats] = []
    batcher = make(fn, observer=stats.append)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    await batcher.close()
    assert results == [2 * i for i in range(10)]
    assert len(fn.batches) < 10
    assert all(len(batch) <= 4 for batch in fn.batches)
    assert sorted(x for batch in fn.batches for x in batch) == list(range(10))
    assert [s.size for s in stats] == [len(b) for b in fn.batches]


async def test_without_wait_requests_arriving_during_a_batch_form_the_next() -> None:
    gate = threading.Event()
    fn = Recorder(gate=gate)
    batcher = make(fn, max_batch_size=8, max_wait_ms=0)
    first = asyncio.ensure_future(batcher.submit(0))
    await until_busy(batcher)  # the model is busy with item 0 alone
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == 0
    assert [await r for r in rest] == [2, 4, 6, 8, 10]
    await batcher.close()
    assert fn.batches == [[0], [1, 2, 3, 4, 5]]


async def test_lone_item_waits_at_most_max_wait() -> None:
    fn = Recorder()
    batcher = make(fn, max_wait_ms=30)
    started = time.monotonic()
    assert await batcher.submit(21) == 42
    elapsed = time.monotonic() - started
    await batcher.close()
    assert fn.batches == [[21]]
    assert elapsed < 1.0  # flushed by the deadline, not stuck waiting for company


async def test_full_batch_runs_without_waiting_for_deadline() -> None:
    fn = Recorder()
    batcher = make(fn, max_batch_size=3, max_wait_ms=10_000)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(3))), 5)
    await batcher.close()
    assert results == [0, 2, 4]
    assert fn.batches == [[0, 1, 2]]


async def test_bounded_queue_refuses_with_retry_hint() -> None:
    gate = threading.Event()
    fn = Recorder(gate=gate)
    batcher = make(fn, max_batch_size=1, max_wait_ms=0, max_queue=2)
    first = asyncio.ensure_future(batcher.submit(1))
    await until_busy(batcher)
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0.01)
    assert batcher.queue_depth == 2
    with pytest.raises(QueueFullError) as refused:
        await batcher.submit(4)
    assert refused.value.retry_after >= 1
    gate.set()
    assert await first == 2
    assert [await w for w in waiting] == [4, 6]
    await batcher.close()


async def test_cancelled_request_frees_its_slot_and_is_skipped() -> None:
    gate = threading.Event()
    fn = Recorder(gate=gate)
    batcher = make(fn, max_batch_size=1, max_wait_ms=0, max_queue=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await until_busy(batcher)
    doomed = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    assert batcher.queue_depth == 1
    doomed.cancel()
    await asyncio.sleep(0)
    assert batcher.queue_depth == 0
    replacement = asyncio.ensure_future(batcher.submit(3))  # the freed slot is usable at once
    gate.set()
    assert await first == 2
    assert await replacement == 6
    await batcher.close()
    assert [2] not in fn.batches  # the cancelled item never reached the model


async def test_a_multi_item_submission_takes_one_queue_slot() -> None:
    gate = threading.Event()
    fn = Recorder(gate=gate)
    batcher = make(fn, max_batch_size=4, max_wait_ms=0, max_queue=2)
    first = asyncio.ensure_future(batcher.submit(100))
    await until_busy(batcher)
    crops = asyncio.ensure_future(batcher.submit_many(list(range(10))))  # 10 items, 1 slot
    single = asyncio.ensure_future(batcher.submit(50))
    await asyncio.sleep(0.01)
    assert batcher.queue_depth == 11
    with pytest.raises(QueueFullError):
        await batcher.submit_many([1, 2])  # two callers wait: the queue is full
    gate.set()
    assert await first == 200
    assert await crops == [2 * i for i in range(10)]
    assert await single == 100
    assert all(len(batch) <= 4 for batch in fn.batches)
    assert await batcher.submit_many([]) == []
    # Every slot is free again once the items were taken.
    assert await asyncio.gather(batcher.submit_many([1, 2]), batcher.submit(3)) == [[2, 4], 6]
    await batcher.close()


async def test_cancelling_a_multi_item_submission_frees_its_slot() -> None:
    gate = threading.Event()
    fn = Recorder(gate=gate)
    batcher = make(fn, max_batch_size=1, max_wait_ms=0, max_queue=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await until_busy(batcher)
    doomed = asyncio.ensure_future(batcher.submit_many([7, 8, 9]))
    await asyncio.sleep(0.01)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert batcher.queue_depth == 0
    replacement = asyncio.ensure_future(batcher.submit(3))
    gate.set()
    assert (await first, await replacement) == (2, 6)
    await batcher.close()
    assert all(7 not in batch for batch in fn.batches)


async def test_failure_fails_only_its_batch() -> None:
    calls = 0

    def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return items

    batcher = make(flaky, max_batch_size=8, max_wait_ms=20)
    first = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in first)
    assert await batcher.submit(7) == 7  # the worker survived
    await batcher.close()


async def test_wrong_result_count_is_an_error() -> None:
    batcher = make(lambda items: items[:-1])
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        await batcher.submit(1)
    await batcher.close()


async def test_close_fails_waiting_callers_and_refuses_new_ones() -> None:
    gate = threading.Event()
    batcher = make(Recorder(gate=gate), max_batch_size=1, max_wait_ms=0)
    inflight = asyncio.ensure_future(batcher.submit(1))
    queued = asyncio.ensure_future(batcher.submit(2))
    await until_busy(batcher)
    await batcher.close()
    gate.set()
    for future in (inflight, queued):
        with pytest.raises(BatcherClosedError):
            await future
    with pytest.raises(BatcherClosedError):
        await batcher.submit(3)
