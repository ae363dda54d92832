"""glibc malloc tuned for a long-running inference server, set by the server itself.

With glibc's defaults the server's RSS crept up over hours of camera traffic (docs/reliability.md,
soak): one malloc arena per thread (torch, the executor, llama.cpp) and a dynamic mmap threshold
that, once a large tensor buffer has been freed, serves the next ones from the heap, where freed
space fragments and is rarely returned. Fixed thresholds keep buffers of 128 KiB and more in
their own mappings, returned to the system on free; two arenas bound the per-thread pools.
Measured side by side in one soak (7 cameras x 1 fps, 10 min): +0.96 MB/min with only the arena
limit, +0.02 MB/min with the thresholds as well.

Set through mallopt(3) at start, so every way of running the server gets it (add-on image, pip
install, tests, benchmarks). A MALLOC_* environment variable that names the same knob wins, as
glibc's own tunables would; on a C library without mallopt (musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h): (environment variable, M_* constant, value).
TUNING: tuple[tuple[str, int, int], ...] = (
    ("MALLOC_ARENA_MAX", -8, 2),  # M_ARENA_MAX
    ("MALLOC_MMAP_THRESHOLD_", -3, 128 * 1024),  # M_MMAP_THRESHOLD (also ends the dynamic one)
    ("MALLOC_TRIM_THRESHOLD_", -1, 128 * 1024),  # M_TRIM_THRESHOLD
)


def tune_malloc(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply TUNING where the environment does not set the knob; return what was applied."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        _LOGGER.debug("no mallopt in this C library: allocator left as it is")
        return {}
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    for variable, parameter, value in TUNING:
        if variable in environ:
            continue
        if mallopt(parameter, value) == 1:  # mallopt answers 1 on success
            applied[variable] = value
    _LOGGER.debug("malloc tuned: %s", applied)
    return applied
