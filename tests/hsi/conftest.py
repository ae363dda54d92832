"""Fixtures of the integration tests: a scriptable fake server, the real server, cameras."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Iterator
import contextlib
from dataclasses import dataclass, field
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

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
import pytest_socket

from custom_components.hsi import const
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


def jpeg(width: int = 320, height: int = 240, colour: tuple[int, int, int] = (90, 90, 90)) -> bytes:
    """A small JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG")
    return out.getvalue()


def unit(index: int, dim: int = 8) -> list[float]:
    """A unit embedding along one axis."""
    return [1.0 if i == index else 0.0 for i in range(dim)]


def detection(
    label: str = "person",
    confidence: float = 0.8,
    embedding: list[float] | None = None,
    box: tuple[float, float, float, float] = (40, 30, 100, 150),
) -> dict[str, Any]:
    """One /detect entry."""
    data: dict[str, Any] = {
        "class": label,
        "confidence": confidence,
        "bbox": dict(zip(("x", "y", "width", "height"), box, strict=True)),
    }
    if embedding is not None:
        data["embedding"] = embedding
    return data


HEALTHY: dict[str, Any] = {
    "status": "healthy",
    "model_loaded": True,
    "device": "cpu",
    "cuda_available": False,
    "vram_used_gb": 0.0,
    "models": {"detector": {"loaded": True, "device": "cpu"}, "llm": {"loaded": False}},
    "version": "0.1.0",
}


@dataclass
class FakeServer:
    """A scriptable HSI server: what the real one cannot be made to do on demand."""

    url: str = ""
    api_key: str | None = None
    health: dict[str, Any] = field(default_factory=lambda: dict(HEALTHY))
    health_status: int = 200
    down: bool = False
    detections: list[list[dict[str, Any]]] = field(default_factory=list)
    default_detections: list[dict[str, Any]] = field(default_factory=list)
    detect_busy: int = 0  # answer 503 queue_full (Retry-After: 1) this many times first
    analyze_status: int = 200
    analyze_failures: int = 0  # answer 503 this many times first
    analyze_risk: dict[str, Any] | None = None
    embed_vector: list[float] | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    analyze_calls: list[dict[str, Any]] = field(default_factory=list)

    def error(self, status: int, code: str) -> web.Response:
        """The contract's error document."""
        return web.json_response({"error": {"code": code, "message": code}}, status=status)

    def _auth_failed(self, request: web.Request) -> bool:
        if self.api_key is None:
            return False
        return request.headers.get("Authorization") != f"Bearer {self.api_key}"

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[..., Any]) -> Any:
        """Record, fail when down, check the key."""
        self.requests.append((request.path, dict(request.query)))
        if self.down:
            raise web.HTTPServiceUnavailable(text="down")
        if request.path != "/health" and self._auth_failed(request):
            return self.error(401, "unauthorized")
        return await handler(request)

    async def handle_health(self, request: web.Request) -> web.Response:
        """GET /health."""
        return web.json_response(self.health, status=self.health_status)

    async def handle_models(self, request: web.Request) -> web.Response:
        """GET /models."""
        return web.json_response({"device": "cpu", "models": self.health["models"]})

    async def handle_detect(self, request: web.Request) -> web.Response:
        """POST /detect: the next scripted answer."""
        body = await request.read()
        if not body:
            return self.error(400, "no_image")
        if self.detect_busy > 0:
            self.detect_busy -= 1
            response = self.error(503, "queue_full")
            response.headers["Retry-After"] = "1"
            return response
        found = self.detections.pop(0) if self.detections else self.default_detections
        if request.query.get("embed") != "1":
            found = [{k: v for k, v in d.items() if k != "embedding"} for d in found]
        return web.json_response(
            {
                "detections": found,
                "inference_time_ms": 12.5,
                "image_width": 320,
                "image_height": 240,
            }
        )

    async def handle_analyze(self, request: web.Request) -> web.Response:
        """POST /analyze (multipart)."""
        frames: list[bytes] = []
        metadata: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if part.name == "frame":
                frames.append(bytes(await part.read()))
            elif part.name == "metadata":
                metadata = json.loads(await part.text())
        self.analyze_calls.append({"frames": len(frames), "metadata": metadata})
        if self.analyze_failures > 0:
            self.analyze_failures -= 1
            return self.error(503, "busy")
        if self.analyze_status != 200:
            return self.error(self.analyze_status, "failed")
        risk = self.analyze_risk or {
            "risk_score": 72,
            "risk_level": "high",
            "summary": "Unknown person at the door",
            "reasoning": "A person nobody knows stands at the door at night.",
            "risk_factors": [{"factor": "person", "contribution": 40, "description": "person"}],
            "recommended_action": "Check the camera",
            "source": "llm",
            "flags": [{"type": "night", "description": "after dark", "severity": "warning"}],
        }
        return web.json_response(
            {
                "objects": [
                    {
                        "class": "person",
                        "confidence": 0.93,
                        "frame": 0,
                        "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
                        "attributes": {"clothing": "dark jacket"},
                    }
                ],
                "description": "A person in a dark jacket at the front door.",
                "risk": risk,
                "timings_ms": {"total": 321.0},
                "models": {"llm": "tiny"},
            }
        )

    async def handle_embed(self, request: web.Request) -> web.Response:
        """POST /embed."""
        if self.embed_vector is None:
            return self.error(404, "not_found")
        body = await request.json()
        count = len(body.get("images_base64", []))
        return web.json_response(
            {
                "image_embeddings": [self.embed_vector] * count,
                "text_embeddings": [],
                "dim": len(self.embed_vector),
                "model": "tiny",
            }
        )

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/models", self.handle_models)
        app.router.add_post("/detect", self.handle_detect)
        app.router.add_post("/analyze", self.handle_analyze)
        app.router.add_post("/embed", self.handle_embed)
        return app

    def count(self, path: str) -> int:
        """How many requests reached a path."""
        return sum(1 for p, _ in self.requests if p == path)


@pytest.fixture
async def fake_server(socket_enabled: None, aiohttp_server: Any) -> FakeServer:
    """A running fake server on 127.0.0.1."""
    server = FakeServer()
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
    tmp_path_factory: pytest.TempPathFactory, api_key: str | None = None
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
                "tiny",
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


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
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
def real_server_with_key(tmp_path_factory: pytest.TempPathFactory) -> Generator[RealServer]:
    """A real server that requires an API key."""
    yield from _start_real_server(tmp_path_factory, api_key="s3cret")
