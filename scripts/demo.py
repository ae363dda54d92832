"""The main job, for real: the AI server and a real Home Assistant working together.

Starts the AI server (its `scripted` profile, a generated API key), writes a throwaway Home
Assistant configuration (the HSI integration linked from this repository, and the demo scene:
scripts/demo_scene/hsi_demo, a camera whose snapshots are scene frames and a motion sensor that
is on while the scene shows anything), starts Home Assistant, onboards it over HTTP, creates the
HSI config entry and a camera subentry through the config-flow REST API, waits for the scene's
visitor, runs the `hsi.analyze` action on the demo camera and prints what came back. Then both
keep running until Ctrl-C, the scene looping (a visitor, a car, a cat; motion triggers the
analyses, alerts land in the notification drawer); with `--check` it exits 0 right after the
first analysis and its alert (non-zero with a message otherwise), for tests and CI.

Why a scripted scene: the tiny profile's random-weight models make nonsense of any picture
("wa wh ty ty sever..."), and a demo must never present that as an analysis. The scripted
profile's models read what the scene frame says it shows; everything around them (HTTP, the
pipeline, the rules scorer, the integration) is the real thing. Every frame is captioned as a
scripted demo scene.

    .venv/server/bin/python scripts/demo.py --live-scene            # what `make demo` runs
    .venv/server/bin/python scripts/demo.py --check --live-scene    # what `make demo-check` runs

Without --live-scene the scene stands still (the visitor at the door, the motion sensor off):
nothing but hsi.analyze starts an analysis, which the browser tests' harness relies on.

Only the standard library and aiohttp: it runs under either virtual environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENE = REPO_ROOT / "scripts" / "demo_scene" / "hsi_demo"
CAMERA = "camera.demo_camera"  # the demo scene's camera
MOTION = "binary_sensor.demo_motion"  # the demo scene's motion sensor
HOME_MODE = "input_select.home_mode"
# The demo's options: its home mode, and a batch that closes 10 s after the scene goes quiet.
DEMO_OPTIONS = {"home_mode_entity": HOME_MODE, "idle_timeout": 10}
USERNAME = "demo"
PASSWORD = "demo-password"  # noqa: S105 - a throwaway local demo instance
RESULT_PREFIX = "DEMO_RESULT "

HA_CONFIG = """\
# Written by scripts/demo.py: a throwaway Home Assistant for the HSI demo.
homeassistant:
  name: HSI demo
  latitude: 52.3731
  longitude: 4.8922
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
# default_config needs packages that `hass --skip-pip` cannot install (bluetooth, dhcp, ssdp,
# stream, go2rtc, mobile_app): load the parts the demo and the UI use instead.
frontend:
config:
api:
onboarding:
history:
logbook:
search:
system_health:
# The media browser (HSI's media source: cameras, days, events).
media_source:
# The household's mode, passed to the analysis (options: home mode entity): everyone is out, so
# the scene's visitor is worth an alert (the rules add 25 for a person while away).
input_select:
  home_mode:
    name: Home mode
    options: [home, away, night]
    initial: away
    icon: mdi:home-account
logger:
  default: warning
# The demo scene (scripts/demo_scene): cameras that show scene frames; `live` loops the scene.
hsi_demo:
  live: {live}
"""


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@dataclass
class Child:
    """A started process and where its output goes."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of the log, to explain a failure."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def log(message: str) -> None:
    """One progress line."""
    print(f"[demo] {message}", flush=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(port: int, what: str) -> None:
    """Fail early and clearly when a port is taken (e.g. another demo still runs)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise DemoError(
                f"port {port} for {what} is in use ({err.strerror}); stop what listens there "
                "or pick another port"
            ) from err


async def start(
    name: str, argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path = REPO_ROOT
) -> Child:
    """Start a child in its own session, so Ctrl-C reaches only us and we stop it in order."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log_path)


async def stop(child: Child, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL if it does not exit within `grace` seconds."""
    if child.process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        child.process.terminate()
    try:
        await asyncio.wait_for(child.process.wait(), grace)
    except TimeoutError:
        log(f"{child.name} did not stop in {grace:.0f} s: killing it")
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()
        await child.process.wait()


async def wait_until(
    child: Child, what: str, probe: Any, within: float, interval: float = 0.3
) -> Any:
    """Call the async `probe` until it returns something truthy, the child dies or time runs out."""
    deadline = time.monotonic() + within
    last_error = ""
    while time.monotonic() < deadline:
        if child.process.returncode is not None:
            raise DemoError(
                f"{child.name} exited with {child.process.returncode} while waiting for {what}; "
                f"end of {child.log}:\n{child.tail()}"
            )
        try:
            if result := await probe():
                return result
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            last_error = f" (last error: {err!r})"
        await asyncio.sleep(interval)
    raise DemoError(f"timed out after {within:.0f} s waiting for {what}{last_error}")


class HomeAssistantApi:
    """The few REST calls the demo makes, with the errors turned into DemoError."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; the JSON answer, or DemoError with HA's message."""
        async with self.session.request(
            method, f"{self.url}{path}", headers=self._headers(), **kwargs
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise DemoError(f"{method} {path} answered {response.status}: {text[:1000]}")
            return json.loads(text) if text else None

    async def onboard(self) -> None:
        """The user step of onboarding over HTTP; its auth code gives the access token.

        The other steps are marked done in the config before the start (see write_ha_config).
        """
        client_id = f"{self.url}/"
        created = await self.request(
            "POST",
            "/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        tokens = await self.request(
            "POST",
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": created["auth_code"],
                "client_id": client_id,
            },
        )
        self.token = tokens["access_token"]

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """The state of one entity, or None while it does not exist."""
        async with self.session.get(
            f"{self.url}/api/states/{entity_id}", headers=self._headers()
        ) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            state: dict[str, Any] = await response.json()
            return state

    async def flow(self, base: str, handler: Any, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Run a config or subentry flow through its REST API, one form per user input."""
        result: dict[str, Any] = await self.request("POST", base, json={"handler": handler})
        for user_input in steps:
            if result.get("type") != "form":
                break
            result = await self.request("POST", f"{base}/{result['flow_id']}", json=user_input)
            if result.get("type") == "form" and result.get("errors"):
                raise DemoError(f"{base}: the form answered errors {result['errors']}")
        if result.get("type") != "create_entry":
            raise DemoError(f"{base}: expected create_entry, got {json.dumps(result)[:1000]}")
        return result

    async def options(self, entry_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        """Run the entry's options flow with `user_input` (the form fills in the defaults)."""
        base = "/api/config/config_entries/options/flow"
        form = await self.request("POST", base, json={"handler": entry_id})
        # Sections (collapsed groups of fields) are required keys; their fields have defaults.
        sections: dict[str, Any] = {
            f["name"]: {} for f in form["data_schema"] if f.get("type") == "expandable"
        }
        result: dict[str, Any] = await self.request(
            "POST", f"{base}/{form['flow_id']}", json=sections | user_input
        )
        if result.get("type") != "create_entry":
            raise DemoError(f"options flow: expected create_entry, got {json.dumps(result)[:1000]}")
        return result

    async def websocket(self, message: dict[str, Any]) -> Any:
        """One websocket command (what the frontend uses where REST has nothing); its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (auth := await ws.receive_json()).get("type") != "auth_ok":
                raise DemoError(f"websocket auth failed: {auth}")
            await ws.send_json({"id": 1, **message})
            answer: dict[str, Any] = await ws.receive_json()
            if not answer.get("success"):
                raise DemoError(f"websocket {message['type']} failed: {answer.get('error')}")
            return answer["result"]

    async def render(self, template: str) -> Any:
        """Render a template server-side; the templates here print JSON."""
        async with self.session.post(
            f"{self.url}/api/template", headers=self._headers(), json={"template": template}
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise DemoError(f"POST /api/template answered {response.status}: {text[:500]}")
            return json.loads(text)


# One line of JSON: every HSI entity with its device, so the camera's device can be picked out.
ENTITIES_TEMPLATE = """\
[{%- for e in integration_entities('hsi') -%}
{%- set s = states[e] -%}
{{ {"entity_id": e, "device_id": device_id(e), "device": device_attr(device_id(e), 'name'),
    "name": s.name if s else e, "state": s.state if s else "missing",
    "unit": s.attributes.get("unit_of_measurement") if s else none} | tojson }}
{{- "," if not loop.last -}}
{%- endfor -%}]"""


def summarise(event: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the analyze response a human (and the test) looks at."""
    return {
        "event_id": event.get("event_id"),
        "risk_level": event.get("risk_level"),
        "risk_score": event.get("risk_score"),
        "summary": event.get("summary"),
        "source": event.get("source"),
        "description": event.get("description"),
        "objects": [
            {"class": o.get("class"), "confidence": o.get("confidence")}
            for o in event.get("objects") or []
        ],
        "counts": event.get("counts"),
    }


def print_event(event: Mapping[str, Any]) -> None:
    """A short human summary of one security event."""
    objects = ", ".join(
        f"{o.get('class')} {float(o.get('confidence') or 0):.2f}" for o in event.get("objects", [])
    )
    log("hsi.analyze on camera.demo_camera answered:")
    print(f"    risk       {event.get('risk_level')} ({event.get('risk_score')}/100)")
    print(f"    summary    {str(event.get('summary'))[:100]}")
    print(f"    reasoning  {str(event.get('reasoning'))[:160]}")
    print(f"    source     {event.get('source')} (llm = the local LLM, rules = the rule scorer)")
    if description := str(event.get("description") or ""):
        print(f"    described  {description[:100]}{'...' if len(description) > 100 else ''}")
    print(f"    objects    {objects or 'none relevant'}")
    if event.get("recommended_action"):
        print(f"    action     {event.get('recommended_action')}")
    print("    (a scripted demo scene: the server's scripted profile reads what each frame shows)")


def print_entities(entities: list[dict[str, Any]], device: str | None) -> None:
    """The camera device's entities and their states."""
    log(f"entities of the HSI device '{device}':")
    for entity in entities:
        unit = f" {entity['unit']}" if entity.get("unit") else ""
        print(f"    {entity['entity_id']:<52} {entity['state']}{unit}")


@dataclass
class Options:
    """Command-line options."""

    check: bool
    ha_port: int
    server_port: int
    directory: Path
    server_python: str
    ha_python: str
    timeout: float
    custom_components: list[Path]
    live_scene: bool


def _absolute(program: str) -> str:
    """A path to an interpreter made absolute (children start in other folders); a bare name
    stays as it is, for PATH to find."""
    return (
        str(Path(program).absolute()) if os.sep in program else program
    )  # not resolve(): venvs link


def parse_args(argv: list[str] | None = None) -> Options:
    """Command line."""
    venv = REPO_ROOT / ".venv"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 0 after the first analysis succeeded"
    )
    parser.add_argument(
        "--ha-port", type=int, default=8123, help="Home Assistant port (0: any free port)"
    )
    parser.add_argument(
        "--server-port", type=int, default=8090, help="AI server port (0: any free port)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO_ROOT / ".demo",
        help="working folder: the HA config is rewritten on every run, the models are kept",
    )
    parser.add_argument(
        "--server-python",
        default=os.environ.get("HSI_SERVER_PYTHON", str(venv / "server" / "bin" / "python")),
    )
    parser.add_argument(
        "--ha-python", default=os.environ.get("HSI_HA_PYTHON", str(venv / "ha" / "bin" / "python"))
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed per start")
    parser.add_argument(
        "--custom-component",
        type=Path,
        action="append",
        default=[],
        help="another integration folder to link in and set up (tests/browser's helpers)",
    )
    parser.add_argument(
        "--live-scene",
        action="store_true",
        help="loop the demo scene (a visitor, a car, a cat, each turning the motion sensor on and "
        "so triggering an analysis), as `make demo` does; without it the visitor stands still at "
        "the door and nothing but hsi.analyze starts an analysis (tests)",
    )
    args = parser.parse_args(argv)
    return Options(
        check=args.check,
        ha_port=args.ha_port or free_port(),
        server_port=args.server_port or free_port(),
        directory=args.dir.resolve(),
        server_python=_absolute(args.server_python),
        ha_python=_absolute(args.ha_python),
        timeout=args.timeout,
        custom_components=[path.resolve() for path in args.custom_component],
        live_scene=args.live_scene,
    )


def write_ha_config(
    config_dir: Path, port: int, extra: list[Path] | None = None, *, live: bool = False
) -> None:
    """A fresh configuration every run: no state survives from an earlier demo."""
    if config_dir.exists():
        shutil.rmtree(config_dir)
    (config_dir / "custom_components").mkdir(parents=True)
    (config_dir / "custom_components" / SCENE.name).symlink_to(SCENE)
    config = HA_CONFIG.format(port=port, live=str(live).lower())
    for folder in extra or []:
        # Linked like hsi, and named in the configuration so that its async_setup runs.
        (config_dir / "custom_components" / folder.name).symlink_to(folder)
        config += f"{folder.name}:\n"
    (config_dir / "configuration.yaml").write_text(config)
    # Onboarding's core_config step starts the met, radio_browser, google_translate and
    # shopping_list flows, which need internet and packages `--skip-pip` does not install (a
    # page of tracebacks). The location is set in configuration.yaml already, so mark those
    # steps done; the user step still runs over HTTP, and a browser login lands on the dashboard.
    storage = config_dir / ".storage"
    storage.mkdir()
    (storage / "onboarding").write_text(
        json.dumps(
            {
                "version": 4,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": ["core_config", "analytics", "integration"]},
            }
        )
    )
    # A link, not a copy: the demo runs the integration exactly as it is in the tree.
    (config_dir / "custom_components" / "hsi").symlink_to(REPO_ROOT / "custom_components" / "hsi")


def prepare(options: Options) -> None:
    """Checks and files before anything starts."""
    for python, venv in ((options.server_python, "server"), (options.ha_python, "ha")):
        if not Path(python).exists():
            raise DemoError(f"{python} not found: run `make venv-{venv}` (or `make demo`) first")
    ensure_port_free(options.server_port, "the AI server")
    ensure_port_free(options.ha_port, "Home Assistant")
    options.directory.mkdir(parents=True, exist_ok=True)
    write_ha_config(
        options.directory / "ha",
        options.ha_port,
        options.custom_components,
        live=options.live_scene,
    )


async def run(options: Options, stop_event: asyncio.Event, ready: asyncio.Event) -> dict[str, Any]:
    """Everything after prepare(); returns the machine-readable result."""
    work = options.directory
    api_key = secrets.token_urlsafe(24)
    server_url = f"http://127.0.0.1:{options.server_port}"
    ha_url = f"http://127.0.0.1:{options.ha_port}"
    children: list[Child] = []
    began = time.monotonic()
    try:
        # 1. The AI server.
        log(
            f"starting the AI server (scripted profile: the demo scene) on {server_url}, "
            f"log: {work / 'server.log'}"
        )
        server = await start(
            "the AI server",
            [
                options.server_python,
                "-m",
                "ai_server",
                "serve",
                "--profile",
                "scripted",
                "--host",
                "127.0.0.1",
                "--port",
                str(options.server_port),
            ],
            work / "server.log",
            os.environ
            | {
                "HSI_API_KEY": api_key,
                "HSI_CACHE_DIR": str(work / "models"),
                "HF_HUB_OFFLINE": "1",
            },
        )
        children.append(server)
        # 2. Home Assistant, started meanwhile: both take a few seconds.
        config_dir = work / "ha"
        log(f"starting Home Assistant on {ha_url}, config: {config_dir}")
        ha = await start(
            "Home Assistant",
            [options.ha_python, "-m", "homeassistant", "-c", str(config_dir), "--skip-pip"],
            work / "ha.log",
            os.environ,
            # Not the repository: `python -m` puts the working folder first on sys.path, and the
            # repository's custom_components package (hsi only) would hide the configuration's
            # (hsi, the demo scene and any --custom-component).
            cwd=config_dir,
        )
        children.append(ha)

        timeout = aiohttp.ClientTimeout(total=90)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def server_healthy() -> dict[str, Any] | None:
                async with session.get(f"{server_url}/health") as response:
                    health: dict[str, Any] = await response.json()
                    return health if health.get("status") == "healthy" else None

            health = await wait_until(
                server, "the AI server to be healthy", server_healthy, options.timeout
            )
            models = ", ".join(sorted(health.get("models", {})))
            log(f"AI server healthy (version {health.get('version')}; models: {models})")

            hass = HomeAssistantApi(session, ha_url)

            async def ha_answers() -> bool:
                async with session.get(f"{ha_url}/api/onboarding") as response:
                    return response.status == 200

            await wait_until(ha, "Home Assistant's HTTP API", ha_answers, options.timeout)
            log("Home Assistant answers; onboarding over HTTP")
            # 3. Onboarding, the config entry, the camera subentry, one analysis.
            await hass.onboard()
            await wait_until(ha, f"{CAMERA} to exist", lambda: hass.state(CAMERA), options.timeout)
            created = await hass.flow(
                "/api/config/config_entries/flow",
                "hsi",
                [{"url": server_url, "api_key": api_key, "verify_ssl": True}],
            )
            entry_id = created["result"]["entry_id"]
            log(f"HSI config entry created: {created['title']} ({entry_id})")
            subentry = await hass.flow(
                "/api/config/config_entries/subentries/flow",
                [entry_id, "camera"],
                [
                    {
                        "camera_entity": CAMERA,
                        "trigger_entity": MOTION,
                        "interval": 0,
                        "location_description": "Front door and drive (a scripted demo scene)",
                        "classes": ["person", "vehicle", "animal"],
                        "confidence": 0.5,
                        "burst_frames": 2,
                        "zones": "front door in the middle, drive on the left",
                    }
                ],
            )
            log(f"camera subentry created: {subentry['title']} (triggered by {MOTION})")
            await hass.options(entry_id, DEMO_OPTIONS)
            log(f"options: home mode from {HOME_MODE} (away), batches close after 10 s quiet")

            async def entry_loaded() -> bool:
                entries = await hass.request("GET", "/api/config/config_entries/entry?domain=hsi")
                return bool(entries) and entries[0]["state"] == "loaded"

            await wait_until(ha, "the HSI entry to be loaded", entry_loaded, options.timeout)

            async def camera_entities() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = await hass.render(ENTITIES_TEMPLATE)
                return [e for e in found if e["device"] == subentry["title"]]

            await wait_until(ha, "the camera's HSI entities", camera_entities, options.timeout)

            async def motion_on() -> bool:
                state = await hass.state(MOTION)
                return state is not None and state["state"] == "on"

            if options.live_scene:
                # The scene loops; analyse while its visitor is in view, so every run shows one.
                await wait_until(ha, "the scene's visitor (motion on)", motion_on, 200)
            answer = await hass.request(
                "POST",
                "/api/services/hsi/analyze?return_response",
                json={"entity_id": CAMERA},
            )
            event: dict[str, Any] = answer["service_response"]
            print_event(event)

            async def entities_show_event() -> list[dict[str, Any]] | None:
                # The event is published in a task of its own: wait until the entities have it.
                found = await camera_entities()
                score = str(event["risk_score"])
                shown = any(
                    e["entity_id"].endswith("_risk_score") and e["state"] == score for e in found
                )
                return found if shown else None

            entities = await wait_until(ha, "the event on the entities", entities_show_event, 30)
            print_entities(entities, subentry["title"])
            device_id = entities[0]["device_id"]

            async def alert() -> dict[str, Any] | None:
                # No notify target is set: HSI's alerts fall back to the notification drawer.
                found = await hass.websocket({"type": "persistent_notification/get"})
                return next((n for n in found if event["event_id"] in n["message"]), None)

            notification = await wait_until(ha, "the event's alert", alert, 30)
            log(f"alert in the notification drawer: {notification['title']}")
            server_device = await hass.render(
                "{{ integration_entities('hsi') | map('device_id') | reject('none') | unique"
                " | map('device_attr', 'configuration_url') | reject('none') | list | tojson }}"
            )
            visits = []
            for url in server_device:  # what the device page's Visit link opens, no login
                async with session.get(url) as response:
                    visits.append(
                        {"url": url, "status": response.status, "type": response.content_type}
                    )
            media = await hass.websocket(
                {"type": "media_source/browse_media", "media_content_id": "media-source://"}
            )
            result = {
                "ok": True,
                "ha_url": ha_url,
                "server_url": server_url,
                "entry_id": entry_id,
                "device_id": device_id,
                "event": summarise(event),
                "entities": {e["entity_id"]: e["state"] for e in entities},
                "units": {e["entity_id"]: e["unit"] for e in entities if e.get("unit")},
                "notification": {k: notification[k] for k in ("title", "message")},
                "visit_links": visits,
                "media_sources": [c["media_content_id"] for c in media.get("children") or []],
                "seconds": round(time.monotonic() - began, 1),
            }
            if options.check:
                print(RESULT_PREFIX + json.dumps(result), flush=True)
                log(f"check passed in {result['seconds']} s")
                return result

            # 4. Keep both running until Ctrl-C; the result line tells tools (tests/browser) where.
            print(RESULT_PREFIX + json.dumps(result), flush=True)
            print(
                "\n"
                f"  Home Assistant:  {ha_url}   (login: {USERNAME} / {PASSWORD})\n"
                f"  Camera device:   {ha_url}/config/devices/device/{device_id}\n"
                f"  Add a camera:    {ha_url}/config/integrations/integration/hsi, the server's"
                " ⋮ menu → Add camera (camera.demo_garden is not watched yet)\n"
                "  Alerts:          the notification drawer (bell); events: Media → HSI\n"
                f"  AI server:       {server_url}   (API key: {api_key})\n"
                f"  Logs:            {work / 'ha.log'}, {work / 'server.log'}\n"
                "  Press Ctrl-C to stop both.\n",
                flush=True,
            )
            ready.set()
            waiters = [asyncio.create_task(stop_event.wait())] + [
                asyncio.create_task(c.process.wait()) for c in children
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            for child in children:
                if child.process.returncode is not None:
                    raise DemoError(
                        f"{child.name} exited with {child.process.returncode}; "
                        f"end of {child.log}:\n{child.tail()}"
                    )
            return result
    finally:
        if children:
            log("stopping Home Assistant and the AI server")
        for child in reversed(children):  # HA first: it talks to the server, not the reverse
            await stop(child)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when everything worked (and, without --check, Ctrl-C ended it)."""
    options = parse_args(argv)
    try:
        prepare(options)
    except DemoError as err:
        print(f"[demo] FAILED: {err}", file=sys.stderr, flush=True)
        return 1

    async def _main() -> int:
        stop_event = asyncio.Event()
        ready = asyncio.Event()
        runner = asyncio.create_task(run(options, stop_event, ready))

        def on_signal() -> None:
            # Once both run, Ctrl-C is the normal way out; during the setup it aborts.
            if ready.is_set():
                stop_event.set()
            else:
                runner.cancel()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await runner
        except asyncio.CancelledError:
            log("interrupted during setup")
            return 130
        except DemoError as err:
            print(f"[demo] FAILED: {err}", file=sys.stderr, flush=True)
            return 1
        log("stopped")
        return 0

    return asyncio.run(_main())


if __name__ == "__main__":
    sys.exit(main())
