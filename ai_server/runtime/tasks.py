"""Stopping background tasks: cancelled, then awaited, so none outlives what started it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

_LOGGER = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks still running and wait until every one of them has finished.

    A task that had already finished is left as it is (its owner has its result). A running task
    that ends with an error instead of the cancellation is logged, not raised: this runs while
    shutting down. Cancelling the caller itself still cancels it.
    """
    running = [task for task in tasks if task is not None and not task.done()]
    if not running:
        return
    for task in running:
        task.cancel()
    await asyncio.wait(running)
    for task in running:
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("background task %s failed", task.get_name(), exc_info=err)
