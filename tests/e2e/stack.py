"""A real AI server and a real Home Assistant process that tests can stop, kill and start again.

Built from scripts/demo.py's pieces (start/stop of children, the REST and websocket calls, the
throwaway configuration with the demo scene), so the processes run exactly as `make demo` runs
them; what this adds is restarting either process on the same ports and folders, and reading
what the tests count: the event store (websocket `hsi/events/list`), repair issues, the
notification drawer, the recording notify target (`hsi_notify_recorder`) and HA's logs.

The demo scene stands still (not live): the visitor stays at the front door and the demo's motion
sensor stays off, so nothing happens until a test sets the sensor on through the REST API (a real
`state_changed`, what the watcher follows). After a restart the sensor's own entity writes its
state again (off): a restarted HA does not see a second motion.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDER = Path(__file__).resolve().parent / "hsi_notify_recorder"
RECORDER_FILE = "notify-recorder.jsonl"
RESTART_EXIT_CODE = 100  # homeassistant.const.RESTART_EXIT_CODE: "restart me"


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hsi_demo_script", REPO_ROOT / "scripts/demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
CAMERA: str = demo.CAMERA
MOTION: str = demo.MOTION


def ha_python() -> str:
    """The interpreter of Home Assistant (2025.4 with its frontend: `make venv-ha-demo`)."""
    python = os.environ.get("HSI_HA_PYTHON", str(REPO_ROOT / ".venv" / "ha" / "bin" / "python"))
    if not Path(python).exists():
        pytest.fail(f"{python} not found: run `make venv-ha venv-ha-demo` or set HSI_HA_PYTHON")
    return python


def server_python() -> str:
    """The AI server's interpreter (these tests run in it unless told otherwise)."""
    return os.environ.get("HSI_SERVER_PYTHON", sys.executable)


class Stack:
    """The two processes, their folders and ports, and the calls the tests make."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_dir = root / "ha"
        self.server_port = demo.free_port()
        self.ha_port = demo.free_port()
        self.server_url = f"http://127.0.0.1:{self.server_port}"
        self.ha_url = f"http://127.0.0.1:{self.ha_port}"
        self.api_key = secrets.token_urlsafe(24)
        self.server: Any = None  # demo.Child
        self.ha: Any = None
        self.server_starts = 0
        self.ha_starts = 0
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.api = demo.HomeAssistantApi(self.session, self.ha_url)
        self.entry_id = ""
        self.subentry_title = ""
        demo.write_ha_config(self.config_dir, self.ha_port)
        # Linked, not named at the top level: it is only a notify platform.
        (self.config_dir / "custom_components" / RECORDER.name).symlink_to(RECORDER)
        with (self.config_dir / "configuration.yaml").open("a") as config:
            config.write("notify:\n  - platform: hsi_notify_recorder\n    name: recorder\n")

    @property
    def connectivity(self) -> str:
        """The server device's connectivity sensor (its name carries the server's address)."""
        return f"binary_sensor.hsi_ai_server_127_0_0_1_{self.server_port}_connectivity"

    # Processes -------------------------------------------------------------------------------

    async def start_server(
        self,
        profile: str = "scripted",
        ready: Callable[[dict[str, Any]], bool] | None = None,
        **env: str,
    ) -> None:
        """The AI server on its port; waits until /health says `ready` (default: healthy or
        degraded, i.e. done loading what it preloads)."""
        self.server_starts += 1
        self.server = await demo.start(
            "the AI server",
            [
                server_python(),
                *("-m", "ai_server", "serve", "--profile", profile),
                *("--host", "127.0.0.1", "--port", str(self.server_port)),
            ],
            self.root / f"server-{self.server_starts}.log",
            os.environ
            | {
                "HSI_API_KEY": self.api_key,
                "HSI_CACHE_DIR": str(self.root.parent / "hsi-e2e-models"),
                "HF_HUB_OFFLINE": "1",
            }
            | env,
        )

        async def answers() -> dict[str, Any] | None:
            async with self.session.get(f"{self.server_url}/health") as response:
                health: dict[str, Any] = await response.json()
                if ready is not None:
                    return health if ready(health) else None
                return health if health.get("status") in ("healthy", "degraded") else None

        await demo.wait_until(self.server, "the AI server's health", answers, 180)

    async def stop_server(self, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) the AI server and wait for it."""
        if kill:
            self.server.process.kill()
            await self.server.process.wait()
        else:
            await demo.stop(self.server)

    def pause_server(self) -> None:
        """SIGSTOP: the server hangs; the kernel still accepts connections on its port."""
        self.server.process.send_signal(signal.SIGSTOP)

    def resume_server(self) -> None:
        """SIGCONT after pause_server."""
        self.server.process.send_signal(signal.SIGCONT)

    async def start_ha(self) -> None:
        """Home Assistant on the same folder and port; waits for its HTTP API."""
        self.ha_starts += 1
        self.ha = await demo.start(
            "Home Assistant",
            [ha_python(), "-m", "homeassistant", "-c", str(self.config_dir), "--skip-pip"],
            self.root / f"ha-{self.ha_starts}.log",
            os.environ,
            cwd=self.config_dir,  # see scripts/demo.py: not the repository's custom_components
        )

        # Onboarding's API answers once onboarding can run (the first start); Home Assistant
        # stops serving it once onboarding is done, so later starts wait for the login API.
        path = "/api/onboarding" if self.ha_starts == 1 else "/auth/providers"

        async def answers() -> bool:
            async with self.session.get(f"{self.ha_url}{path}") as response:
                return response.status == 200

        await demo.wait_until(self.ha, "Home Assistant's HTTP API", answers, 120)

    async def restart_ha(self, how: str, between: Callable[[], None] | None = None) -> int:
        """Stop Home Assistant and start it again on the same folder; its exit code.

        `service`: the `homeassistant.restart` action (what Settings → Restart calls): a
        graceful stop, exit code 100, which the container or supervisor answers with a start.
        `sigterm`: a graceful stop as `docker stop` or systemd asks for it (exit code 0).
        `sigkill`: no stop at all (power cut, OOM killer).
        `between` runs once the process has exited, before the new start.
        """
        process = self.ha.process
        if how == "service":
            # HA stops while it answers: the connection may close before a response.
            with contextlib.suppress(aiohttp.ClientError, demo.DemoError):
                await self.api.request("POST", "/api/services/homeassistant/restart", json={})
        elif how == "sigterm":
            process.terminate()
        elif how == "sigkill":
            process.kill()
        else:
            raise ValueError(how)
        code: int = await asyncio.wait_for(process.wait(), 120)
        if between is not None:
            between()
        await self.start_ha()
        await self.wait_entry_loaded()
        return code

    async def close(self) -> None:
        """Stop Home Assistant, then the server (a paused one is resumed first)."""
        for child in (self.ha, self.server):
            if child is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGCONT)
                await demo.stop(child, grace=20)
        await self.session.close()

    # Home Assistant set up ----------------------------------------------------------------------

    async def setup(self, options: dict[str, Any]) -> None:
        """Onboarding, the HSI entry, the demo camera's subentry (triggered by the demo's motion
        sensor, 2 frames per burst), the options; waits until the camera's entities exist."""
        await self.api.onboard()
        await demo.wait_until(self.ha, f"{CAMERA}", lambda: self.api.state(CAMERA), 60)
        created = await self.api.flow(
            "/api/config/config_entries/flow",
            "hsi",
            [{"url": self.server_url, "api_key": self.api_key, "verify_ssl": True}],
        )
        self.entry_id = created["result"]["entry_id"]
        subentry = await self.api.flow(
            "/api/config/config_entries/subentries/flow",
            [self.entry_id, "camera"],
            [
                {
                    "camera_entity": CAMERA,
                    "trigger_entity": MOTION,
                    "interval": 0,
                    "location_description": "Front door (a scripted demo scene)",
                    "classes": ["person", "vehicle", "animal"],
                    "confidence": 0.5,
                    "burst_frames": 2,
                }
            ],
        )
        self.subentry_title = subentry["title"]
        await self.api.options(self.entry_id, options)
        # The subentry and the options each reload the entry from a task of their own; a reload
        # asked for now queues behind them on the entry's lock and answers once it is done, so
        # no reload (which flushes open batches) can land in the middle of a test.
        await self.api.request("POST", f"/api/config/config_entries/entry/{self.entry_id}/reload")
        await self.wait_entry_loaded()

    async def wait_entry_loaded(self) -> None:
        """The HSI entry loaded and the camera's risk sensor present (available or not)."""

        async def loaded() -> bool:
            entries = await self.api.request("GET", "/api/config/config_entries/entry?domain=hsi")
            return bool(entries) and entries[0]["state"] == "loaded"

        await demo.wait_until(self.ha, "the HSI entry to be loaded", loaded, 90)
        await self.wait_state("sensor.demo_camera_risk_score", lambda s: s is not None)

    # Reading ------------------------------------------------------------------------------------

    async def state(self, entity_id: str) -> str | None:
        """An entity's state, None while it does not exist."""
        found = await self.api.state(entity_id)
        return None if found is None else str(found["state"])

    async def wait_state(
        self, entity_id: str, test: Callable[[str | None], bool], within: float = 60
    ) -> str | None:
        """Poll an entity until its state passes `test`."""
        seen: list[str | None] = []

        async def probe() -> bool:
            seen.append(await self.state(entity_id))
            return test(seen[-1])

        try:
            await demo.wait_until(self.ha, f"{entity_id}", probe, within)
        except demo.DemoError as err:
            raise AssertionError(f"{entity_id}: states seen {seen[-5:]}: {err}") from err
        return seen[-1]

    async def set_motion(self, on: bool) -> None:
        """The demo motion sensor's state, written through the REST API."""
        await self.api.request(
            "POST",
            f"/api/states/{MOTION}",
            json={"state": "on" if on else "off", "attributes": {"device_class": "motion"}},
        )

    async def events(self) -> list[dict[str, Any]]:
        """Every stored event (the event store through the websocket API), newest first."""
        result = await self.api.websocket({"type": "hsi/events/list", "limit": 200})
        events: list[dict[str, Any]] = result["events"]
        return events

    async def issues(self) -> list[dict[str, Any]]:
        """HSI's repair issues (what Settings → Repairs lists)."""
        result = await self.api.websocket({"type": "repairs/list_issues"})
        return [i for i in result["issues"] if i["domain"] == "hsi"]

    async def drawer(self) -> list[dict[str, Any]]:
        """The notification drawer's HSI alerts (persistent notifications)."""
        found: list[dict[str, Any]] = await self.api.websocket(
            {"type": "persistent_notification/get"}
        )
        return [n for n in found if "hsi_event=" in str(n.get("message"))]

    def recorded(self) -> list[dict[str, Any]]:
        """Every call of `notify.recorder`, across restarts."""
        path = self.config_dir / RECORDER_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def ha_errors(self) -> list[str]:
        """ERROR lines about HSI in every Home Assistant log of this stack."""
        return [
            line
            for log in sorted(self.root.glob("ha-*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if " ERROR " in line and "hsi" in line
        ]


@contextlib.asynccontextmanager
async def running_stack(root: Path) -> AsyncIterator[Stack]:
    """A Stack whose processes are stopped however the test ends."""
    stack = Stack(root)
    try:
        yield stack
    finally:
        await stack.close()


async def poll(what: str, probe: Callable[[], Any], within: float = 60) -> Any:
    """Await `probe()` until it returns something truthy (real time: these are processes)."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        if last := await probe():
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what} (last: {last!r})")
