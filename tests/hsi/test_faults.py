"""Injected faults: the integration recovers by itself, with no event lost and none duplicated.

Each test counts the records in the entry's store and the `hsi_security_event` bus events:
- the REAL server process (scripted profile) SIGKILLed and restarted on the same port, during
  a burst and during an /analyze: entities go unavailable and come back, the "server
  unreachable" repair issue is raised after the grace period and cleared when it answers again;
- a server that answers /analyze slowly, with 500s, garbage, a proxy's HTML page, a proxy's JSON
  under a wrong label, or closes the connection mid-body: the event falls back to the rules
  (marked so), exactly once; a good analysis under a wrong label is used;
- analyses held by the server (a slow LLM) while frames keep being answered (separate budgets);
- Home Assistant stopping (the entry unloaded) with a batch open, with an /analyze in flight and
  with a preliminary alert waiting for its analysis, then set up again;
- a full disk while the images are saved: an error logged once, the record kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from datetime import timedelta
import errno
import os
from pathlib import Path
import signal
import subprocess
import threading
from typing import Any
from unittest.mock import patch

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from hsi_client import client as hsi_client_module
from hsi_client.testing import JPEG, Answer, FakeServer, detection, scene_frame
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    setup_test_component_platform,
)
import pytest_socket

from custom_components.hsi import const
from custom_components.hsi.const import DOMAIN
from custom_components.hsi.coordinator import ISSUE_UNREACHABLE
from homeassistant.components.camera import Camera
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component

from .conftest import (
    REPO_ROOT,
    _free_port,
    _wait_healthy,
    advance,
    camera_subentry,
    make_entry,
    motion,
    setup_integration,
    stored,
)

SCENE_CAMERA = "camera.scene_front"
RISK = "sensor.front_door_risk_score"
CONNECTIVITY = "binary_sensor.hsi_ai_server_127_0_0_1_connectivity"
FALLBACK = "Server analysis unavailable"
VISITOR = [{"class": "person", "identity": "visitor-1", "confidence": 0.8}]


def unreachable_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{ISSUE_UNREACHABLE}_{entry.entry_id}")


# A real server that a test may kill and start again ---------------------------------------


class KillableServer:
    """The ai_server subprocess (scripted profile) on a fixed port: kill it, start it again."""

    def __init__(self, log_dir: Path, cache: Path) -> None:
        python = os.environ.get("HSI_SERVER_PYTHON")
        if not python:
            pytest.fail("HSI_SERVER_PYTHON is not set: point it at the AI server's python")
        self.python = python
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.cache = cache
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the process and wait until it answers healthy (real time)."""
        self.starts += 1
        log = self.log_dir / f"server-{self.starts}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "ai_server",
                    "serve",
                    "--profile",
                    "scripted",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env=os.environ | {"HSI_CACHE_DIR": str(self.cache)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(self.url, self.process, log, timeout=60)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, connections cut."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        """SIGSTOP: the process hangs, its socket still accepts connections."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def killable_server(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, socket_enabled: None
) -> Generator[KillableServer]:
    server = KillableServer(tmp_path, tmp_path_factory.getbasetemp() / "hsi-cache")
    pytest_socket.socket_allow_hosts(["127.0.0.1"])
    server.start()
    try:
        yield server
    finally:
        server.close()


class SceneCamera(Camera):
    """A camera whose snapshot is a scene frame (the scripted server detects what it shows)."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        super().__init__()
        self.content_type = "image/png"
        self._attr_name = "Scene front"
        self.entity_id = SCENE_CAMERA
        self.objects = objects

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        return scene_frame(self.objects)


@pytest.fixture
async def scene_camera(hass: HomeAssistant) -> SceneCamera:
    """A scene camera showing a visitor, and the motion input_boolean."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"motion": {"name": "Motion"}}}
    )
    camera = SceneCamera(list(VISITOR))
    setup_test_component_platform(hass, "camera", [camera])
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    return camera


async def real_entry(hass: HomeAssistant, url: str, **camera: Any) -> MockConfigEntry:
    return await setup_integration(
        hass, make_entry(url, subentries=[camera_subentry(SCENE_CAMERA, **camera)])
    )


def spy(
    entry: MockConfigEntry,
    name: str,
    before: Callable[[int], Awaitable[None] | None],
) -> list[int]:
    """Wrap a client method: `before(n)` runs before the n-th call (1-based)."""
    client = entry.runtime_data.client
    original = getattr(client, name)
    calls: list[int] = []

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        result = before(len(calls))
        if result is not None:
            await result
        return await original(*args, **kwargs)

    setattr(client, name, wrapped)
    return calls


async def test_server_killed_during_a_burst_and_restarted(
    hass: HomeAssistant,
    killable_server: KillableServer,
    scene_camera: SceneCamera,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """SIGKILL after the burst's first frame: the others are kept undetected, the entities go
    unavailable; the server comes back on the same port before the batch closes: the real
    /analyze scores the whole event, recorded once; the entities come back."""
    entry = await real_entry(hass, killable_server.url, burst_frames=3)

    def kill_after_first(call: int) -> None:
        if call == 2:
            killable_server.kill()

    detects = spy(entry, "detect", kill_after_first)
    await motion(hass)
    assert len(detects) == 2  # the second frame failed: the burst ends, its frame is kept
    (watcher,) = entry.runtime_data.watchers.values()
    assert watcher.state.batch_open
    assert hass.states.get(RISK).state == STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF

    killable_server.start()  # same port
    await advance(hass, freezer, 6)  # idle timeout: the batch closes
    (event,) = security_events
    assert FALLBACK not in event.data["reasoning"]  # the restarted server analysed it
    assert event.data["frames"] == 2
    assert await stored(entry) == [event.data["event_id"]]
    record = await entry.runtime_data.store.async_get(event.data["event_id"])
    assert record is not None
    assert record.server_timings_ms

    await advance(hass, freezer, 120)  # the server's next poll (backed off while it was down)
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert hass.states.get(RISK).state == str(event.data["risk_score"])
    assert len(security_events) == 1
    assert unreachable_issue(hass, entry) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_server_killed_during_analyze(
    hass: HomeAssistant,
    killable_server: KillableServer,
    scene_camera: SceneCamera,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """The server hangs, then dies, while it holds the /analyze request; it stays down for the
    retries: the event is scored by the rules (marked so), exactly once. After the grace period
    the repair issue is raised; the server restarts on the same port: the issue is cleared, the
    entities come back and the next event is the server's again."""
    entry = await real_entry(hass, killable_server.url)

    def kill_in_flight(call: int) -> None:
        if call == 1:
            killable_server.stop()  # the request is sent and waits for an answer...
            threading.Timer(0.5, killable_server.kill).start()  # ...when the process dies

    analyses = spy(entry, "analyze", kill_in_flight)
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(analyses) == 3  # the first cut mid-request, two retries refused
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert FALLBACK in event.data["reasoning"]
    assert await stored(entry) == [event.data["event_id"]]
    assert hass.states.get(RISK).state == STATE_UNAVAILABLE
    assert unreachable_issue(hass, entry) is None  # not yet: within the grace period

    for _ in range(3):  # past the 5 minutes' grace period, polls backed off
        await advance(hass, freezer, 150)
    issue = unreachable_issue(hass, entry)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["url"] == killable_server.url

    killable_server.start()
    await advance(hass, freezer, 400)  # the longest back-off
    assert unreachable_issue(hass, entry) is None
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert hass.states.get(RISK).state == str(event.data["risk_score"])
    assert len(security_events) == 1
    assert await stored(entry) == [event.data["event_id"]]

    scene_camera.objects = [{"class": "car", "identity": "car-1", "confidence": 0.8}]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(security_events) == 2
    assert FALLBACK not in security_events[1].data["reasoning"]
    assert len(await stored(entry)) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)


# A server that misbehaves on purpose ------------------------------------------------------


async def settle(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float, done: Callable[[], bool]
) -> None:
    """Move the clock by `seconds`, then in half seconds until `done()`.

    The frozen clock is also the event loop's: a client timeout or a slow answer passes only as
    the test moves the clock, so this does not wait for the background tasks (they may be
    waiting for the clock) but lets real time pass for the loopback traffic between steps.
    """
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    for _ in range(400):
        for _ in range(5):
            await asyncio.sleep(0)
        if done():
            break
        threading.Event().wait(0.01)  # real time: the server's side of the socket
        freezer.tick(timedelta(seconds=0.5))
        async_fire_time_changed(hass)
    else:
        pytest.fail("the event was never recorded")
    await hass.async_block_till_done(wait_background_tasks=True)


async def _cut_mid_body(request: web.Request) -> web.StreamResponse:
    """Announce a long JSON body, send its start, close the connection."""
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Content-Length": "4096"}
    )
    await response.prepare(request)
    await response.write(b'{"objects": [{"class": "person", "confid')
    assert request.transport is not None
    request.transport.close()
    return response


async def _garbage(request: web.Request) -> web.StreamResponse:
    return web.Response(
        status=200, body=b"\x00\xff{not json at all", content_type="application/json"
    )


async def _wrong_shape(request: web.Request) -> web.StreamResponse:
    return web.json_response({"objects": "none", "risk": 17})


MISBEHAVIOURS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]] | Answer] = {
    "slow": Answer(json={}, delay=3),  # past the client's timeout (patched to 0.3 s)
    "500": Answer(500, {"error": {"code": "internal", "message": "boom"}}),
    "500 html": Answer(500, text="<html>Internal Server Error</html>"),
    "garbage": _garbage,
    "wrong shape": _wrong_shape,
    "proxy page": Answer(200, text="<html><body>Please log in to the portal</body></html>"),
    # JSON, but a proxy's own (not an analysis) under a wrong label.
    "mislabelled wrong shape": Answer(
        text='{"message": "upstream down"}', content_type="text/plain"
    ),
    "cut mid-body": _cut_mid_body,
}


@pytest.mark.parametrize("fault", list(MISBEHAVIOURS))
async def test_misbehaving_analyze_falls_back_to_rules_once(
    hass: HomeAssistant,
    demo_camera: str,
    socket_enabled: None,
    aiohttp_server: Any,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
    fault: str,
) -> None:
    """Whatever /analyze answers, the event is recorded once, from the rules, marked so; the
    next event (the server well again) is the server's, a separate record."""
    fake = FakeServer(embed_supported=False)
    fake.default_detections = [detection("person", 0.8)]
    misbehaving = {"on": True}
    analyze_requests: list[str] = []
    behaviour = MISBEHAVIOURS[fault]

    @web.middleware
    async def misbehave(request: web.Request, handler: Any) -> web.StreamResponse:
        if misbehaving["on"] and (request.method, request.path) == ("POST", "/analyze"):
            await request.read()
            analyze_requests.append(request.path)
            if isinstance(behaviour, Answer):
                return await behaviour.response()
            return await behaviour(request)
        return await handler(request)

    app = fake.app()
    app.middlewares.insert(0, misbehave)
    running = await aiohttp_server(app)
    fake.url = str(running.make_url("")).rstrip("/")

    timeout = 0.3 if fault == "slow" else hsi_client_module.ANALYZE_TIMEOUT
    with patch.object(hsi_client_module, "ANALYZE_TIMEOUT", timeout):
        entry = await setup_integration(hass, make_entry(fake.url))
        attempts = spy(entry, "analyze", lambda call: None)
        await motion(hass)
        await settle(hass, freezer, 6, lambda: bool(security_events))
    assert len(attempts) == 3  # bounded retries, then the rules
    assert analyze_requests  # the server did get it (a slow answer may be given up before)
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert FALLBACK in event.data["reasoning"]
    assert event.data["frames"] == 1
    assert await stored(entry) == [event.data["event_id"]]

    misbehaving["on"] = False
    await advance(hass, freezer, 400)  # past the cooldown: a new event
    fake.default_detections = [detection("car", 0.8)]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(security_events) == 2
    assert security_events[1].data["source"] == "llm"  # the fake server's analysis
    assert len(await stored(entry)) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("label", ["text/plain", "text/html"])
async def test_a_good_analysis_under_a_wrong_content_type_is_used(
    hass: HomeAssistant,
    demo_camera: str,
    socket_enabled: None,
    aiohttp_server: Any,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
    caplog: pytest.LogCaptureFixture,
    label: str,
) -> None:
    """A proxy relabels the server's (valid) analysis: it is still the server's analysis, not
    the rules', recorded once, with a warning naming the label."""
    fake = FakeServer(embed_supported=False)
    fake.default_detections = [detection("person", 0.8)]

    @web.middleware
    async def relabel(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if (request.method, request.path) == ("POST", "/analyze"):
            assert isinstance(response, web.Response)
            response.content_type = label
        return response

    app = fake.app()
    app.middlewares.insert(0, relabel)
    running = await aiohttp_server(app)
    fake.url = str(running.make_url("")).rstrip("/")
    entry = await setup_integration(hass, make_entry(fake.url))
    await motion(hass)
    await settle(hass, freezer, 6, lambda: bool(security_events))
    (event,) = security_events
    assert event.data["source"] == "llm"  # the fake server's analysis, not the fallback
    assert await stored(entry) == [event.data["event_id"]]
    assert any(
        "/analyze" in r.getMessage() and f"content type {label}" in r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING"
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_frames_are_answered_while_analyses_are_held(
    hass: HomeAssistant, demo_camera: str, socket_enabled: None, aiohttp_server: Any
) -> None:
    """Frames and analyses have separate call budgets: with more analyses than the old shared
    budget (4) held by the server, a frame's /detect is still answered at once; the server
    never holds more than MAX_CONCURRENT_ANALYSES of them; all finish once released."""
    fake = FakeServer(embed_supported=False)
    fake.default_detections = [detection("person", 0.8)]
    release = asyncio.Event()
    budget_full = asyncio.Event()
    held: list[str] = []
    most_held = 0

    @web.middleware
    async def hold_analyses(request: web.Request, handler: Any) -> web.StreamResponse:
        nonlocal most_held
        if (request.method, request.path) != ("POST", "/analyze"):
            return await handler(request)
        held.append(request.path)
        most_held = max(most_held, len(held))
        if len(held) == const.MAX_CONCURRENT_ANALYSES:
            budget_full.set()
        try:
            await release.wait()  # a slow LLM
            return await handler(request)
        finally:
            held.pop()

    app = fake.app()
    app.middlewares.insert(0, hold_analyses)
    running = await aiohttp_server(app)
    fake.url = str(running.make_url("")).rstrip("/")
    entry = await setup_integration(hass, make_entry(fake.url))
    analyzer = entry.runtime_data.analyzer
    (watcher,) = entry.runtime_data.watchers.values()
    pictures = [
        hass.async_create_task(analyzer.analyze_picture(JPEG, watcher.settings, "action"))
        for _ in range(4)
    ]
    # Hang guards, not timings: without separate budgets the frame below waits for ever.
    async with asyncio.timeout(30):
        await budget_full.wait()
        result = await analyzer.detect(JPEG, 0.5)
    assert [d.label for d in result.detections] == ["person"]
    assert not any(task.done() for task in pictures)  # the analyses are still held
    release.set()
    async with asyncio.timeout(30):
        outcomes = await asyncio.gather(*pictures)
    assert [o.event.risk.source for o in outcomes] == ["llm"] * 4  # the server's, no fallback
    assert most_held == const.MAX_CONCURRENT_ANALYSES
    assert await hass.config_entries.async_unload(entry.entry_id)


# Home Assistant stopping and starting again -------------------------------------------------


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What a restart does to the integration: unload, then set up again (same store)."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def test_restart_with_a_batch_open(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """A batch open at shutdown is flushed (scored by the rules, marked so), recorded once; it
    is still there after the start, and nothing of it is recorded again."""
    fake_server.default_detections = [detection("person", 0.7)]
    await motion(hass)
    (watcher,) = setup_entry.runtime_data.watchers.values()
    assert watcher.state.batch_open
    await _restart(hass, setup_entry)
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert "integration unloaded" in event.data["reasoning"]
    assert await stored(setup_entry) == [event.data["event_id"]]
    await advance(hass, freezer, 120)  # the old batch's timers are gone
    assert len(security_events) == 1
    assert fake_server.count("/analyze") == 0
    assert await stored(setup_entry) == [event.data["event_id"]]


async def test_restart_with_an_analysis_in_flight(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """The batch closed and its /analyze is running when HA stops: the event is not dropped
    with the cancelled call, it is recorded from the rules, once."""
    fake_server.default_detections = [detection("person", 0.7)]
    fake_server.answer("POST", "/analyze", Answer(json={}, delay=60))
    await motion(hass)
    freezer.tick(timedelta(seconds=6))
    async_fire_time_changed(hass)
    for _ in range(400):  # the batch closed; /analyze waits for its answer (frozen clock)
        await asyncio.sleep(0)
        if fake_server.count("/analyze"):
            break
        threading.Event().wait(0.01)
    assert fake_server.count("/analyze") == 1
    assert not security_events
    await _restart(hass, setup_entry)
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert "integration unloaded" in event.data["reasoning"]
    assert await stored(setup_entry) == [event.data["event_id"]]
    await advance(hass, freezer, 120)
    assert len(security_events) == 1
    assert await stored(setup_entry) == [event.data["event_id"]]


async def test_restart_with_a_preliminary_alert_pending(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """A confident person raised the preliminary event and its alert; HA stops before the
    full analysis: the open batch updates that same record (no second record, no second
    alert), and it stays one record after the start."""
    fake_server.default_detections = [detection("person", 0.95)]
    await motion(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    (preliminary,) = security_events
    assert preliminary.data["preliminary"] is True
    notifications = [
        n for n in hass.data.get("persistent_notification", {}) if str(n).startswith(DOMAIN)
    ]
    await _restart(hass, setup_entry)
    assert len(security_events) == 2
    final = security_events[1].data
    assert final["event_id"] == preliminary.data["event_id"]
    assert final["update"] is True
    assert final["preliminary"] is False
    assert final["notify"] is False  # no second alert for the same event
    assert await stored(setup_entry) == [final["event_id"]]
    assert [
        n for n in hass.data.get("persistent_notification", {}) if str(n).startswith(DOMAIN)
    ] == notifications
    await advance(hass, freezer, 120)
    assert len(security_events) == 2
    assert await stored(setup_entry) == [final["event_id"]]


# A full disk -------------------------------------------------------------------------------


def files(root: Path) -> list[Path]:
    """Every file under a folder."""
    return [path for path in root.rglob("*") if path.is_file()]


async def test_full_disk_while_saving_images(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
    event_files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ENOSPC half-way through an image: the error is logged once, the record is kept without
    images, no partial file is left; once there is room again, images are saved again."""
    original = Path.write_bytes
    full = {"on": True}

    def write_bytes(self: Path, data: Any) -> int:
        if full["on"] and self.name.endswith(".tmp"):
            with self.open("wb") as out:
                out.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return original(self, data)

    fake_server.default_detections = [detection("person", 0.7)]
    with patch.object(Path, "write_bytes", write_bytes):
        await motion(hass)
        await advance(hass, freezer, 6)
        (event,) = security_events
        assert event.data["images"] == []
        assert await stored(setup_entry) == [event.data["event_id"]]
        errors = [r for r in caplog.records if "Cannot store the images" in r.getMessage()]
        assert len(errors) == 1
        assert "No space left on device" in errors[0].getMessage()
        assert not files(event_files)  # no partial file left behind

        full["on"] = False
        await advance(hass, freezer, 400)
        fake_server.default_detections = [detection("car", 0.8)]
        await motion(hass)
        await advance(hass, freezer, 6)
    assert len(security_events) == 2
    assert "snapshot" in security_events[1].data["images"]
    assert len(await stored(setup_entry)) == 2
    assert not [p for p in files(event_files) if p.name.endswith(".tmp")]
