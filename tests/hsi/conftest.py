"""Fixtures of the integration tests: the fake server running, the real server, cameras.

The fake server is the client library's (hsi_client.testing); tests import it from there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator
import contextlib
from dataclasses import dataclass
from datetime import timedelta
import io
import json
import logging
import os
from pathlib import Path
import socket
import subprocess
import time
from typing import Any
from unittest.mock import patch
import urllib.error
import urllib.request

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import FakeServer
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
import pytest_socket

from custom_components.hsi import const, store
from custom_components.hsi.const import (
    CONF_BATCH_WINDOW,
    CONF_BURST_FRAMES,
    CONF_CAMERA,
    CONF_CLASSES,
    CONF_CONFIDENCE,
    CONF_COOLDOWN,
    CONF_IDLE_TIMEOUT,
    CONF_INTERVAL,
    CONF_TRIGGER,
    CONF_VERIFY_SSL,
    DOMAIN,
    EVENT_DETECTION,
    EVENT_SECURITY,
    SUBENTRY_CAMERA,
)
from custom_components.hsi.store import EventFilter
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigSubentryData, SubentryFlowResult
from homeassistant.const import CONF_API_KEY, CONF_URL, STATE_OFF, STATE_ON, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMERA = "camera.demo_camera"
MOTION = "input_boolean.motion"
# How Home Assistant words its warning for a use that a later release turns into an error
# (homeassistant.helpers.frame.report_usage), e.g. "... This will stop working in Home Assistant
# 2025.12.0": the suite runs on an older HA than users do, so such a warning fails the test.
FORWARD_INCOMPATIBLE = "Detected that custom integration"


@pytest.fixture(autouse=True)
def forward_compatible(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test when Home Assistant warned that this integration's code stops working."""
    # The HA test plugin's `caplog` captures at DEBUG (slow, very noisy); tests run at INFO.
    caplog.set_level(logging.INFO)
    yield
    reports = [
        record.getMessage()
        for when in ("setup", "call", "teardown")
        for record in caplog.get_records(when)
        if FORWARD_INCOMPATIBLE in record.getMessage()
    ]
    if reports:
        pytest.fail(
            f"Home Assistant reported {len(reports)} use(s) that a later release breaks:\n"
            + "\n".join(dict.fromkeys(reports)),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    forward_compatible: None, enable_custom_integrations: None
) -> None:
    """Load custom_components/ in every test.

    forward_compatible comes first: set up before `hass`, it checks the log after `hass` stopped.
    """


@pytest.fixture(autouse=True)
def fast_pipeline() -> Iterator[None]:
    """No real waiting between snapshots or analysis retries."""
    with (
        patch.object(const, "DEFAULT_BURST_SPACING", 0),
        patch.object(const, "ANALYZE_RETRY_DELAY", 0),
        patch.object(const, "MAX_RETRY_AFTER", 0),
    ):
        yield


@pytest.fixture(autouse=True)
def event_files(tmp_path: Path) -> Iterator[Path]:
    """Event databases and images in the test's own folder, not in the shared test config.

    Returns the image root (`<media>/hsi`).
    """
    root = tmp_path / "hsi-files"

    def paths(hass: HomeAssistant, entry_id: str) -> tuple[Path, Path]:
        return root / ".storage" / f"{DOMAIN}.{entry_id}.events.db", root / "media" / DOMAIN

    with patch.object(store, "store_paths", paths):
        yield root / "media" / DOMAIN


async def action(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    """Call one of our actions and return its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def start_subentry_reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str
) -> SubentryFlowResult:
    """Start a subentry's reconfigure flow, the same call on every supported HA version.

    MockConfigEntry.start_subentry_reconfigure_flow took (hass, subentry_type, subentry_id) in the
    test plugin for HA 2025.4 and takes (hass, subentry_id) for HA 2026.x; both start this flow.
    """
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, entry.subentries[subentry_id].subentry_type),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


async def setup_integration(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add and set up an entry; fail when it does not load."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
def security_events(hass: HomeAssistant) -> list[Event]:
    """hsi_security_event bus events, as they are fired."""
    return async_capture_events(hass, EVENT_SECURITY)


@pytest.fixture
def detection_events(hass: HomeAssistant) -> list[Event]:
    """hsi_detection bus events, as they are fired."""
    return async_capture_events(hass, EVENT_DETECTION)


async def motion(hass: HomeAssistant) -> None:
    """Motion on (a burst), then off."""
    hass.states.async_set(MOTION, STATE_ON)
    await hass.async_block_till_done()
    hass.states.async_set(MOTION, STATE_OFF)
    await hass.async_block_till_done()


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Move the clock and let timers run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def stored(entry: MockConfigEntry) -> list[str]:
    """The ids of every event record of the entry's store."""
    events, _ = await entry.runtime_data.store.async_list(EventFilter(), limit=1000)
    return [event.event_id for event in events]


def jpeg(width: int = 320, height: int = 240, colour: tuple[int, int, int] = (90, 90, 90)) -> bytes:
    """A small JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
async def fake_server(socket_enabled: None, aiohttp_server: Any) -> FakeServer:
    """The library's fake server (hsi_client.testing) on 127.0.0.1, run by HA's aiohttp_server.

    It answers /embed only when a test turns `embed_supported` on: the integration falls back to
    /embed when /detect gives no embedding, which most tests do not expect.
    """
    server = FakeServer(embed_supported=False)
    running = await aiohttp_server(server.app())
    server.url = str(running.make_url("")).rstrip("/")
    return server


def camera_subentry(
    camera: str = CAMERA, title: str = "Front door", **data: Any
) -> ConfigSubentryData:
    """A camera subentry for MockConfigEntry."""
    base: dict[str, Any] = {
        CONF_CAMERA: camera,
        CONF_TRIGGER: MOTION,
        CONF_INTERVAL: 0,
        CONF_CLASSES: ["person", "vehicle", "animal"],
        CONF_CONFIDENCE: 0.5,
        CONF_BURST_FRAMES: 1,
    }
    return ConfigSubentryData(
        data=base | data, subentry_type=SUBENTRY_CAMERA, title=title, unique_id=camera
    )


def make_entry(
    url: str,
    *,
    api_key: str | None = None,
    subentries: list[ConfigSubentryData] | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """A config entry for a server."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HSI AI server (127.0.0.1)",
        unique_id=url,
        data={CONF_URL: url, CONF_API_KEY: api_key, CONF_VERIFY_SSL: True},
        options={CONF_BATCH_WINDOW: 60, CONF_IDLE_TIMEOUT: 5, CONF_COOLDOWN: 300} | (options or {}),
        subentries_data=subentries if subentries is not None else [camera_subentry()],
    )


@pytest.fixture
async def demo_camera(hass: HomeAssistant) -> AsyncGenerator[str]:
    """The demo camera and a motion input_boolean."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"motion": {"name": "Motion"}}}
    )
    with patch(
        "homeassistant.components.demo.COMPONENTS_WITH_CONFIG_ENTRY_DEMO_PLATFORM",
        [Platform.CAMERA],
    ):
        demo = MockConfigEntry(domain="demo")
        demo.add_to_hass(hass)
        assert await hass.config_entries.async_setup(demo.entry_id)
        await hass.async_block_till_done()
        assert hass.states.get(CAMERA) is not None
        yield CAMERA
        await hass.config_entries.async_unload(demo.entry_id)


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> AsyncGenerator[MockConfigEntry]:
    """The integration loaded against the fake server with one camera."""
    return await setup_integration(hass, make_entry(fake_server.url))


# The real server ---------------------------------------------------------------------------


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RealServer:
    """The ai_server subprocess."""

    url: str
    process: subprocess.Popen[bytes]


def _start_real_server(
    tmp_path_factory: pytest.TempPathFactory, api_key: str | None = None, profile: str = "tiny"
) -> Generator[RealServer]:
    python = os.environ.get("HSI_SERVER_PYTHON")
    if not python:
        pytest.fail(
            "HSI_SERVER_PYTHON is not set: point it at the AI server's python "
            "(make test-ha sets it to .venv/server/bin/python)"
        )
    # Session fixtures start before the test's socket_enabled: allow sockets meanwhile.
    pytest_socket.enable_socket()
    port = _free_port()
    env = os.environ | {"HSI_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "hsi-cache")}
    if api_key:
        env["HSI_API_KEY"] = api_key
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                python,
                "-m",
                "ai_server",
                "serve",
                "--profile",
                profile,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
    finally:
        pytest_socket.socket_allow_hosts(["127.0.0.1"])
        pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield RealServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ai_server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                status = json.loads(response.read())["status"]
        except (urllib.error.URLError, OSError, ValueError):
            status = None
        if status == "healthy":
            break
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"ai_server never became healthy ({status}):\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Generator[RealServer]:
    """One real server (tiny profile) for the whole session."""
    yield from _start_real_server(tmp_path_factory)


@pytest.fixture(scope="session")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Generator[RealServer]:
    """The real server with scripted models (objects read from scene frames): the scene replays."""
    yield from _start_real_server(tmp_path_factory, profile="scripted")


@pytest.fixture(scope="session")
def real_server_with_key(tmp_path_factory: pytest.TempPathFactory) -> Generator[RealServer]:
    """A real server that requires an API key."""
    yield from _start_real_server(tmp_path_factory, api_key="s3cret")
