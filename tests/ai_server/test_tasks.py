"""cancel_and_wait: background tasks end cancelled and awaited, never left pending."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ai_server.runtime.tasks import cancel_and_wait


async def test_running_tasks_are_cancelled_and_awaited() -> None:
    cleaned: list[str] = []

    async def worker(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits: still waited for
            cleaned.append(name)

    tasks = [asyncio.create_task(worker(name)) for name in ("a", "b")]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)
    assert all(task.cancelled() for task in tasks)
    assert sorted(cleaned) == ["a", "b"]


async def test_finished_tasks_are_left_as_they_are() -> None:
    async def answer() -> int:
        return 42

    task = asyncio.create_task(answer())
    await task
    await cancel_and_wait(task)
    assert task.result() == 42
    await cancel_and_wait()  # nothing to do


async def test_a_task_failing_while_it_stops_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await cancel_and_wait(task)
    assert task.done()
    assert "background task stubborn failed" in caplog.text


async def test_cancelling_the_caller_still_cancels_it() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(3600)  # never finishes on its own

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    inner.cancel()  # its second sleep
    with pytest.raises(asyncio.CancelledError):
        await inner
