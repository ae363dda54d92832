"""The add-on: metadata consistent with the server's settings, the API key it generates for
itself, Supervisor discovery (against a fake Supervisor on 127.0.0.1), and the real process."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import stat
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from ai_server.addon import (
    ADDON_DATA_DIR,
    API_KEY_FILE,
    DISCOVERY_TASK,
    SUPERVISOR_URL,
    AddonEnvironment,
    announce,
    provision_api_key,
    register_discovery,
)
from ai_server.app import create_app
from ai_server.config import ConfigError, Settings, load_settings

from .conftest import MakeSettings, image_bytes
from .test_server_process import start_server, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def addon_config() -> dict:
    return yaml.safe_load((ROOT / "addon" / "config.yaml").read_text())


def test_addon_options_are_server_settings() -> None:
    config = addon_config()
    names = {f.name for f in fields(Settings)}
    assert set(config["schema"]) <= names
    assert set(config["options"]) <= set(config["schema"])
    assert config["slug"] == "hsi_ai_server"
    assert "hsi" in config["discovery"]
    # Safe by default: no host port until the user opens one (the integration needs none).
    assert config["ports"] == {"8090/tcp": None}


def test_default_options_file_loads(tmp_path: Path) -> None:
    """What Supervisor writes to /data/options.json from the defaults is a valid configuration."""
    options = tmp_path / "options.json"
    options.write_text(json.dumps(addon_config()["options"]))
    settings = load_settings(env={}, options_path=options)
    assert settings.classes is not None
    assert "person" in settings.classes
    assert settings.log_level == "INFO"


def test_addon_version_matches_the_package() -> None:
    from ai_server import __version__

    assert addon_config()["version"] == __version__
    text = (ROOT / "addon" / "Dockerfile").read_text()
    assert re.search(r"torch==2\.14\.1 torchvision==0\.29\.1", text)


@dataclass
class FakeSupervisor:
    """Answers GET /addons/self/info and records every POST /discovery with its Authorization."""

    hostname: str = "abc123-hsi-ai-server"
    fail_discovery: list[int] = field(default_factory=list)  # statuses for the next attempts
    posted: list[dict] = field(default_factory=list)
    attempts: list[str | None] = field(default_factory=list)  # Authorization of each POST
    info_auth: list[str | None] = field(default_factory=list)
    url: str = ""

    async def start(self, aiohttp_server) -> FakeSupervisor:
        async def info(request: web.Request) -> web.Response:
            self.info_auth.append(request.headers.get("Authorization"))
            return web.json_response({"result": "ok", "data": {"hostname": self.hostname}})

        async def discovery(request: web.Request) -> web.Response:
            self.attempts.append(request.headers.get("Authorization"))
            if self.fail_discovery:
                return web.json_response({"result": "error"}, status=self.fail_discovery.pop(0))
            self.posted.append(await request.json())
            return web.json_response({"result": "ok", "data": {"uuid": "x"}})

        app = web.Application()
        app.router.add_get("/addons/self/info", info)
        app.router.add_post("/discovery", discovery)
        server: TestServer = await aiohttp_server(app, host="127.0.0.1")
        self.url = str(server.make_url("")).rstrip("/")
        return self


async def test_supervisor_discovery(aiohttp_server, make_settings: MakeSettings) -> None:
    supervisor = await FakeSupervisor().start(aiohttp_server)
    app = create_app(make_settings(api_key="k1", port=8090))
    assert await announce(app, "sup-token", supervisor.url)
    assert supervisor.info_auth == ["Bearer sup-token"]
    assert supervisor.attempts == ["Bearer sup-token"]
    assert supervisor.posted == [
        {
            "service": "hsi",
            "config": {"host": "abc123-hsi-ai-server", "port": 8090, "ssl": False, "api_key": "k1"},
        }
    ]
    # Supervisor unreachable: logged, not fatal.
    assert not await announce(app, "sup-token", "http://127.0.0.1:9")


async def test_discovery_runs_at_startup(aiohttp_server, aiohttp_client, make_settings) -> None:
    supervisor = await FakeSupervisor(hostname="h").start(aiohttp_server)
    app = create_app(make_settings(preload=()))
    register_discovery(app, "t", base_url=supervisor.url)
    await aiohttp_client(app)
    assert await app[DISCOVERY_TASK] is True
    assert supervisor.posted[0]["service"] == "hsi"


# --- the API key the add-on generates for itself ---------------------------------------------


def test_addon_environment() -> None:
    """Outside the add-on (no SUPERVISOR_TOKEN) there is no add-on environment, so no key."""
    assert AddonEnvironment.from_environ({}) is None
    assert AddonEnvironment.from_environ({"SUPERVISOR_TOKEN": " "}) is None
    addon = AddonEnvironment.from_environ({"SUPERVISOR_TOKEN": "tok"})
    assert addon == AddonEnvironment("tok", SUPERVISOR_URL, ADDON_DATA_DIR)
    assert addon.data_dir == Path("/data")
    test = AddonEnvironment.from_environ(
        {
            "SUPERVISOR_TOKEN": "tok",
            "HSI_SUPERVISOR_URL": "http://127.0.0.1:1234/",
            "HSI_ADDON_DATA_DIR": "/tmp/x",
        }
    )
    assert test == AddonEnvironment("tok", "http://127.0.0.1:1234", Path("/tmp/x"))


def test_key_generated_stored_owner_only_and_reused(
    tmp_path: Path, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings()
    assert settings.api_key is None

    first = provision_api_key(settings, data)
    key = first.api_key
    assert key is not None and len(key) >= 43  # token_urlsafe(32): 256 bits
    path = data / API_KEY_FILE
    assert path.read_text() == key + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data.iterdir()] == [API_KEY_FILE]  # no temporary file left
    assert "generated" in caplog.text and str(path) in caplog.text

    # The next start uses the stored key; nothing else changes.
    second = provision_api_key(make_settings(), data)
    assert second.api_key == key
    assert second == first
    assert "stored in" in caplog.messages[-1]
    # Another add-on install (another data folder) gets another key.
    assert provision_api_key(settings, tmp_path / "other").api_key != key
    assert key not in caplog.text
    assert key not in repr(first)


def test_a_configured_key_wins(
    tmp_path: Path, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"api_key": "from-options", "profile": "tiny"}))
    configured = load_settings(env={}, options_path=options)
    assert configured.api_key == "from-options"

    data = tmp_path / "data"
    # No stored key: the options key is used and no file is made.
    assert provision_api_key(configured, data) is configured
    assert not data.exists()
    # A stored key from an earlier start: the options key still wins, the file is left alone.
    generated = provision_api_key(make_settings(), data).api_key
    path = data / API_KEY_FILE
    before = (path.read_text(), path.stat().st_mtime_ns)
    assert provision_api_key(configured, data).api_key == "from-options"
    assert (path.read_text(), path.stat().st_mtime_ns) == before
    # Back to no key in the options: the stored one again.
    assert provision_api_key(make_settings(), data).api_key == generated
    assert "from-options" not in caplog.text and str(generated) not in caplog.text


def test_stored_key_is_repaired(tmp_path: Path, make_settings: MakeSettings) -> None:
    path = tmp_path / API_KEY_FILE
    # Readable by others (copied in by hand, restored from a backup): restricted, still used.
    path.write_text("my-own-key\n")
    path.chmod(0o644)
    assert provision_api_key(make_settings(), tmp_path).api_key == "my-own-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Empty (or not one token): a new key replaces it.
    for junk in ("", "\n", "two words\n"):
        path.write_text(junk)
        key = provision_api_key(make_settings(), tmp_path).api_key
        assert key and len(key) >= 43
        assert path.read_text() == f"{key}\n"


def test_key_that_cannot_be_stored_is_used_for_this_run(
    tmp_path: Path,
    make_settings: MakeSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full disk (or read-only /data) does not stop the start: the new key guards this run,
    an error says it will not survive a restart, nothing half-written is left."""

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ai_server.addon.os.fsync", disk_full)
    key = provision_api_key(make_settings(), tmp_path).api_key
    assert key and len(key) >= 43
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, no half-written key
    [error] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "No space left on device" in error and "this run only" in error
    assert key not in error


def test_key_that_cannot_be_read_stops_the_start(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    (tmp_path / API_KEY_FILE).mkdir()
    with pytest.raises(ConfigError, match=r"cannot read the stored API key"):
        provision_api_key(make_settings(), tmp_path)


async def test_generated_key_guards_the_server_and_is_announced(
    tmp_path: Path,
    aiohttp_server,
    aiohttp_client,
    make_settings: MakeSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    supervisor = await FakeSupervisor().start(aiohttp_server)
    settings = provision_api_key(make_settings(preload=(), port=8090), tmp_path)
    key = settings.api_key
    assert key
    app = create_app(settings)
    register_discovery(app, "sup-token", base_url=supervisor.url)
    client = await aiohttp_client(app)

    assert (await client.get("/models")).status == 401
    wrong = await client.get("/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await client.get("/models", headers={"Authorization": f"Bearer {key}"})).status == 200
    assert (await client.get("/models", headers={"X-API-Key": key})).status == 200
    assert (await client.get("/health")).status == 200  # the watchdog needs no key

    assert await app[DISCOVERY_TASK] is True
    assert supervisor.attempts == ["Bearer sup-token"]
    assert supervisor.posted == [
        {
            "service": "hsi",
            "config": {"host": "abc123-hsi-ai-server", "port": 8090, "ssl": False, "api_key": key},
        }
    ]
    assert key not in caplog.text


@pytest.mark.parametrize("status", [500, 403])
async def test_supervisor_failure_is_logged_and_not_fatal(
    aiohttp_server,
    aiohttp_client,
    make_settings: MakeSettings,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    supervisor = await FakeSupervisor(fail_discovery=[status] * 3).start(aiohttp_server)
    app = create_app(make_settings(preload=(), api_key="secret-k3y"))
    register_discovery(app, "sup-token", base_url=supervisor.url, retry_delays=(0.01, 0.01))
    client = await aiohttp_client(app)
    assert await app[DISCOVERY_TASK] is False  # three attempts, each refused
    assert len(supervisor.attempts) == 3 and not supervisor.posted
    assert f"Supervisor answered {status}" in caplog.text
    assert "Home Assistant was not told about the server" in caplog.text
    # The server serves on.
    assert (await client.get("/health")).status == 200
    assert (await client.get("/models", headers={"X-API-Key": "secret-k3y"})).status == 200
    assert "secret-k3y" not in caplog.text


async def test_discovery_is_retried(aiohttp_server, aiohttp_client, make_settings) -> None:
    """Supervisor still starting: the next attempt gets through."""
    supervisor = await FakeSupervisor(fail_discovery=[503]).start(aiohttp_server)
    app = create_app(make_settings(preload=(), api_key="k"))
    register_discovery(app, "t", base_url=supervisor.url, retry_delays=(0.01, 0.01))
    await aiohttp_client(app)
    assert await app[DISCOVERY_TASK] is True
    assert len(supervisor.attempts) == 2
    assert supervisor.posted[0]["config"]["api_key"] == "k"


async def test_malformed_supervisor_answer_is_logged(
    aiohttp_server, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    async def info(request: web.Request) -> web.Response:
        return web.json_response({"result": "ok", "data": {}})

    supervisor = web.Application()
    supervisor.router.add_get("/addons/self/info", info)
    fake = await aiohttp_server(supervisor)
    app = create_app(make_settings(api_key="k"))
    assert not await announce(app, "t", str(fake.make_url("")).rstrip("/"))
    assert "Supervisor's answer lacks 'hostname'" in caplog.text


# --- the real process, as Supervisor starts it -----------------------------------------------


async def _until(condition, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_addon_process_generates_keeps_and_announces_its_key(
    tmp_path: Path, model_cache: Path, aiohttp_server
) -> None:
    """`python -m ai_server serve` with SUPERVISOR_TOKEN set, twice on the same data folder."""
    supervisor = await FakeSupervisor().start(aiohttp_server)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "SUPERVISOR_TOKEN": "sup-token",
        "HSI_SUPERVISOR_URL": supervisor.url,
        "HSI_ADDON_DATA_DIR": str(data),
        "HSI_API_KEY": "",  # no key configured
    }
    keys: list[str] = []
    for start in ("first", "second"):
        if start == "second":
            supervisor.fail_discovery = [500] * 10  # Supervisor now refuses: not fatal
        process, port = start_server(tmp_path, model_cache, **env)
        log_path = tmp_path / f"server-{port}.log"
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base, process)
            key = (data / API_KEY_FILE).read_text().strip()
            keys.append(key)
            assert stat.S_IMODE((data / API_KEY_FILE).stat().st_mode) == 0o600
            async with aiohttp.ClientSession() as session:
                detect = f"{base}/detect"
                headers = {"Content-Type": "image/jpeg"}
                async with session.post(detect, data=image_bytes(), headers=headers) as response:
                    assert response.status == 401
                headers["Authorization"] = f"Bearer {key}"
                async with session.post(detect, data=image_bytes(), headers=headers) as response:
                    assert response.status == 200
            if start == "first":
                await _until(lambda: supervisor.posted, "the discovery message")
                assert supervisor.attempts == ["Bearer sup-token"]
                assert supervisor.posted == [
                    {
                        "service": "hsi",
                        "config": {
                            "host": "abc123-hsi-ai-server",
                            "port": port,
                            "ssl": False,
                            "api_key": key,
                        },
                    }
                ]
            else:
                await _until(
                    lambda log=log_path: "could not announce" in log.read_text(),
                    "the logged failure",
                )
                assert "Supervisor answered 500" in log_path.read_text()
                assert process.poll() is None  # still serving
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0
        log = log_path.read_text()
        assert key not in log
        assert str(data / API_KEY_FILE) in log
        assert ("generated one and stored it" in log) == (start == "first")
        assert "api key required" in log
    assert keys[0] == keys[1] and len(keys[0]) >= 43
    assert len(supervisor.posted) == 1
