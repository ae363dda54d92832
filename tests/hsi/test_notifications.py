"""Alerts in Home Assistant: payloads per level and platform, one tag per incident, buttons."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from hsi_client import RiskAssessment
from hsi_client.testing import FakeServer, detection, unit
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
import voluptuous as vol

from custom_components.hsi.const import (
    CONF_CONDITION_ENTITY,
    CONF_CONDITION_STATES,
    CONF_NOTIFY_SERVICE,
    CONF_QUIET_END,
    CONF_QUIET_MODE,
    CONF_QUIET_START,
    CONF_ROUTE_LOW,
    CONF_TRIGGER,
    SECTION_ALERTS,
)
from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.notifications import MOBILE_APP_ACTION_EVENT, Notifier
from custom_components.hsi.store import EventFilter
from homeassistant.components import persistent_notification
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.util import dt as dt_util

from .conftest import (
    CAMERA,
    advance,
    camera_subentry,
    make_entry,
    motion,
    setup_integration,
)

IPHONE, PIXEL, TABLET, MAIL = "mobile_app_iphone", "mobile_app_pixel", "mobile_app_tablet", "mail"
SNOOZE = "datetime.front_door_snoozed_until"


def notifier_of(entry: MockConfigEntry) -> Notifier:
    """The entry's notifier."""
    notifier: Notifier = entry.runtime_data.notifier
    return notifier


def phones(hass: HomeAssistant) -> dict[str, list[ServiceCall]]:
    """Companion apps (an iPhone, an Android phone, a tablet of unknown OS) and a mail action."""
    for name, os_name in (("iPhone", "iOS"), ("Pixel", "Android")):
        MockConfigEntry(
            domain="mobile_app", data={"device_name": name, "os_name": os_name}
        ).add_to_hass(hass)
    return {
        name: async_mock_service(hass, "notify", name) for name in (IPHONE, PIXEL, TABLET, MAIL)
    }


def security_event(
    event_id: str, score: int, camera_id: str, *, summary: str = "Someone at the door", **kw: Any
) -> SecurityEvent:
    """An event of the entry's camera."""
    now = dt_util.utcnow()
    return SecurityEvent(
        event_id=event_id,
        camera_id=camera_id,
        camera_name="Front door",
        camera_entity=CAMERA,
        trigger="test",
        started_at=now,
        ended_at=now + timedelta(seconds=5),
        objects=[],
        risk=RiskAssessment.build(score, summary, "because", source="llm"),
        **kw,
    )


def camera_of(entry: MockConfigEntry) -> str:
    (camera_id,) = entry.runtime_data.watchers
    return str(camera_id)


@pytest.mark.parametrize(
    ("score", "ios_level", "android"),
    [
        (10, "passive", {"channel": "hsi_passive", "importance": "low"}),
        (40, "active", {"channel": "hsi_alert", "priority": "high", "ttl": 0}),
        (70, "time-sensitive", {"channel": "hsi_urgent", "priority": "high", "ttl": 0}),
        (90, "critical", {"channel": "alarm_stream", "priority": "high", "ttl": 0}),
    ],
)
async def test_payload_per_level_and_platform(
    hass: HomeAssistant,
    score: int,
    ios_level: str,
    android: dict[str, Any],
    fake_server: FakeServer,
    demo_camera: str,
) -> None:
    """Each level's route, as each platform words it; images and links as each may use them."""
    calls = phones(hass)
    entry = await setup_integration(
        hass,
        make_entry(
            fake_server.url,
            options={
                CONF_NOTIFY_SERVICE: [IPHONE, PIXEL, TABLET, MAIL],
                SECTION_ALERTS: {CONF_ROUTE_LOW: "passive"},
                "notify_min_level": "low",
            },
        ),
    )
    event = security_event("E1", score, camera_of(entry))
    notifier_of(entry).async_event(event)
    await hass.async_block_till_done(wait_background_tasks=True)
    (ios,), (pixel,), (tablet,), (mail,) = (calls[n] for n in (IPHONE, PIXEL, TABLET, MAIL))
    link = "/lovelace/0?hsi_event=E1"

    data = ios.data["data"]
    assert ios.data["title"] == f"Front door: {event.risk.risk_level} risk ({score})"
    assert ios.data["message"] == "Someone at the door"
    assert data["tag"] == "hsi-E1"
    assert data["image"] == "/api/hsi/events/E1/snapshot.jpg"  # relative: the app signs in
    assert data["push"]["interruption-level"] == ios_level
    assert data["url"] == link
    assert "channel" not in data and "clickAction" not in data
    actions = [a["action"] for a in data["actions"]]
    assert actions == [
        f"HSI_SNOOZE_1H|{camera_of(entry)}",
        "HSI_FALSE_ALARM|E1",
        "HSI_KNOWN|E1",
        "URI",
    ]
    assert data["actions"][2]["behavior"] == "textInput"
    assert data["actions"][3]["uri"] == link
    if ios_level == "critical":
        assert data["push"]["sound"] == {"name": "default", "critical": 1, "volume": 1.0}
    else:
        assert "sound" not in data["push"]

    data = pixel.data["data"]
    assert data.items() >= android.items()
    assert data["clickAction"] == link
    assert "push" not in data and "url" not in data
    assert len(data["actions"]) == 3  # Android shows three: "open" is the tap
    assert data["image"] == "/api/hsi/events/E1/snapshot.jpg"

    data = tablet.data["data"]  # unknown OS: both platforms' keys
    assert data["push"]["interruption-level"] == ios_level
    assert data.items() >= android.items()

    data = mail.data["data"]  # outside the app: absolute links, the image signed
    assert data["tag"] == "hsi-E1"
    assert data["url"].startswith("http") and data["url"].endswith(link)
    assert "/api/hsi/events/E1/snapshot.jpg?authSig=" in data["image"]
    assert data["image"].startswith("http")
    assert data["url"] in mail.data["message"]
    assert "actions" not in data and "push" not in data
    assert not persistent_notification._async_get_or_create_notifications(hass)


async def test_persistent_notification_is_the_fallback(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """No target configured, or every target failing: the alert lands in the drawer."""
    notifier = notifier_of(setup_entry)
    notifier.async_event(security_event("E1", 70, camera_of(setup_entry)))
    await hass.async_block_till_done(wait_background_tasks=True)
    drawer = persistent_notification._async_get_or_create_notifications(hass)
    note = drawer["hsi-E1"]
    assert note["title"] == "Front door: high risk (70)"
    assert "/api/hsi/events/E1/snapshot.jpg?authSig=" in note["message"]
    assert "(/lovelace/0?hsi_event=E1)" in note["message"]
    # The analysis replaces it: the same notification id.
    update = security_event("E1", 72, camera_of(setup_entry), summary="A courier")
    notifier.async_event(update)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert list(drawer) == ["hsi-E1"]
    assert drawer["hsi-E1"]["message"].startswith("A courier")


async def test_a_failing_target_falls_back(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """A notify action that does not exist (a phone removed) is logged; the drawer gets it."""
    entry = await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: ["mobile_app_gone"]})
    )
    notifier_of(entry).async_event(security_event("E1", 70, camera_of(entry)))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "hsi-E1" in persistent_notification._async_get_or_create_notifications(hass)


async def test_a_platform_without_data_gets_the_text(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """A notify platform that accepts no `data` gets title and message, the link in the text."""
    strict = vol.Schema({vol.Required("message"): str, vol.Optional("title"): str})
    calls = async_mock_service(hass, "notify", "sms", schema=strict)
    entry = await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: ["sms"]})
    )
    notifier_of(entry).async_event(security_event("E1", 70, camera_of(entry)))
    await hass.async_block_till_done(wait_background_tasks=True)
    (call,) = calls
    assert set(call.data) == {"title", "message"}
    assert call.data["message"].endswith("/lovelace/0?hsi_event=E1")
    assert not persistent_notification._async_get_or_create_notifications(hass)


async def test_the_analysis_replaces_the_fast_path_alert(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """Fast path, then the analysis: one notification (one tag), replaced in place."""
    calls = phones(hass)
    # The rules rate a lone person in daylight low: let low alert, so the fast path does.
    options = {
        CONF_NOTIFY_SERVICE: [IPHONE],
        "notify_min_level": "low",
        SECTION_ALERTS: {CONF_ROUTE_LOW: "active"},
    }
    await setup_integration(hass, make_entry(fake_server.url, options=options))
    fake_server.detections = [[detection("person", 0.95)]]
    fake_server.analyze_risk = {
        "risk_score": 90,
        "risk_level": "critical",
        "summary": "Break-in",
        "reasoning": "r",
    }
    await motion(hass)
    await advance(hass, freezer, 6)
    first, second = calls[IPHONE]
    assert first.data["data"]["tag"] == second.data["data"]["tag"]
    assert first.data["message"].startswith("Preliminary: ")
    assert first.data["data"]["push"]["interruption-level"] == "active"
    assert second.data["message"] == "Break-in"
    assert second.data["data"]["push"]["interruption-level"] == "critical"  # riskier: loud


async def test_the_same_visitor_on_the_next_camera_updates_the_notification(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """A visitor re-identified on the next camera within the cooldown: the same tag, silently."""
    calls = phones(hass)
    motion2 = "input_boolean.motion_garden"
    hass.states.async_set(motion2, STATE_OFF)
    await setup_integration(
        hass,
        make_entry(
            fake_server.url,
            options={CONF_NOTIFY_SERVICE: [IPHONE, PIXEL]},
            subentries=[
                camera_subentry(),
                camera_subentry("camera.demo_camera_png", "Garden", **{CONF_TRIGGER: motion2}),
            ],
        ),
    )
    walker = detection("person", 0.8, embedding=unit(0))
    fake_server.detections = [[walker]]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(calls[IPHONE]) == 1
    fake_server.detections = [[walker]]
    fake_server.analyze_risk = {
        "risk_score": 70,
        "risk_level": "high",
        "summary": "The same man in the garden",
        "reasoning": "r",
    }
    hass.states.async_set(motion2, STATE_ON)
    await hass.async_block_till_done()
    hass.states.async_set(motion2, STATE_OFF)
    await advance(hass, freezer, 6)
    first, second = calls[IPHONE]
    assert second.data["data"]["tag"] == first.data["data"]["tag"]
    assert second.data["title"].startswith("Garden: ")
    assert second.data["data"]["push"]["interruption-level"] == "passive"
    _, android = calls[PIXEL]
    assert android.data["data"]["alert_once"] is True
    # A stranger on that camera is a new incident.
    fake_server.detections = [[detection("person", 0.8, embedding=unit(3))]]
    hass.states.async_set(motion2, STATE_ON)
    await hass.async_block_till_done()
    hass.states.async_set(motion2, STATE_OFF)
    await advance(hass, freezer, 6)
    assert calls[IPHONE][2].data["data"]["tag"] != first.data["data"]["tag"]


async def test_condition_and_quiet_hours(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """Alerts only while the condition entity is in a given state; quiet hours silence them."""
    calls = phones(hass)
    hass.states.async_set("person.anna", "home")
    local_now = dt_util.now()
    entry = await setup_integration(
        hass,
        make_entry(
            fake_server.url,
            options={
                CONF_NOTIFY_SERVICE: [IPHONE],
                SECTION_ALERTS: {
                    CONF_CONDITION_ENTITY: "person.anna",
                    CONF_CONDITION_STATES: ["not_home"],
                    CONF_QUIET_START: (local_now + timedelta(hours=1)).strftime("%H:%M:00"),
                    CONF_QUIET_END: (local_now + timedelta(hours=3)).strftime("%H:%M:00"),
                    CONF_QUIET_MODE: "silent",
                },
            },
        ),
    )
    notifier = notifier_of(entry)
    camera_id = camera_of(entry)
    notifier.async_event(security_event("E1", 70, camera_id))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not calls[IPHONE]  # Anna is home
    assert not persistent_notification._async_get_or_create_notifications(hass)
    hass.states.async_set("person.anna", "not_home")
    notifier.async_event(security_event("E2", 70, camera_id))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert calls[IPHONE][-1].data["data"]["push"]["interruption-level"] == "time-sensitive"
    freezer.tick(timedelta(hours=2))
    notifier.async_event(security_event("E3", 70, camera_id))
    notifier.async_event(security_event("E4", 90, camera_id))
    await hass.async_block_till_done(wait_background_tasks=True)
    levels = [c.data["data"]["push"]["interruption-level"] for c in calls[IPHONE]]
    assert levels == ["time-sensitive", "passive", "critical"]  # critical comes through


async def test_buttons(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """Snooze 1 h, false alarm and "known person" (feeds the gallery) from the notification."""
    calls = phones(hass)
    entry = await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: [IPHONE]})
    )
    runtime = entry.runtime_data
    fake_server.detections = [[detection("person", 0.8, embedding=unit(2))]]
    await motion(hass)
    await advance(hass, freezer, 6)
    (alert,) = calls[IPHONE]
    event_id = alert.data["data"]["event_id"]
    buttons = [a["action"] for a in alert.data["data"]["actions"]]

    hass.bus.async_fire(MOBILE_APP_ACTION_EVENT, {"action": buttons[1]})
    await hass.async_block_till_done()
    assert (await runtime.store.async_get(event_id)).false_alarm
    # Dealt with: its notification is cleared on the phones.
    cleared = calls[IPHONE][-1].data
    assert cleared == {"message": "clear_notification", "data": {"tag": f"hsi-{event_id}"}}

    # The reply names someone enrolled (in any case) or someone new; the person is remembered.
    runtime.gallery.enroll("Alice", "person", unit(7))
    hass.bus.async_fire(MOBILE_APP_ACTION_EVENT, {"action": buttons[2], "reply_text": " alice "})
    await hass.async_block_till_done()
    assert (await runtime.store.async_get(event_id)).identity == "Alice"
    assert [e.name for e in runtime.gallery.enrolled] == ["Alice", "Alice"]
    match = runtime.gallery.match(unit(2), "person")
    assert match is not None and match[0].name == "Alice"  # the next sighting is recognised

    hass.bus.async_fire(MOBILE_APP_ACTION_EVENT, {"action": buttons[0]})
    await hass.async_block_till_done()
    until = dt_util.parse_datetime(hass.states.get(SNOOZE).state)
    assert until is not None
    assert timedelta(minutes=59) < until - dt_util.utcnow() <= timedelta(hours=1)
    # Snoozed: the next event is recorded, but no alert goes out.
    fake_server.detections = [[detection("person", 0.8, embedding=unit(5))]]
    fake_server.analyze_risk = {
        "risk_score": 90,
        "risk_level": "critical",
        "summary": "x",
        "reasoning": "r",
    }
    await advance(hass, freezer, 400)
    await motion(hass)
    await advance(hass, freezer, 6)
    events, _cursor = await runtime.store.async_list(EventFilter())
    assert len(events) == 2
    assert len(calls[IPHONE]) == 2  # the alert and its clearing, nothing more

    # Other integrations' buttons and unknown ids are ignored.
    hass.bus.async_fire(MOBILE_APP_ACTION_EVENT, {"action": "OTHER_THING"})
    hass.bus.async_fire(MOBILE_APP_ACTION_EVENT, {"action": "HSI_FALSE_ALARM|nope"})
    await hass.async_block_till_done()
