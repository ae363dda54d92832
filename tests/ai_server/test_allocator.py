"""The server tunes glibc malloc itself (ai_server/runtime/allocator.py), as docs/reliability.md's
soak asks: at most two arenas, and the free pages inside its heaps handed back while serving. Each
case runs in a fresh interpreter (the tuning is process-wide) and reads glibc's own account of its
heaps (malloc_info) or the kernel's of the resident memory (/proc/self/statm)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ai_server.runtime.allocator import TUNING, trim_periodically, tune_malloc

REPO = Path(__file__).resolve().parents[2]

# Eight threads allocating at once (a new arena each, up to the limit), then a freed 8 MB block
# (glibc's dynamic threshold rises to 8 MB) before ten 1 MB buffers are held. "trim": twenty
# written 1 MB heap buffers, each walled in by a small object that stays, are freed (glibc keeps
# them: not at the top of the heap), then the resident memory is read before and after the
# release.
PROBE = textwrap.dedent(
    """
    import ctypes, json, re, sys, tempfile, threading

    def resident_mb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def trim():
        from ai_server.runtime.allocator import release_free_memory
        freed = bytearray(8 << 20)
        del freed
        buffers, walls = [], []
        for i in range(20):
            buffers.append(bytes([i + 1]) * (1 << 20))
            walls.append(bytes([i + 1]) * 600)
        del buffers
        before = resident_mb()
        released = release_free_memory()
        print(json.dumps({"released": released, "drop_mb": before - resident_mb()}))
        return 0

    def probe():
        barrier = threading.Barrier(8)
        def work():
            barrier.wait()
            kept = [bytearray(1000) for _ in range(2000)]
            barrier.wait()
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        freed = bytearray(8 << 20)
        del freed
        held = [bytearray(1 << 20) for _ in range(10)]
        libc = ctypes.CDLL(None)
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = (ctypes.c_int, ctypes.c_char_p)
        libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.fclose.argtypes = (ctypes.c_void_p,)
        with tempfile.TemporaryFile("w+") as out:
            stream = libc.fdopen(os.dup(out.fileno()), b"w")
            libc.malloc_info(0, stream)
            libc.fclose(stream)
            out.seek(0)
            xml = out.read()
        mmap = re.search(r'<total type="mmap" count="(\\d+)"', xml)
        print(json.dumps({"heaps": xml.count("<heap nr="), "mmapped": int(mmap.group(1))}))
        return 0

    import os
    mode = sys.argv[1]
    if mode == "serve":  # the real entry point, with serving replaced by the probe
        import ai_server.__main__ as entry
        entry._serve = lambda settings: probe()
        sys.exit(entry.main(["serve", "--profile", "tiny", "--port", "1"]))
    if mode == "trim":
        sys.exit(trim())
    if mode == "tuned":
        from ai_server.runtime.allocator import tune_malloc
        tune_malloc()
    sys.exit(probe())
    """
)


def _probe(mode: str, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=REPO,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_glibc_defaults_give_each_thread_an_arena() -> None:
    """The baseline the tuning changes (and proof the probe can tell)."""
    assert _probe("plain")["heaps"] > 2


def test_the_server_entry_point_tunes_malloc_before_serving() -> None:
    assert _probe("serve")["heaps"] <= 2


def test_an_environment_variable_wins_over_the_tuning() -> None:
    assert _probe("tuned", MALLOC_ARENA_MAX="4")["heaps"] == 4


def test_release_hands_freed_heap_buffers_back() -> None:
    """Freed buffers inside the heap stay resident until the release (about 20 MB here)."""
    trimmed = _probe("trim")
    assert trimmed["released"] is True
    assert trimmed["drop_mb"] >= 15


async def test_trim_periodically_releases_until_cancelled() -> None:
    calls: list[float] = []
    task = asyncio.create_task(trim_periodically(0.01, lambda: calls.append(1.0) is None))
    while len(calls) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == count


def test_tune_malloc_reports_what_it_applied() -> None:
    names = {name for name, _, _ in TUNING}
    assert set(tune_malloc({name: "0" for name in names})) == set()
    # Applying the same values again in this process is harmless and reported.
    assert set(tune_malloc({})) == names


@pytest.mark.parametrize("name", [name for name, _, _ in TUNING])
def test_each_knob_can_be_left_to_the_environment(name: str) -> None:
    assert name not in tune_malloc({name: "1"})
