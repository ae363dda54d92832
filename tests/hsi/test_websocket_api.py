"""The websocket API of the timeline: list, get, subscribe, feedback, cameras, delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hsi_client import AnalyzedObject, BoundingBox, RiskAssessment
from hsi_client.testing import FakeServer
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.hsi.const import CONF_TRIGGER, CONF_VERIFY_SSL, DOMAIN
from custom_components.hsi.models import HsiConfigEntry, SecurityEvent
from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .conftest import CAMERA, camera_subentry, jpeg, make_entry, setup_integration

BACK = "camera.back_yard"
PERSON = AnalyzedObject("person", 0.9, 0, BoundingBox(40, 30, 100, 150))
CAR = AnalyzedObject("car", 0.8, 0, BoundingBox(0, 0, 200, 100))
# Far enough in the past for a fixed order, recent enough for the default retention (30 days).
BASE = dt_util.utcnow().replace(microsecond=0) - timedelta(days=2)


def _event(
    entry: HsiConfigEntry,
    event_id: str,
    camera_id: str,
    *,
    minutes: float = 0,
    score: int = 40,
    source: str = "rules",
    objects: Sequence[AnalyzedObject] = (PERSON,),
    gallery_ids: set[str] | None = None,
) -> SecurityEvent:
    started = BASE + timedelta(minutes=minutes)
    return SecurityEvent(
        event_id=event_id,
        entry_id=entry.entry_id,
        camera_id=camera_id,
        camera_name=camera_id,
        camera_entity=None,
        trigger="test",
        started_at=started,
        ended_at=started + timedelta(seconds=20),
        objects=list(objects),
        risk=RiskAssessment.build(score, f"summary {event_id}", "reasoning", source=source),
        gallery_ids=gallery_ids or set(),
    )


async def _add(entry: HsiConfigEntry, event: SecurityEvent, snapshot: bytes | None = None) -> None:
    await entry.runtime_data.store.async_add(event, snapshot)


def _cameras(entry: MockConfigEntry) -> tuple[str, str]:
    """The subentry ids (camera_id) of the front door and the back yard."""
    ids = {s.title: s.subentry_id for s in entry.subentries.values()}
    return ids["Front door"], ids["Back yard"]


@pytest.fixture
async def entry(hass: HomeAssistant, demo_camera: str, fake_server: FakeServer) -> MockConfigEntry:
    """One server entry with two cameras (the back yard has no trigger: it never fires)."""
    return await setup_integration(
        hass,
        make_entry(
            fake_server.url,
            subentries=[
                camera_subentry(),
                camera_subentry(BACK, "Back yard", **{CONF_TRIGGER: None}),
            ],
        ),
    )


@pytest.fixture
async def ws(hass_ws_client: WebSocketGenerator, entry: MockConfigEntry) -> MockHAClientWebSocket:
    """A websocket connection of an administrator."""
    return await hass_ws_client()


async def _call(ws: MockHAClientWebSocket, command: str, **data: Any) -> dict[str, Any]:
    """Send one command; its answer (result or error)."""
    await ws.send_json_auto_id({"type": command, **data})
    answer: dict[str, Any] = await ws.receive_json()
    return answer


async def _result(ws: MockHAClientWebSocket, command: str, **data: Any) -> Any:
    answer = await _call(ws, command, **data)
    assert answer["success"], answer
    return answer["result"]


async def _error(ws: MockHAClientWebSocket, command: str, **data: Any) -> str:
    answer = await _call(ws, command, **data)
    assert not answer["success"], answer
    code: str = answer["error"]["code"]
    return code


async def _ids(ws: MockHAClientWebSocket, **filters: Any) -> list[str]:
    result = await _result(ws, "hsi/events/list", **filters)
    return [e["event_id"] for e in result["events"]]


async def test_list_filters(ws: MockHAClientWebSocket, entry: MockConfigEntry) -> None:
    """Every filter selects exactly its events; newest first."""
    front, back = _cameras(entry)
    await _add(entry, _event(entry, "a", front, minutes=0, score=10))  # low
    await _add(entry, _event(entry, "b", back, minutes=1, score=45, source="llm"))  # medium
    await _add(entry, _event(entry, "c", front, minutes=2, score=70))  # high
    await _add(entry, _event(entry, "d", back, minutes=3, score=90, source="llm"))  # critical
    await entry.runtime_data.store.async_feedback("c", acknowledged=True)

    assert await _ids(ws) == ["d", "c", "b", "a"]
    assert await _ids(ws, cameras=[front]) == ["c", "a"]
    assert await _ids(ws, cameras=[back, front]) == ["d", "c", "b", "a"]
    assert await _ids(ws, cameras=[]) == ["d", "c", "b", "a"]  # none chosen: every camera
    assert await _ids(ws, min_level="medium") == ["d", "c", "b"]
    assert await _ids(ws, min_level="critical") == ["d"]
    assert await _ids(ws, source="llm") == ["d", "b"]
    assert await _ids(ws, source="rules") == ["c", "a"]
    assert await _ids(ws, acknowledged=True) == ["c"]
    assert await _ids(ws, acknowledged=False) == ["d", "b", "a"]
    # start inclusive, end exclusive; an offset-free time is local time.
    one = BASE + timedelta(minutes=1)
    three = BASE + timedelta(minutes=3)
    assert await _ids(ws, start=one.isoformat(), end=three.isoformat()) == ["c", "b"]
    local = dt_util.as_local(one).replace(tzinfo=None).isoformat()
    assert await _ids(ws, start=local) == ["d", "c", "b"]
    assert await _ids(ws, cameras=[back], min_level="critical", source="llm") == ["d"]
    assert await _ids(ws, entry_id=entry.entry_id, cameras=[front], min_level="high") == ["c"]

    result = await _result(ws, "hsi/events/list", limit=2)
    assert [e["event_id"] for e in result["events"]] == ["d", "c"]
    assert result["next_cursor"]
    event = result["events"][1]
    assert event["camera_id"] == front
    assert event["risk_level"] == "high"
    assert event["acknowledged"] is True
    assert event["summary"] == "summary c"


async def test_paging_120_events_over_two_entries(
    hass: HomeAssistant,
    ws: MockHAClientWebSocket,
    entry: MockConfigEntry,
    fake_server: FakeServer,
) -> None:
    """Cursor pages through the merged events of two entries: none twice, none missing.

    Many events share a start time (within and across entries): the order is (started_at,
    event_id) descending, and a page boundary inside a tie loses nothing.
    """
    second = MockConfigEntry(
        domain=DOMAIN,
        title="Second server",
        unique_id="second",
        data={CONF_URL: fake_server.url, CONF_API_KEY: None, CONF_VERIFY_SSL: True},
        subentries_data=[camera_subentry("camera.garage", "Garage", **{CONF_TRIGGER: None})],
    )
    await setup_integration(hass, second)
    front, _ = _cameras(entry)
    garage = next(iter(second.subentries))
    expected: list[tuple[datetime, str]] = []
    for index in range(120):
        target, camera = (entry, front) if index % 3 else (second, garage)
        event = _event(target, f"ev{index:03d}", camera, minutes=index // 10)  # ties of 10
        await _add(target, event)
        expected.append((event.started_at, event.event_id))
    expected.sort(reverse=True)

    for limit in (7, 50):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await _result(
                ws, "hsi/events/list", limit=limit, **({"cursor": cursor} if cursor else {})
            )
            seen += [e["event_id"] for e in page["events"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [event_id for _, event_id in expected]
        assert pages == -(-120 // limit)

    # One entry only: its own 40 events.
    assert len(await _ids(ws, entry_id=second.entry_id, limit=200)) == 40
    # The end of the list: a full last page says so (no empty extra page).
    page = await _result(ws, "hsi/events/list", limit=120)
    assert len(page["events"]) == 120
    assert page["next_cursor"] is None


async def _next_event(ws: MockHAClientWebSocket, subscription: int) -> dict[str, Any]:
    message = await ws.receive_json()
    assert message["type"] == "event"
    assert message["id"] == subscription
    event: dict[str, Any] = message["event"]
    return event


async def test_subscribe_filters_updates_and_reload(
    hass: HomeAssistant, ws: MockHAClientWebSocket, entry: MockConfigEntry
) -> None:
    """Only matching events arrive; updates arrive as updated; the subscription survives a
    reload of the entry and ends with unsubscribe."""
    front, back = _cameras(entry)
    await ws.send_json_auto_id(
        {"type": "hsi/events/subscribe", "cameras": [front], "min_level": "high"}
    )
    answer = await ws.receive_json()
    assert answer["success"], answer
    subscription: int = answer["id"]

    await _add(entry, _event(entry, "other-camera", back, score=95))
    await _add(entry, _event(entry, "too-low", front, score=20))
    await _add(entry, _event(entry, "match", front, score=70))
    # The first message is the matching event: the two before it were not sent.
    message = await _next_event(ws, subscription)
    assert (message["kind"], message["event"]["event_id"]) == ("added", "match")
    assert message["event"]["risk_level"] == "high"

    # The analysis replaces the fast-path event in place: an update.
    await _add(entry, _event(entry, "match", front, score=88, source="llm"))
    message = await _next_event(ws, subscription)
    assert message["kind"] == "updated"
    assert message["event"]["risk_level"] == "critical"
    assert message["event"]["source"] == "llm"

    # Feedback through the API is an update too (its message may come before the result).
    await ws.send_json_auto_id(
        {"type": "hsi/events/feedback", "event_id": "match", "action": "acknowledge"}
    )
    answers = sorted([await ws.receive_json(), await ws.receive_json()], key=lambda m: m["type"])
    assert [m["type"] for m in answers] == ["event", "result"]
    assert answers[1]["result"]["event"]["acknowledged"] is True
    message = answers[0]["event"]
    assert answers[0]["id"] == subscription
    assert (message["kind"], message["event"]["acknowledged"]) == ("updated", True)

    # A low event rescored high enters the filter by an update.
    await _add(entry, _event(entry, "too-low", front, score=65))
    message = await _next_event(ws, subscription)
    assert (message["kind"], message["event"]["event_id"]) == ("updated", "too-low")
    # ... and leaves it again: the subscriber hears it is gone from its view.
    await _add(entry, _event(entry, "too-low", front, score=5))
    message = await _next_event(ws, subscription)
    assert (message["kind"], message["event"]["event_id"]) == ("removed", "too-low")

    # Options changed: the entry reloads with a new store; the subscription follows it.
    old_store = entry.runtime_data.store
    hass.config_entries.async_update_entry(entry, options=entry.options | {"cooldown": 60})
    await hass.async_block_till_done()
    assert entry.runtime_data.store is not old_store
    await _add(entry, _event(entry, "after-reload", front, minutes=5, score=80))
    message = await _next_event(ws, subscription)
    assert (message["kind"], message["event"]["event_id"]) == ("added", "after-reload")

    # Deleted: removed.
    await ws.send_json_auto_id({"type": "hsi/events/delete", "event_id": "after-reload"})
    answers = sorted([await ws.receive_json(), await ws.receive_json()], key=lambda m: m["type"])
    assert answers[1]["success"]
    message = answers[0]["event"]
    assert (message["kind"], message["event"]["event_id"]) == ("removed", "after-reload")

    # Unsubscribed: nothing more. A second subscription proves the first one is silent: its
    # message is the next one on the connection.
    await _result(ws, "unsubscribe_events", subscription=subscription)
    await ws.send_json_auto_id({"type": "hsi/events/subscribe", "acknowledged": False})
    answer = await ws.receive_json()
    assert answer["success"], answer
    await _add(entry, _event(entry, "late", front, minutes=6, score=99))
    message = await _next_event(ws, answer["id"])
    assert message["event"]["event_id"] == "late"


async def test_subscription_ends_with_the_connection(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, entry: MockConfigEntry
) -> None:
    """A closed connection leaves no listener on the store."""
    store = entry.runtime_data.store
    before = len(store._listeners)
    ws = await hass_ws_client()
    await ws.send_json_auto_id({"type": "hsi/events/subscribe"})
    assert (await ws.receive_json())["success"]
    assert len(store._listeners) == before + 1
    await ws.close()
    await hass.async_block_till_done()
    assert len(store._listeners) == before


async def test_feedback_actions(ws: MockHAClientWebSocket, entry: MockConfigEntry) -> None:
    """Each action sets its flag, stored (get shows it), and can be undone where it says so."""
    front, _ = _cameras(entry)
    await _add(entry, _event(entry, "e", front))
    steps: list[tuple[str, dict[str, Any]]] = [
        ("acknowledge", {"acknowledged": True}),
        ("unacknowledge", {"acknowledged": False}),
        ("keep", {"keep": True}),
        ("unkeep", {"keep": False}),
        ("false_alarm", {"false_alarm": True, "acknowledged": True}),
    ]
    for action, expected in steps:
        result = await _result(ws, "hsi/events/feedback", event_id="e", action=action)
        stored = (await _result(ws, "hsi/events/get", event_id="e"))["event"]
        for key, value in expected.items():
            assert result["event"][key] == value, action
            assert stored[key] == value, action
    stored_event = await entry.runtime_data.store.async_get("e")
    assert stored_event is not None
    assert (stored_event.false_alarm, stored_event.keep) == (True, False)


async def test_feedback_identity_enrols_the_person(
    ws: MockHAClientWebSocket, entry: MockConfigEntry
) -> None:
    """'This is Alice' names the event and adds its person's embedding to the gallery."""
    front, _ = _cameras(entry)
    gallery = entry.runtime_data.gallery
    gallery.enroll("Alice", "person", [1.0, 0.0, 0.0, 0.0])
    gallery.enroll("Family car", "vehicle", [0.0, 0.0, 0.0, 1.0])
    # The pipeline's sighting of someone new in this event.
    visitor = [0.0, 0.6, 0.8, 0.0]
    gallery_id, match = gallery.observe(visitor, "person", front, "seen")
    assert match is None
    await _add(entry, _event(entry, "seen", front, gallery_ids={gallery_id}))

    result = await _result(
        ws, "hsi/events/feedback", event_id="seen", action="identity", name="alice"
    )
    assert result["event"]["identity"] == "Alice"  # the enrolled spelling
    assert result["event"]["acknowledged"] is True
    alice = [e for e in gallery.enrolled if e.name == "Alice"]
    assert len(alice) == 2
    assert alice[1].embedding == pytest.approx(visitor)
    assert alice[1].label == "person"
    # The next sighting of that person is Alice.
    found = gallery.match(visitor, "person")
    assert found is not None
    assert found[0].name == "Alice"
    assert found[0].enrolled

    # Not enrolled: refused, and nothing changes.
    assert (
        await _error(ws, "hsi/events/feedback", event_id="seen", action="identity", name="Bob")
        == "invalid_format"
    )
    # A vehicle's name on an event with no vehicle: nothing to remember.
    assert (
        await _error(
            ws, "hsi/events/feedback", event_id="seen", action="identity", name="Family car"
        )
        == "no_embedding"
    )
    # A vehicle name takes the event's vehicle, under its own class.
    car_id, _ = gallery.observe([0.0, 0.0, 1.0, 1.0], "car", front, "car")
    await _add(
        entry, _event(entry, "car", front, objects=[PERSON, CAR], gallery_ids={car_id, gallery_id})
    )
    result = await _result(
        ws, "hsi/events/feedback", event_id="car", action="identity", name="Family car"
    )
    assert result["event"]["identity"] == "Family car"
    cars = [e for e in gallery.enrolled if e.name == "Family car"]
    assert [e.label for e in cars] == ["vehicle", "car"]
    assert len(gallery.enrolled) == 4
    stored = await entry.runtime_data.store.async_get("seen")
    assert stored is not None
    assert stored.identity == "Alice"


async def test_signed_image_urls(
    hass: HomeAssistant,
    ws: MockHAClientWebSocket,
    entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
) -> None:
    """Image paths come signed for the connection: fetchable without a token, not unsigned."""
    front, _ = _cameras(entry)
    picture = jpeg(64, 48, (200, 10, 10))
    await _add(entry, _event(entry, "pic", front), snapshot=picture)
    await _add(entry, _event(entry, "bare", front, minutes=1))

    events = (await _result(ws, "hsi/events/list"))["events"]
    bare, pic = events
    assert bare["image_urls"] == {}
    url = pic["image_urls"]["snapshot"]
    assert url.startswith("/api/hsi/events/pic/snapshot.jpg?authSig=")
    assert pic["snapshot_url"] == url
    client = await hass_client_no_auth()
    response = await client.get(url)
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == picture
    assert (await client.get("/api/hsi/events/pic/snapshot.jpg")).status == 401
    # A signature is for its own path only.
    signature = url.partition("?")[2]
    assert (await client.get(f"/api/hsi/events/bare/snapshot.jpg?{signature}")).status == 401

    got = (await _result(ws, "hsi/events/get", event_id="pic"))["event"]
    assert got["image_urls"]["snapshot"] == url  # signed once, reused for half its lifetime
    # Another user's connection gets its own signature, which works as well.
    other = await hass_ws_client(hass, hass_read_only_access_token)
    theirs = (await _result(other, "hsi/events/get", event_id="pic"))["event"]["snapshot_url"]
    assert theirs != url
    assert (await client.get(theirs)).status == 200


async def test_unknown_ids_and_bad_input(ws: MockHAClientWebSocket, entry: MockConfigEntry) -> None:
    """Clear errors: not_found for what does not exist, invalid_format for bad input."""
    front, _ = _cameras(entry)
    await _add(entry, _event(entry, "e", front))
    assert await _error(ws, "hsi/events/get", event_id="nope") == "not_found"
    assert await _error(ws, "hsi/events/feedback", event_id="nope", action="keep") == "not_found"
    assert await _error(ws, "hsi/events/delete", event_id="nope") == "not_found"
    assert await _error(ws, "hsi/events/list", entry_id="nope") == "not_found"
    assert await _error(ws, "hsi/events/subscribe", entry_id="nope") == "not_found"
    for bad in (
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
        {"cursor": "not a cursor!"},
        {"min_level": "severe"},
        {"source": "gpt"},
        {"acknowledged": "maybe"},
        {"start": "yesterday"},
        {"start": BASE.isoformat(), "end": BASE.isoformat()},
        {"cameras": [{"id": 1}]},
        {"colour": "red"},
    ):
        assert await _error(ws, "hsi/events/list", **bad) == "invalid_format", bad
    assert await _error(ws, "hsi/events/subscribe", min_level="severe") == "invalid_format"
    assert await _error(ws, "hsi/events/feedback", event_id="e", action="like") == "invalid_format"
    # identity needs a name, the others take none.
    assert await _error(ws, "hsi/events/feedback", event_id="e", action="identity") == (
        "invalid_format"
    )
    assert await _error(ws, "hsi/events/feedback", event_id="e", action="keep", name="Alice") == (
        "invalid_format"
    )
    assert await _error(ws, "hsi/events/get") == "invalid_format"
    # Nothing changed the event.
    event = (await _result(ws, "hsi/events/get", event_id="e"))["event"]
    assert (event["keep"], event["acknowledged"], event["identity"]) == (False, False, None)


async def test_delete_is_for_administrators(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
    entry: MockConfigEntry,
) -> None:
    """A non-admin user reads and gives feedback but cannot delete."""
    front, _ = _cameras(entry)
    await _add(entry, _event(entry, "e", front), snapshot=jpeg())
    path = entry.runtime_data.store.image_path("e", "snapshot")
    assert path is not None
    assert await hass.async_add_executor_job(path.exists)

    user = await hass_ws_client(hass, hass_read_only_access_token)
    assert await _ids(user) == ["e"]
    assert await _result(user, "hsi/events/feedback", event_id="e", action="acknowledge")
    assert await _error(user, "hsi/events/delete", event_id="e") == "unauthorized"
    assert await _ids(user) == ["e"]

    admin = await hass_ws_client(hass)
    assert await _result(admin, "hsi/events/delete", event_id="e") == {"event_id": "e"}
    assert await _error(admin, "hsi/events/get", event_id="e") == "not_found"
    assert not await hass.async_add_executor_job(path.exists)


async def test_cameras(ws: MockHAClientWebSocket, entry: MockConfigEntry) -> None:
    """The configured cameras of every loaded entry."""
    front, back = _cameras(entry)
    gallery = entry.runtime_data.gallery
    gallery.enroll("Bob", "person", [1.0, 0.0, 0.0, 0.0])
    gallery.enroll("Alice", "person", [0.0, 1.0, 0.0, 0.0])
    gallery.observe([0.0, 0.0, 1.0, 0.0], "person", front, "e1")  # seen, not enrolled
    result = await _result(ws, "hsi/cameras")
    assert result["enrolled"] == ["Alice", "Bob"]
    assert sorted(result["cameras"], key=lambda c: c["name"]) == [
        {"camera_id": back, "name": "Back yard", "entry_id": entry.entry_id, "camera_entity": BACK},
        {
            "camera_id": front,
            "name": "Front door",
            "entry_id": entry.entry_id,
            "camera_entity": CAMERA,
        },
    ]
