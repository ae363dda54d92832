"""Home Assistant restarted for real, with an event open and with an alert pending.

A real Home Assistant process (2025.4, the integration from this tree) and the real AI server
(scripted profile: it detects what the demo scene's frames say they show), set up through the
REST flows as a user does (tests/e2e/stack.py). The demo camera shows a visitor at the door; a
test turns the demo motion sensor on, the watcher takes a burst, the server detects the person,
the batch opens. Then Home Assistant is restarted:

- by `homeassistant.restart` (Settings → Restart; a graceful stop, exit code 100) and by
  SIGTERM (`docker stop`, systemd): the open batch, or a closed one whose /analyze is still
  waiting, is recorded at the stop from the rules ("integration unloaded"), exactly once;
- by SIGKILL (power cut, OOM killer): what was stored before is there once; a batch still open
  in memory is lost (nothing was written for it yet), and nothing is recorded twice.

What is counted: the event store through the websocket API (`hsi/events/list`), the alerts
through a recording notify target (a file, so it survives the restart), the camera's entities,
and HA's log (no ERROR about hsi).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .stack import Stack, poll, running_stack

RISK = "sensor.demo_camera_risk_score"
PERSON = "binary_sensor.demo_camera_person"  # occupancy: on while the batch sees one
UNLOADED = "integration unloaded"
DEFAULT_BURST_SPACING = 0.5  # custom_components/hsi/const.py (not importable here: no HA)
# Fast path off (the visitor's 0.93 stays below it), no cooldown (each test event is its own),
# a batch that stays open for a minute after the last frame: long enough to restart inside it.
OPEN_BATCH = {
    "home_mode_entity": "input_select.home_mode",
    "fast_path_threshold": 1.0,
    "cooldown": 0,
    "idle_timeout": 60,
    "batch_window": 120,
    "notify_service": ["recorder"],
}


def alerts_of(stack: Stack, event_id: str) -> list[dict[str, Any]]:
    """The recorded notify calls about one event."""
    return [call for call in stack.recorded() if f"hsi_event={event_id}" in call["message"]]


async def open_an_event(stack: Stack) -> None:
    """Motion on: the burst's frames are detected (the person is present), the batch is open."""
    await stack.set_motion(True)
    await stack.wait_state(PERSON, lambda s: s == "on")
    await stack.set_motion(False)  # the batch stays open until its idle timeout


async def test_restart_with_an_event_open(tmp_path: Path) -> None:
    """A graceful restart flushes the open batch into one rules-scored event; after a SIGKILL
    that event is still there once, and the batch open at the kill is gone."""
    async with running_stack(tmp_path) as stack:
        await stack.start_server()
        await stack.start_ha()
        await stack.setup(OPEN_BATCH)
        assert await stack.events() == []

        # 1. homeassistant.restart with the batch open.
        await open_an_event(stack)
        assert (early := await stack.events()) == [], early  # open: nothing recorded yet
        assert await stack.restart_ha("service") == 100
        (event,) = await stack.events()
        assert event["source"] == "rules"
        assert UNLOADED in event["reasoning"]
        assert event["counts"]["person"] == 1
        assert event["frames"] >= 1  # what was detected (a burst cut by the stop ends there)
        # The camera's entities are back, available, showing that event.
        await stack.wait_state(RISK, lambda s: s == str(event["risk_score"]))
        assert await stack.state(PERSON) == "off"
        assert len(alerts_of(stack, event["event_id"])) == 1  # its alert, sent once

        # 2. SIGKILL with a second batch open.
        await open_an_event(stack)
        assert await stack.restart_ha("sigkill") == -9
        # What was stored survives once; the batch that only lived in memory is lost.
        assert [e["event_id"] for e in await stack.events()] == [event["event_id"]]
        await stack.wait_state(RISK, lambda s: s == str(event["risk_score"]))
        assert len(alerts_of(stack, event["event_id"])) == 1

        # 3. Nothing left over fires later: the flushed batch is not recorded again.
        await stack.set_motion(True)  # and the integration still works after both restarts
        await stack.wait_state(PERSON, lambda s: s == "on")
        assert [e["event_id"] for e in await stack.events()] == [event["event_id"]]
        assert not stack.ha_errors(), "\n".join(stack.ha_errors())


async def test_restart_with_an_alert_pending(tmp_path: Path) -> None:
    """The visitor's 0.93 takes the fast path: a preliminary event and its alert. The server is
    then held (SIGSTOP) and the batch closes: its /analyze waits for an answer when Home
    Assistant is stopped (SIGTERM). The stop records the event from the rules in place of the
    preliminary one (same id, no second record) and replaces the preliminary notification
    (same tag) rather than sending a second alert; after the start nothing more is sent."""
    async with running_stack(tmp_path) as stack:
        await stack.start_server()
        await stack.start_ha()
        await stack.setup(
            OPEN_BATCH | {"fast_path_threshold": 0.9, "idle_timeout": 3, "batch_window": 60}
        )
        await stack.set_motion(True)
        (preliminary,) = await wait_events(stack, 1)
        assert preliminary["preliminary"] is True
        await poll("the preliminary alert", lambda: alerts_of_async(stack, preliminary))
        await asyncio.sleep(DEFAULT_BURST_SPACING + 0.5)  # the burst's second frame is detected

        stack.pause_server()  # holds the /analyze that closing the batch sends
        await stack.set_motion(False)
        await stack.wait_state(PERSON, lambda s: s == "off")  # the batch closed: analysing
        (still,) = await stack.events()
        assert still["preliminary"] is True  # the analysis has not answered

        assert await stack.restart_ha("sigterm", between=stack.resume_server) == 0
        (event,) = await stack.events()
        assert event["event_id"] == preliminary["event_id"]
        assert event["preliminary"] is False
        assert event["source"] == "rules"
        assert UNLOADED in event["reasoning"]
        assert event["notify"] is False  # no new alert for it
        # One notification for the incident: the preliminary one, replaced in place (same tag:
        # a phone shows one notification) by the recorded result, sent during the stop.
        first, replaced = alerts_of(stack, event["event_id"])
        assert first["message"].startswith("Preliminary")
        assert not replaced["message"].startswith("Preliminary")
        assert {call["data"]["tag"] for call in stack.recorded()} == {first["data"]["tag"]}
        # The entities are back and show the recorded event; the server answers again.
        await stack.wait_state(RISK, lambda s: s == str(event["risk_score"]))
        await stack.wait_state(stack.connectivity, lambda s: s == "on")
        assert len(await stack.events()) == 1
        # A health poll that met the held server may have said so (the coordinator's one
        # "Error fetching" line); nothing else.
        errors = [e for e in stack.ha_errors() if "Error fetching hsi server data" not in e]
        assert not errors, "\n".join(errors)


async def alerts_of_async(stack: Stack, event: dict[str, Any]) -> list[dict[str, Any]]:
    """alerts_of for poll()."""
    return alerts_of(stack, event["event_id"])


async def wait_events(stack: Stack, count: int) -> list[dict[str, Any]]:
    """The stored events once there are `count` of them."""

    async def probe() -> list[dict[str, Any]] | None:
        events = await stack.events()
        return events if len(events) == count else None

    result: list[dict[str, Any]] = await poll(f"{count} stored events", probe)
    return result
