"""Timeline websocket API: `hsi/events/list` latency and event-to-subscriber time.

Runs on Home Assistant's Python (.venv/ha) in HA's own test harness, with the HTTP server really
listening on 127.0.0.1 and a real websocket client (aiohttp) authenticated with an access token,
so every figure includes JSON, the websocket and HA's command dispatch:

    .venv/ha/bin/python bench/timeline.py [--events 10000] [--requests 200] [--publishes 100]

The integration runs against the client library's fake AI server (no models are needed: events
are written into the entry's real event store, SQLite and JPEG files in a temporary config
folder). Figures:

- list: one page of 50 events out of the N stored, newest first (the newest 200 have a snapshot
  and 3 key frames each: 4 signed image paths per event); with a camera + level filter;
  and a page deep in the history (cursor after half of them). The same queries made on the
  store in-process show what the API adds.
- event → subscriber: from the call that stores an event (EventStore.async_add, which the
  pipeline makes when it publishes one) to the subscriber's websocket message, with no image
  and with a 640x480 snapshot written to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import cpu_model, free_port, percentile  # noqa: E402  (stdlib + aiohttp only)

CAMERAS = 4
LEVEL_SCORES = (10, 40, 70, 90)  # low, medium, high, critical
IMAGES_NEWEST = 200  # events (the newest) stored with 4 images each


def _mod(name: str) -> Any:
    # Imported by name: this file runs on HA's Python, while mypy checks bench/ with the server's.
    return importlib.import_module(name)


def _jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    _mod("PIL.Image").new("RGB", (width, height), (120, 110, 100)).save(out, format="JPEG")
    return out.getvalue()


class Client:
    """A websocket client of HA's API: one command at a time, or a subscription's messages."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def command(self, message: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, **message})
        answer: dict[str, Any] = await self.ws.receive_json()
        if not answer.get("success"):
            raise SystemExit(f"{message['type']} failed: {answer}")
        return answer


async def _timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    await call()  # warm caches and code paths once
    times: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def run(args: argparse.Namespace) -> list[tuple[str, list[float]]]:
    fake = _mod("hsi_client.testing").FakeServer(embed_supported=False)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    try:
        with tempfile.TemporaryDirectory(prefix="hsi-bench-timeline-") as config_dir:
            return await _run_in(config_dir, args, fake_port)
    finally:
        await runner.cleanup()


async def _run_in(
    config_dir: str,
    args: argparse.Namespace,
    fake_port: int,
) -> list[tuple[str, list[float]]]:
    results: list[tuple[str, list[float]]] = []
    common = _mod("pytest_homeassistant_custom_component.common")
    frame = _mod("homeassistant.helpers.frame")
    setup = _mod("homeassistant.setup")
    loader = _mod("homeassistant.loader")
    config_entries = _mod("homeassistant.config_entries")
    hsi_client = _mod("hsi_client")
    models = _mod("custom_components.hsi.models")
    store_module = _mod("custom_components.hsi.store")
    async with common.async_test_home_assistant(config_dir=config_dir) as hass:
        # The database lands in config_dir/.storage; the images go to a media folder in it too
        # (the harness points "local" media at a folder inside the installed test plugin).
        hass.config.media_dirs = {"local": str(Path(config_dir, "media"))}
        frame.async_setup(hass)
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        port = free_port()
        assert await setup.async_setup_component(
            hass, "http", {"http": {"server_host": "127.0.0.1", "server_port": port}}
        )
        assert await setup.async_setup_component(hass, "websocket_api", {})
        await hass.http.start()  # HA starts it with the frontend; the harness has none
        user = await hass.auth.async_create_user("bench", group_ids=["system-admin"])
        refresh = await hass.auth.async_create_refresh_token(user, common.CLIENT_ID)
        token = hass.auth.async_create_access_token(refresh)

        entry = common.MockConfigEntry(
            domain="hsi",
            data={"url": f"http://127.0.0.1:{fake_port}", "api_key": None, "verify_ssl": True},
            subentries_data=[
                config_entries.ConfigSubentryData(
                    data={"camera_entity": f"camera.bench_{i}", "interval": 0},
                    subentry_type="camera",
                    title=f"Bench {i}",
                    unique_id=f"camera.bench_{i}",
                )
                for i in range(CAMERAS)
            ],
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id), entry.reason
        await hass.async_block_till_done()
        store = entry.runtime_data.store
        cameras = list(entry.subentries)
        person = hsi_client.AnalyzedObject("person", 0.9, 0, hsi_client.BoundingBox(4, 3, 50, 90))
        now = datetime.now(UTC)

        def event(index: int, moment: datetime) -> Any:
            return models.SecurityEvent(
                event_id=f"bench{index:06d}",
                entry_id=entry.entry_id,
                camera_id=cameras[index % CAMERAS],
                camera_name=f"Bench {index % CAMERAS}",
                camera_entity=None,
                trigger="bench",
                started_at=moment,
                ended_at=moment + timedelta(seconds=30),
                objects=[person],
                risk=hsi_client.RiskAssessment.build(
                    LEVEL_SCORES[index % 7 % 4], "Someone at the door", "bench", source="rules"
                ),
            )

        # N events over the last 20 days (inside the default retention of 30 days).
        span = timedelta(days=20) / args.events
        fill_start = time.perf_counter()
        small = _jpeg(64, 48)
        for index in range(args.events):
            # The newest page shows what signing costs: a snapshot and 3 key frames per event.
            images = args.events - index <= IMAGES_NEWEST
            await store.async_add(
                event(index, now - timedelta(days=20) + index * span),
                small if images else None,
                (small, small, small) if images else (),
            )
        fill_s = time.perf_counter() - fill_start
        print(f"stored {args.events} events in {fill_s:.1f} s", file=sys.stderr)

        flt = store_module.EventFilter
        camera_filter = flt(cameras=frozenset({cameras[0]}), min_level="high")
        half, cursor = 0, None
        while half < args.events // 2:  # the cursor after half of the events, newest first
            page, cursor = await store.async_list(flt(), cursor=cursor, limit=200)
            half += len(page)

        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"http://127.0.0.1:{port}/api/websocket")
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json({"type": "auth", "access_token": token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            client = Client(ws)

            def stored(camera: int | None = None, min_score: int = 0) -> int:
                """How many of the stored events match (as `event` built them)."""
                return sum(
                    (camera is None or index % CAMERAS == camera)
                    and LEVEL_SCORES[index % 7 % 4] >= min_score
                    for index in range(args.events)
                )

            async def ws_list(matching: int | None = None, **filters: Any) -> None:
                answer = await client.command({"type": "hsi/events/list", **filters})
                expected = min(50, args.events if matching is None else matching)
                assert len(answer["result"]["events"]) == expected, (filters, expected)

            async def ws_cameras() -> None:
                await client.command({"type": "hsi/cameras"})

            n = args.requests
            results.append(("hsi/cameras: websocket round trip", await _timed(ws_cameras, n)))
            signed_paths = _mod("custom_components.hsi.websocket_api").SIGNED_PATHS

            async def ws_list_unsigned() -> None:
                hass.data.pop(signed_paths, None)  # as the first time these events are listed
                await ws_list()

            results.append(
                (
                    "list, 50 newest, 4 images each, first signing (websocket)",
                    await _timed(ws_list_unsigned, n),
                )
            )
            results.append(
                (
                    "list, 50 newest, 4 images each, signatures reused (websocket)",
                    await _timed(ws_list, n),
                )
            )
            results.append(
                (
                    "list, camera + min level high (websocket)",
                    await _timed(
                        lambda: ws_list(
                            stored(0, LEVEL_SCORES[2]), cameras=[cameras[0]], min_level="high"
                        ),
                        n,
                    ),
                )
            )
            results.append(
                (
                    "list, page after half, no images (websocket)",
                    await _timed(lambda: ws_list(args.events - half, cursor=cursor), n),
                )
            )
            results.append(
                (
                    "store.async_list, 50 newest (in-process)",
                    await _timed(lambda: store.async_list(flt()), n),
                )
            )
            results.append(
                (
                    "store.async_list, camera + level (in-process)",
                    await _timed(lambda: store.async_list(camera_filter), n),
                )
            )

            # New events only: at 10 000 stored, each new event makes retention remove the
            # oldest one, a `removed` message this subscription need not carry.
            await client.command({"type": "hsi/events/subscribe", "start": now.isoformat()})
            snapshot = _jpeg()
            for label, image in (("no image", None), ("640x480 snapshot", snapshot)):
                times: list[float] = []
                for index in range(args.publishes):
                    received = asyncio.ensure_future(ws.receive_json())
                    await asyncio.sleep(0)  # the reader waits before the event exists
                    new = event(
                        args.events + len(results) * args.publishes + index, datetime.now(UTC)
                    )
                    start = time.perf_counter()
                    await store.async_add(new, image)
                    message = await received
                    times.append((time.perf_counter() - start) * 1000)
                    assert message["event"]["event"]["event_id"] == new.event_id
                results.append((f"event → subscriber message, {label}", times))
            await ws.close()
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await hass.http.stop()
        await hass.async_stop(force=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events stored (default 10000)")
    parser.add_argument("--requests", type=int, default=200, help="list calls per case")
    parser.add_argument("--publishes", type=int, default=100, help="events published per case")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.events} events stored")
    print("| case | n | p50 ms | p95 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for label, times in results:
        print(
            f"| {label} | {len(times)} | {statistics.median(times):.2f} | "
            f"{percentile(times, 95):.2f} | {max(times):.2f} |"
        )


if __name__ == "__main__":
    main()
