"""The repair issues from a real degraded server, end to end, in real processes.

The AI server (tiny profile, random weights) starts with Florence-2's folder corrupt (as
tests/ai_server/test_faults.py breaks it): it serves, `/health` is `degraded` and names the model.
A real Home Assistant process connects (the HSI entry created through the REST flow): the "a
model failed" repair issue appears in Settings → Repairs (websocket `repairs/list_issues`),
naming florence. The server is then stopped: the entities go unavailable; started again healthy
on the same port: they are available again and the issue is gone.

Home Assistant polls the server every 30 s (backing off while it is down); the test asks for the
poll at once through `homeassistant.update_entity` on the connectivity sensor, as a user or an
automation can, instead of waiting for the timer (the cadence itself is tested with a frozen
clock in tests/hsi/test_faults.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .stack import Stack, poll, running_stack

RISK = "sensor.demo_camera_risk_score"
OPTIONS = {"home_mode_entity": "input_select.home_mode"}


def broken_florence(folder: Path) -> Path:
    """A Florence-2 folder that cannot load: its config is not JSON, its weights are zeros."""
    folder.mkdir()
    (folder / "config.json").write_text("{ this is not json")
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    return folder


async def poll_server(stack: Stack) -> None:
    """Ask Home Assistant to poll the server now (the connectivity sensor's update)."""
    await stack.api.request(
        "POST",
        "/api/services/homeassistant/update_entity",
        json={"entity_id": stack.connectivity},
    )


async def model_issue(stack: Stack) -> dict[str, Any] | None:
    """The entry's "a model failed" repair issue, if it is raised."""
    wanted = f"model_error_{stack.entry_id}"
    return next((i for i in await stack.issues() if i["issue_id"] == wanted), None)


async def test_model_error_repair_and_server_down_and_up(tmp_path: Path) -> None:
    """Degraded server → the issue names the model; server down → entities unavailable;
    server back healthy → entities available, issue cleared."""
    # Only Florence-2 loads at start (the detector would load on the first frame; none come).
    tiny = {"HSI_PRELOAD": "florence", "HSI_OFFLINE": "true"}
    async with running_stack(tmp_path) as stack:
        await stack.start_server(
            "tiny",
            lambda health: health["status"] == "degraded",
            FLORENCE_MODEL_PATH=str(broken_florence(tmp_path / "florence")),
            **tiny,
        )
        await stack.start_ha()
        await stack.setup(OPTIONS)

        # 1. The issue appears, naming the model and quoting the server's reason.
        issue = await poll("the model issue", lambda: model_issue(stack))
        assert issue["translation_key"] == "model_error"
        assert issue["severity"] == "error"
        placeholders = issue["translation_placeholders"]
        assert placeholders["models"] == "florence"
        assert "florence" in placeholders["errors"]
        assert "not a valid JSON" in placeholders["errors"]
        assert placeholders["url"] == stack.server_url
        # Degraded is not down: the server and the camera entities are available.
        assert await stack.state(stack.connectivity) == "on"
        assert await stack.state(RISK) != "unavailable"

        # 2. Server down: unavailable (the "unreachable" issue waits for its 5 minutes' grace).
        await stack.stop_server()
        await poll_server(stack)
        await stack.wait_state(stack.connectivity, lambda s: s == "off")
        await stack.wait_state(RISK, lambda s: s == "unavailable")
        assert [i["issue_id"] for i in await stack.issues()] == [issue["issue_id"]]

        # 3. Server back, healthy, on the same port: available again, the issue cleared.
        await stack.start_server(
            "tiny", lambda health: health["models"]["florence"]["status"] == "loaded", **tiny
        )
        await poll_server(stack)
        await stack.wait_state(stack.connectivity, lambda s: s == "on")
        await stack.wait_state(RISK, lambda s: s not in (None, "unavailable"))
        assert await model_issue(stack) is None
        assert await stack.issues() == []
        # The one ERROR: Home Assistant's coordinator saying once that the server went away.
        (error,) = stack.ha_errors()
        assert "Error fetching hsi server data: The HSI AI server cannot be reached" in error
