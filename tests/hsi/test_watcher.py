"""The per-camera pipeline against the fake server: triggers, batches, fast path, fallbacks."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import FakeServer, detection, unit
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
)

from custom_components.hsi.const import (
    CONF_HOME_MODE_ENTITY,
    CONF_INTERVAL,
    CONF_NOTIFY_SERVICE,
    DOMAIN,
)
from custom_components.hsi.coordinator import ISSUE_UNREACHABLE
from custom_components.hsi.watcher import CameraWatcher
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

from .conftest import (
    MOTION,
    advance,
    camera_subentry,
    make_entry,
    motion,
    setup_integration,
)

RISK = "sensor.front_door_risk_score"
LEVEL = "sensor.front_door_risk_level"
LAST = "sensor.front_door_last_event"
PEOPLE = "sensor.front_door_people"
PERSON = "binary_sensor.front_door_person"
THREAT = "binary_sensor.front_door_threat"
EVENT = "event.front_door_security_event"
IMAGE = "image.front_door_snapshot"
SWITCH = "switch.front_door_analysis"


def watcher_of(entry: MockConfigEntry) -> CameraWatcher:
    """The only camera's watcher."""
    (watcher,) = entry.runtime_data.watchers.values()
    return watcher


async def test_motion_to_security_event(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
    detection_events: list[Event],
) -> None:
    """Trigger → detect → batch → idle → analyze → entities, bus events, history."""
    fake_server.detections = [
        [detection("person", 0.8, unit(0)), detection("dog", 0.7), detection("chair", 0.9)]
    ]
    assert hass.states.get(RISK).state == "unknown"
    await motion(hass)

    request = fake_server.last
    assert (request.path, request.query) == ("/detect", {"confidence": "0.5", "embed": "1"})
    assert len(detection_events) == 1
    data = detection_events[0].data
    assert [o["class"] for o in data["objects"]] == ["person", "dog"]  # chair is not of interest
    assert data["counts"] == {"person": 1, "vehicle": 0, "animal": 1}
    assert data["camera"] == "Front door"
    assert hass.states.get(PEOPLE).state == "1"
    assert hass.states.get(PERSON).state == STATE_ON
    assert watcher_of(setup_entry).state.batch_open
    assert security_events == []

    await advance(hass, freezer, 6)  # idle timeout 5 s

    assert len(security_events) == 1
    event = security_events[0].data
    assert event["risk_score"] == 72
    assert event["risk_level"] == "high"
    assert event["source"] == "llm"
    assert event["flags"] == [{"type": "night", "description": "after dark", "severity": "warning"}]
    assert event["description"] == "A person in a dark jacket at the front door."
    assert event["preliminary"] is False
    assert event["update"] is False
    assert event["notify"] is True
    assert event["snapshot_url"] == f"/api/hsi/events/{event['event_id']}/snapshot.jpg"
    call = fake_server.analyze_calls[-1]
    assert len(call.frames) == 1
    meta = call.metadata
    assert meta["camera"]["name"] == "Front door"
    assert meta["context"]["time_of_day"] in ("night", "morning", "afternoon", "evening")
    assert meta["detections"][0][0]["class"] == "person"
    assert meta["options"] == {"enrich": True, "describe": True, "llm": True}

    assert hass.states.get(RISK).state == "72"
    assert hass.states.get(LEVEL).state == "high"
    last = hass.states.get(LAST)
    assert last.state == "High · 1 person"  # short; the summary is an attribute
    assert last.attributes["summary"] == "Unknown person at the door"
    assert last.attributes["reasoning"].startswith("A person nobody knows")
    assert hass.states.get(THREAT).state == STATE_ON
    assert hass.states.get(PERSON).state == STATE_OFF  # the batch closed: nobody seen since
    event_state = hass.states.get(EVENT)
    assert event_state.attributes["event_type"] == "high"
    assert event_state.attributes["event_id"] == event["event_id"]
    assert hass.states.get(IMAGE).state != "unknown"
    store = setup_entry.runtime_data.store
    assert [e.event_id for e in store.recent()] == [event["event_id"]]
    snapshot = store.image_path(event["event_id"], "snapshot")
    assert snapshot is not None
    assert snapshot.read_bytes()[:2] == b"\xff\xd8"

    # The threat clears after the hold time (120 s by default).
    await advance(hass, freezer, 125)
    assert hass.states.get(THREAT).state == STATE_OFF


async def test_window_closes_long_event(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """Continuous activity is cut into events by the window (60 s in these tests)."""
    fake_server.default_detections = [detection("car", 0.8)]
    for _ in range(5):
        await motion(hass)
        await advance(hass, freezer, 4)  # under the idle timeout each time
    assert security_events == []
    for _ in range(12):
        await motion(hass)
        await advance(hass, freezer, 4)
    assert len(security_events) >= 1
    assert security_events[0].data["frames"] >= 14
    assert len(fake_server.analyze_calls[0].frames) == 4  # key frames only


async def test_fast_path_then_update(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """A sure person raises a preliminary event at once; the analysis updates it in place."""
    fake_server.detections = [[detection("person", 0.95)]]
    await motion(hass)
    assert len(security_events) == 1
    first = security_events[0].data
    assert first["preliminary"] is True
    assert first["source"] == "rules"
    assert first["risk_level"] in ("low", "medium")
    assert hass.states.get(LAST).attributes["preliminary"] is True
    assert first["images"] == ["snapshot"]  # the preliminary event: its snapshot only

    await advance(hass, freezer, 6)
    assert len(security_events) == 2
    final = security_events[1].data
    assert final["event_id"] == first["event_id"]
    assert final["preliminary"] is False
    assert final["update"] is True
    assert final["source"] == "llm"
    assert final["notify"] is True  # level changed: the alert is replaced
    # One record, its files updated: the analysis' snapshot and the key frames it analysed.
    assert len(setup_entry.runtime_data.store.recent()) == 1
    assert final["images"] == ["snapshot", "frame0"]
    store = setup_entry.runtime_data.store
    assert (await store.async_get(final["event_id"])).images == ("snapshot", "frame0")


async def test_analyze_missing_falls_back_to_rules(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """A server without /analyze still yields an event, marked as rule-based."""
    fake_server.analyze_status = 404
    fake_server.detections = [[detection("person", 0.7), detection("person", 0.6)]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(fake_server.analyze_calls) == 1  # 404 is not retried
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert event.data["risk_score"] > 0
    assert "server has no /analyze" in event.data["reasoning"]
    assert event.data["summary"].startswith("2 persons at Front door")
    assert hass.states.get(LAST).attributes["source"] == "rules"


async def test_analyze_retried(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """A busy server is retried (bounded) before the analysis succeeds."""
    fake_server.analyze_failures = 2
    fake_server.detections = [[detection("person", 0.7)]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(fake_server.analyze_calls) == 3
    assert security_events[0].data["source"] == "llm"

    fake_server.analyze_status = 422  # refused: asking again would not help
    fake_server.detections = [[detection("person", 0.7)]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(fake_server.analyze_calls) == 4
    assert security_events[1].data["source"] == "rules"


async def test_busy_detector_retried(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    detection_events: list[Event],
) -> None:
    """503 queue_full on /detect: the frame is sent again after Retry-After (bounded)."""
    fake_server.detect_busy = 2
    fake_server.detections = [[detection("person", 0.7)]]
    await motion(hass)
    assert fake_server.count("/detect") == 3
    assert len(detection_events) == 1

    fake_server.detect_busy = 3  # still busy after every try: this burst gives up
    await motion(hass)
    assert fake_server.count("/detect") == 6
    assert len(detection_events) == 1
    assert watcher_of(setup_entry).state.batch_open  # the open event is kept


async def test_server_down_mid_event(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """The server dies mid-event: the event is still recorded, entities go unavailable,
    a repair issue appears after the grace period and everything recovers by itself."""
    fake_server.detections = [[detection("person", 0.7)]]
    await motion(hass)
    fake_server.down = True
    await motion(hass)  # this frame is kept without detections
    await advance(hass, freezer, 6)
    assert len(fake_server.analyze_calls) == 0
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert event.data["frames"] == 2
    assert hass.states.get(RISK).state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.hsi_ai_server_127_0_0_1_connectivity").state == STATE_OFF
    issue_id = f"{ISSUE_UNREACHABLE}_{setup_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await advance(hass, freezer, 400)
    await advance(hass, freezer, 400)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    fake_server.down = False
    await advance(hass, freezer, 700)
    assert hass.states.get(RISK).state == str(event.data["risk_score"])
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get("binary_sensor.hsi_ai_server_127_0_0_1_connectivity").state == STATE_ON


async def test_refused_key_starts_reauth(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key the server no longer accepts starts reauthentication; the failure is logged once."""
    fake_server.default_detections = [detection("person", 0.7)]
    fake_server.api_key = "rotated"
    await motion(hass)
    await motion(hass)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    assert caplog.text.count("failed: unauthorized") == 1
    fake_server.api_key = None
    await motion(hass)
    assert "answers again" in caplog.text


async def test_cooldown_and_reidentification(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """The same visitor within the cooldown updates one event without a second alert; someone
    new gets a new event and an alert; the same person again, riskier, is alerted again."""
    fake_server.detections = [[detection("person", 0.7, unit(1))]]
    await motion(hass)
    await advance(hass, freezer, 6)
    fake_server.detections = [[detection("person", 0.7, unit(1))]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(security_events) == 2
    first, second = security_events[0].data, security_events[1].data
    assert second["event_id"] == first["event_id"]
    assert second["update"] is True
    assert second["occurrences"] == 2
    assert second["notify"] is False
    assert len(setup_entry.runtime_data.store.recent()) == 1
    known = fake_server.analyze_calls[1].metadata["context"]["known_matches"]
    assert known[0]["description"] == "same unknown person seen 2 times today"

    fake_server.detections = [[detection("person", 0.7, unit(2))]]
    await motion(hass)
    await advance(hass, freezer, 6)
    third = security_events[2].data
    assert third["event_id"] != first["event_id"]
    assert third["notify"] is True  # someone nobody was told about, inside the cooldown

    fake_server.analyze_risk = {"risk_score": 90, "summary": "Break-in", "reasoning": "r"}
    fake_server.detections = [[detection("person", 0.7, unit(2))]]
    await motion(hass)
    await advance(hass, freezer, 6)
    fourth = security_events[3].data
    assert fourth["risk_level"] == "critical"
    assert fourth["update"] is False  # riskier: not folded into the earlier visit
    assert fourth["notify"] is True  # the same person, but the risk rose


async def test_switch_pauses_analysis(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """With the analysis switch off, triggers are ignored."""
    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    assert hass.states.get(SWITCH).state == STATE_OFF
    await motion(hass)
    assert fake_server.count("/detect") == 0
    await hass.services.async_call("switch", "turn_on", {"entity_id": SWITCH}, blocking=True)
    await motion(hass)
    assert fake_server.count("/detect") == 1


async def test_interval_trigger_and_context(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """The interval triggers bursts; home mode reaches the analysis context."""
    hass.states.async_set("alarm_control_panel.home", "armed_away")
    await setup_integration(
        hass,
        make_entry(
            fake_server.url,
            subentries=[camera_subentry(**{CONF_INTERVAL: 10, "burst_frames": 2})],
            options={CONF_HOME_MODE_ENTITY: "alarm_control_panel.home"},
        ),
    )
    fake_server.default_detections = [detection("person", 0.7)]
    await advance(hass, freezer, 11)
    assert fake_server.count("/detect") == 2
    await advance(hass, freezer, 6)
    assert fake_server.analyze_calls[0].metadata["context"]["home_mode"] == "armed_away"
    assert len(fake_server.analyze_calls[0].frames) == 2


async def test_notifications(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """Alerts go to the notify action with one tag per event."""
    # At night: the rules rate the fast path's lone person medium (an alert) whatever the hour
    # the suite runs at (in daylight they rate it low: no preliminary alert).
    freezer.move_to(dt_util.start_of_local_day() + timedelta(hours=3))
    calls = async_mock_service(hass, "notify", "phone")
    await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: "phone"})
    )
    fake_server.detections = [[detection("person", 0.95)]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(calls) == 2  # preliminary, then the analysis with a new level
    tags = {c.data["data"]["tag"] for c in calls}
    assert len(tags) == 1
    assert calls[0].data["message"].startswith("Preliminary: ")
    assert calls[1].data["title"] == "Front door: high risk (72)"


async def test_unload_records_open_batch(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    security_events: list[Event],
) -> None:
    """Unloading mid-event records the event from the rules and leaves nothing running."""
    fake_server.detections = [[detection("person", 0.7)]]
    watcher = watcher_of(setup_entry)
    await motion(hass)
    assert watcher.state.batch_open
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert "integration unloaded" in event.data["reasoning"]
    assert watcher.state.snapshot is not None
    assert watcher.state.snapshot[:2] == b"\xff\xd8"  # the frame's JPEG, not the frame
    assert not watcher._tasks
    assert not watcher._timers
    assert not watcher._unsubs
    # Motion after unload does nothing.
    await motion(hass)
    assert fake_server.count("/detect") == 1


async def test_update_entity_shows_the_current_state(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """A manual refresh of a camera entity (push-only state) keeps it available and unchanged."""
    fake_server.detections = [[detection("person", 0.7)]]
    await motion(hass)
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": PEOPLE}, blocking=True
    )
    assert hass.states.get(PEOPLE).state == "1"
    assert watcher_of(setup_entry).coordinator.last_update_success


async def test_looks_again_while_motion_stays_on(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """While the motion sensor stays on, one more snapshot every 10 s; none once it is off."""
    fake_server.default_detections = [detection("person", 0.7)]
    hass.states.async_set(MOTION, STATE_ON)
    await hass.async_block_till_done()
    assert fake_server.count("/detect") == 1  # the camera's burst (1 frame in these tests)
    await advance(hass, freezer, 10)
    await advance(hass, freezer, 10)
    assert fake_server.count("/detect") == 3
    hass.states.async_set(MOTION, STATE_OFF)
    await hass.async_block_till_done()
    await advance(hass, freezer, 30)
    assert fake_server.count("/detect") == 3
