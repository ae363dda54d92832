"""The add-on: metadata consistent with the server's settings, Supervisor discovery."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import yaml
from aiohttp import web

from ai_server.addon import DISCOVERY_TASK, announce, register_discovery
from ai_server.app import create_app
from ai_server.config import Settings, load_settings

from .conftest import MakeSettings

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
    assert config["ports"] == {"8090/tcp": 8090}


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


async def test_supervisor_discovery(aiohttp_server, make_settings: MakeSettings) -> None:
    seen: list[dict] = []

    async def info(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer sup-token"
        return web.json_response({"result": "ok", "data": {"hostname": "abc123-hsi-ai-server"}})

    async def discovery(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"result": "ok", "data": {"uuid": "x"}})

    supervisor = web.Application()
    supervisor.router.add_get("/addons/self/info", info)
    supervisor.router.add_post("/discovery", discovery)
    fake = await aiohttp_server(supervisor)

    app = create_app(make_settings(api_key="k1", port=8090))
    assert await announce(app, "sup-token", str(fake.make_url("")).rstrip("/"))
    assert seen == [
        {
            "service": "hsi",
            "config": {"host": "abc123-hsi-ai-server", "port": 8090, "ssl": False, "api_key": "k1"},
        }
    ]
    # Supervisor unreachable: logged, not fatal.
    assert not await announce(app, "sup-token", "http://127.0.0.1:9")


async def test_discovery_runs_at_startup(aiohttp_server, aiohttp_client, make_settings) -> None:
    posted = []

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"data": {"hostname": "h"}})

    async def discovery(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.json_response({"result": "ok"})

    supervisor = web.Application()
    supervisor.router.add_get("/addons/self/info", info)
    supervisor.router.add_post("/discovery", discovery)
    fake = await aiohttp_server(supervisor)
    app = create_app(make_settings(preload=()))
    register_discovery(app, "t", base_url=str(fake.make_url("")).rstrip("/"))
    await aiohttp_client(app)
    assert await app[DISCOVERY_TASK] is True
    assert posted[0]["service"] == "hsi"
