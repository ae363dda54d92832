"""HA-side overhead of the hsi pipeline per security event, for 1, 4 and 16 cameras.

Runs on Home Assistant's Python (.venv/ha) against the REAL ai_server (tiny profile) started as a
subprocess from HSI_SERVER_PYTHON (default .venv/server/bin/python):

    .venv/ha/bin/python bench/pipeline.py [--rounds 5] [--cameras 1 4 16]

Per event: (trigger → burst done) + (batch closed → hsi_security_event) minus the time spent
inside the server calls (/detect, /analyze round trips, measured at the client). The batch is
closed right after the burst, so the deliberate idle wait is not counted; camera snapshots come
from an in-memory JPEG, so camera I/O is not counted either.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from unittest.mock import patch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    python = os.environ.get("HSI_SERVER_PYTHON", str(ROOT / ".venv/server/bin/python"))
    port = _free_port()
    env = os.environ | {"HSI_CACHE_DIR": tempfile.mkdtemp(prefix="hsi-bench-")}
    process = subprocess.Popen(
        [python, "-m", "ai_server", "serve", "--profile", "tiny", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as response,
        ):
            if json.loads(response.read())["status"] == "healthy":
                return process, url
        time.sleep(0.3)
    process.kill()
    raise SystemExit("ai_server did not become healthy")


def _mod(name: str) -> Any:
    return importlib.import_module(name)


def _jpeg() -> bytes:
    image_module = _mod("PIL.Image")

    out = io.BytesIO()
    image_module.new("RGB", (640, 480), (120, 110, 100)).save(out, format="JPEG")
    return out.getvalue()


# The camera whose work runs in the current task: the watcher's tasks inherit it, so the time
# spent in the shared analyser's server calls is charged to the right camera.
CAMERA: ContextVar[str] = ContextVar("camera")


def _timed(
    target: Callable[..., Awaitable[Any]], spent: dict[str, list[float]]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await target(*args, **kwargs)
        finally:
            spent[CAMERA.get()].append(time.perf_counter() - start)

    return wrapper


async def run(url: str, counts: list[int], rounds: int) -> dict[int, list[float]]:
    """Run every camera count in one Home Assistant instance."""
    # Imported by name: this file runs on HA's Python, while mypy checks bench/ with the server's.
    frame = _mod("homeassistant.helpers.frame")
    data_custom_components = _mod("homeassistant.loader").DATA_CUSTOM_COMPONENTS
    async_test_home_assistant = _mod(
        "pytest_homeassistant_custom_component.common"
    ).async_test_home_assistant

    results: dict[int, list[float]] = {}
    async with async_test_home_assistant(config_dir=tempfile.mkdtemp()) as hass:
        frame.async_setup(hass)
        hass.data.pop(data_custom_components, None)
        for cameras in counts:
            results[cameras] = await run_count(hass, url, cameras, rounds)
        await hass.async_block_till_done()
        await hass.async_stop(force=True)
    return results


async def run_count(hass: Any, url: str, cameras: int, rounds: int) -> list[float]:
    camera_image = _mod("homeassistant.components.camera").Image
    subentry_data = _mod("homeassistant.config_entries").ConfigSubentryData
    mock_config_entry = _mod("pytest_homeassistant_custom_component.common").MockConfigEntry
    const = _mod("custom_components.hsi.const")

    picture = camera_image("image/jpeg", _jpeg())

    async def fake_image(hass: Any, entity_id: str, *args: Any, **kwargs: Any) -> Any:
        return picture

    overheads: list[float] = []
    subentries = [
        subentry_data(
            data={
                "camera_entity": f"camera.bench_{i}",
                "confidence": 0.01,
                "classes": ["person", "vehicle", "animal"],
                "burst_frames": 1,
            },
            subentry_type="camera",
            title=f"Bench {i}",
            unique_id=f"camera.bench_{i}",
        )
        for i in range(cameras)
    ]
    entry = mock_config_entry(
        domain=const.DOMAIN,
        data={"url": url, "api_key": None, "verify_ssl": True},
        options={"cooldown": 0, "idle_timeout": 30, "batch_window": 90},
        subentries_data=subentries,
    )
    entry.add_to_hass(hass)
    with patch("custom_components.hsi.watcher.camera.async_get_image", fake_image):
        ok = await hass.config_entries.async_setup(entry.entry_id)
        assert ok, (entry.state, entry.reason)
        await hass.async_block_till_done()
        watchers = list(entry.runtime_data.watchers.values())
        spent: dict[str, list[float]] = {w.settings.camera_id: [] for w in watchers}
        analyzer = entry.runtime_data.analyzer
        analyzer.detect = _timed(analyzer.detect, spent)
        analyzer._call_analyze = _timed(analyzer._call_analyze, spent)
        for _ in range(rounds):
            done: dict[str, float] = {}
            waiter = asyncio.get_running_loop().create_future()

            def on_event(event: Any, done: dict[str, float] = done, waiter: Any = waiter) -> None:
                done[event.data["camera_id"]] = time.perf_counter()
                if len(done) == cameras and not waiter.done():
                    waiter.set_result(None)

            unsub = hass.bus.async_listen(const.EVENT_SECURITY, on_event)
            for calls in spent.values():
                calls.clear()
            started = {}
            for watcher in watchers:
                started[watcher.settings.camera_id] = time.perf_counter()
                token = CAMERA.set(watcher.settings.camera_id)
                watcher.async_trigger("bench")
                CAMERA.reset(token)
            burst_done: dict[str, float] = {}
            closed: dict[str, float] = {}

            async def close_after_burst(watcher: Any, burst_done: dict[str, float] = burst_done,
                                        closed: dict[str, float] = closed) -> None:  # fmt: skip
                CAMERA.set(watcher.settings.camera_id)  # this task's own context
                await watcher._burst_task
                burst_done[watcher.settings.camera_id] = time.perf_counter()
                closed[watcher.settings.camera_id] = time.perf_counter()
                watcher._on_batch_timer(None)  # close the batch now, as the idle timer would

            await asyncio.gather(*(close_after_burst(w) for w in watchers))
            try:
                await asyncio.wait_for(waiter, 120)
            except TimeoutError:  # report what came; say how many events never did
                print(f"{cameras} cameras: {cameras - len(done)} events missing", file=sys.stderr)
            unsub()
            for camera_id in done:
                total = (burst_done[camera_id] - started[camera_id]) + (
                    done[camera_id] - closed[camera_id]
                )
                overheads.append(max(0.0, total - sum(spent[camera_id])) * 1000)
        await hass.config_entries.async_unload(entry.entry_id)
    return overheads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    process, url = start_server()
    try:
        print("| cameras | events | overhead p50 ms | overhead p95 ms |")
        print("| --- | --- | --- | --- |")
        results = asyncio.run(run(url, args.cameras, args.rounds))
        for cameras, found in results.items():
            values = sorted(found)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(f"| {cameras} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} |")
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
