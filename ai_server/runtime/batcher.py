"""Dynamic batching: many concurrent callers, few model calls, each caller its own result.

Callers `submit` one item and await its result. A worker task takes the oldest waiting item and
closes the batch when it holds `max_batch_size` items or the oldest item has waited
`max_wait_ms`, then runs the batch function in the model's own single-thread executor (torch
releases the GIL, so the event loop stays free). While a batch runs, new items queue up and form
the next batch, so batches grow with load and stay at one item when idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class QueueFullError(Exception):
    """The batcher's queue is at its bound; the caller should retry after `retry_after` s."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"{name} queue is full")
        self.name = name
        self.retry_after = retry_after


class BatcherClosedError(Exception):
    """The batcher is shutting down."""


@dataclass(frozen=True)
class BatchStats:
    """What one batch did, reported to the observer (metrics)."""

    size: int
    seconds: float
    queue_depth: int


@dataclass
class _Admission:
    """One caller's submission; it holds a queue slot until all its items are taken."""

    waiting: int


@dataclass
class _Entry(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    admission: _Admission
    enqueued: float = field(default_factory=time.monotonic)
    taken: bool = False


class DynamicBatcher(Generic[T, R]):
    """Groups submitted items into batches for `fn(items) -> results` (same length, same order)."""

    def __init__(
        self,
        name: str,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        observer: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self.name = name
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._observer = observer
        self._queue: deque[_Entry[T, R]] = deque()
        self._queued = 0  # live (not cancelled, not taken) entries
        self._admitted = 0  # submissions with items still waiting: what max_queue bounds
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Entry[T, R]] = []
        self._closed = False
        self._last_batch_seconds = 0.0
        self.batches_run = 0

    @property
    def queue_depth(self) -> int:
        return self._queued

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"batcher-{self.name}")

    async def close(self) -> None:
        """Stop the worker; waiting callers get BatcherClosedError."""
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for entry in [*self._inflight, *self._queue]:
            if not entry.future.done():
                entry.future.set_exception(BatcherClosedError(f"{self.name} is shutting down"))
        self._queue.clear()
        self._inflight = []
        self._queued = self._admitted = 0
        # Never block the event loop on a running model call; its result is simply dropped.
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, item: T) -> R:
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Results for several items of one caller (e.g. every crop of one image).

        They take one queue slot together, so `max_queue` bounds waiting callers however
        many items each brings; the items still batch with everyone else's.
        """
        if self._closed:
            raise BatcherClosedError(f"{self.name} is shutting down")
        if not items:
            return []
        if self._admitted >= self.max_queue:
            # A rough wait for the queue ahead of us to drain.
            batches_ahead = self._queued / self.max_batch_size
            raise QueueFullError(self.name, max(1.0, batches_ahead * self._last_batch_seconds))
        self.start()
        loop = asyncio.get_running_loop()
        admission = _Admission(len(items))
        entries = [_Entry(item, loop.create_future(), admission) for item in items]
        self._admitted += 1
        self._queue.extend(entries)
        self._queued += len(entries)
        self._wakeup.set()
        try:
            if len(entries) == 1:
                return [await entries[0].future]
            return list(await asyncio.gather(*(entry.future for entry in entries)))
        except asyncio.CancelledError:
            for entry in entries:
                if not entry.taken:
                    # Free the slot now; the worker skips the entry when it reaches it.
                    self._take(entry)
            raise

    def _take(self, entry: _Entry[T, R]) -> None:
        entry.taken = True
        self._queued -= 1
        entry.admission.waiting -= 1
        if entry.admission.waiting == 0:
            self._admitted -= 1

    def _pop_live(self) -> _Entry[T, R] | None:
        while self._queue:
            entry = self._queue.popleft()
            if not entry.taken and not entry.future.done():
                self._take(entry)
                return entry
        return None

    async def _wait_for_batch(self) -> list[_Entry[T, R]]:
        """Block until the oldest live item exists, then until the batch is full or due."""
        while self._queued == 0:
            self._wakeup.clear()
            await self._wakeup.wait()
        oldest = next(e for e in self._queue if not e.taken and not e.future.done())
        deadline = oldest.enqueued + self.max_wait
        while self._queued < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        batch: list[_Entry[T, R]] = []
        while len(batch) < self.max_batch_size and (entry := self._pop_live()) is not None:
            batch.append(entry)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._wait_for_batch()
            if not batch:
                continue
            self._inflight = batch
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._fn, [entry.item for entry in batch]
                )
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"{self.name}: batch function returned {len(results)} results "
                        f"for {len(batch)} items"
                    )
            except Exception as err:  # one failure fails its whole batch, nothing else
                _LOGGER.exception("%s batch of %d failed", self.name, len(batch))
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(err)
            else:
                for entry, result in zip(batch, results, strict=True):
                    if not entry.future.done():
                        entry.future.set_result(result)
            self._inflight = []
            seconds = time.perf_counter() - started
            self._last_batch_seconds = seconds
            self.batches_run += 1
            if self._observer is not None:
                self._observer(BatchStats(len(batch), seconds, self._queued))
