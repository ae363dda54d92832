"""The server tunes glibc malloc itself (ai_server/runtime/allocator.py), as docs/reliability.md's
soak asks: at most two arenas, and large buffers in their own mappings even after a large one was
freed. Each case runs in a fresh interpreter (the tuning is process-wide) and reads glibc's own
account of its heaps and mappings (malloc_info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ai_server.runtime.allocator import TUNING, tune_malloc

REPO = Path(__file__).resolve().parents[2]

# Eight threads allocating at once (a new arena each, up to the limit), then a freed 8 MB block
# (glibc's dynamic threshold rises to 8 MB) before ten 1 MB buffers are held.
PROBE = textwrap.dedent(
    """
    import ctypes, json, re, sys, tempfile, threading

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
    if mode == "tuned":
        from ai_server.runtime.allocator import tune_malloc
        tune_malloc()
    sys.exit(probe())
    """
)


def _probe(mode: str, **env: str) -> dict[str, int]:
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
    answer: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_glibc_defaults_give_each_thread_an_arena_and_heap_for_big_buffers() -> None:
    """The baseline the tuning changes (and proof the probe can tell)."""
    plain = _probe("plain")
    assert plain["heaps"] > 2
    assert plain["mmapped"] < 10  # the ten 1 MB buffers came from the heap


def test_the_server_entry_point_tunes_malloc_before_serving() -> None:
    served = _probe("serve")
    assert served["heaps"] <= 2
    assert served["mmapped"] >= 10


def test_an_environment_variable_wins_over_the_tuning() -> None:
    tuned = _probe("tuned", MALLOC_ARENA_MAX="4")
    assert tuned["heaps"] == 4
    assert tuned["mmapped"] >= 10  # the knobs the environment leaves alone are still tuned


def test_tune_malloc_reports_what_it_applied() -> None:
    names = {name for name, _, _ in TUNING}
    assert set(tune_malloc({name: "0" for name in names})) == set()
    # Applying the same values again in this process is harmless and reported.
    assert set(tune_malloc({})) == names


@pytest.mark.parametrize("name", [name for name, _, _ in TUNING])
def test_each_knob_can_be_left_to_the_environment(name: str) -> None:
    assert name not in tune_malloc({name: "1"})
