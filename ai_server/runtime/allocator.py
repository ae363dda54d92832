"""glibc malloc for a long-running inference server: tuned at start, trimmed while serving.

With glibc's defaults the server's RSS crept up over hours of camera traffic (docs/reliability.md,
soak): one malloc arena per thread (torch, the executor, llama.cpp), and tensor buffers freed in
the middle of a heap, which glibc returns to the system only when they reach its top. Two
arenas bound the per-thread pools (`tune_malloc`, at start); `malloc_trim` every
HSI_MALLOC_TRIM_S seconds hands the free pages inside the heaps back (`trim_periodically`).

Fixed mmap/trim thresholds (every buffer of 128 KiB and more in its own mapping) flattened the
soak as well, but cost eager torch ~35 % per frame: each tensor buffer became fresh, zeroed
pages. A trim every few seconds costs nothing measurable (docs/reliability.md, soak).

A MALLOC_* environment variable that names the same knob wins, as glibc's own tunables would; on
a C library without mallopt/malloc_trim (musl) nothing is changed.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
from collections.abc import Callable, Mapping

_LOGGER = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h): (environment variable, M_* constant, value).
TUNING: tuple[tuple[str, int, int], ...] = (("MALLOC_ARENA_MAX", -8, 2),)  # M_ARENA_MAX


@functools.cache  # looked up once: the trim runs every few seconds for the server's life
def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return function


def tune_malloc(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply TUNING where the environment does not set the knob; return what was applied."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        _LOGGER.debug("no mallopt in this C library: allocator left as it is")
        return {}
    applied: dict[str, int] = {}
    for variable, parameter, value in TUNING:
        if variable in environ:
            continue
        if mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) == 1:  # 1 is success
            applied[variable] = value
    _LOGGER.debug("malloc tuned: %s", applied)
    return applied


def release_free_memory() -> bool:
    """Return the free pages of every malloc heap to the system; False where glibc's
    malloc_trim is missing or found nothing to release."""
    malloc_trim = _libc_function("malloc_trim")
    return malloc_trim is not None and malloc_trim(ctypes.c_size_t(0)) == 1


async def trim_periodically(
    interval_s: float, release: Callable[[], bool] = release_free_memory
) -> None:
    """Run `release` off the event loop every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(release)
