"""The `hsi` media source: cameras → days → (hours) → events → images, and resolving."""

from __future__ import annotations

from datetime import datetime, timedelta

from hsi_client import AnalyzedObject, BoundingBox, RiskAssessment
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.hsi.media_source import DAY_LIMIT, PAGE_LIMIT
from custom_components.hsi.models import SecurityEvent
from homeassistant.components import media_source
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .conftest import jpeg

PERSON = AnalyzedObject("person", 0.9, 0, BoundingBox(40, 30, 100, 150))


def _event(entry: MockConfigEntry, event_id: str, at: datetime, score: int) -> SecurityEvent:
    camera_id = next(iter(entry.subentries))
    return SecurityEvent(
        event_id=event_id,
        camera_id=camera_id,
        camera_name="Front door",
        camera_entity="camera.demo_camera",
        trigger="motion",
        started_at=at,
        ended_at=at + timedelta(seconds=20),
        objects=[PERSON],
        risk=RiskAssessment.build(score, f"Person {event_id} at the door", "why", source="llm"),
        entry_id=entry.entry_id,
    )


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=dt_util.get_default_time_zone())


async def test_browse_and_resolve(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    """Cameras with counts, days newest first, titled events with thumbnails, their images."""
    store = setup_entry.runtime_data.store
    await store.async_add(_event(setup_entry, "A", _local(25, 9, 5), 10), jpeg(), [jpeg()])
    await store.async_add(_event(setup_entry, "B", _local(26, 8, 0), 90), jpeg())
    await store.async_add(_event(setup_entry, "C", _local(26, 21, 30), 65), None)  # no image
    camera_id = next(iter(setup_entry.subentries))

    root = await media_source.async_browse_media(hass, "media-source://hsi")
    assert root.title == "Home Security Intelligence"
    (camera,) = root.children
    assert camera.title == "Front door (3 events)"
    assert camera.media_content_id == f"media-source://hsi/{setup_entry.entry_id}/{camera_id}"

    days = await media_source.async_browse_media(hass, camera.media_content_id)
    assert [d.title for d in days.children] == [
        "Thursday 26 November 2026 (2 events)",
        "Wednesday 25 November 2026 (1 events)",
    ]
    day = await media_source.async_browse_media(hass, days.children[0].media_content_id)
    assert [e.title for e in day.children] == [
        "21:30 · High · Person C at the door",
        "08:00 · Critical · Person B at the door",
    ]
    assert day.not_shown == 0
    no_image, with_image = day.children
    assert (no_image.can_play, no_image.thumbnail) == (False, None)
    assert with_image.thumbnail == "/api/hsi/events/B/snapshot.jpg"

    old = await media_source.async_browse_media(hass, days.children[1].media_content_id)
    images = await media_source.async_browse_media(hass, old.children[0].media_content_id)
    assert [(i.title, i.thumbnail) for i in images.children] == [
        ("Annotated snapshot", "/api/hsi/events/A/snapshot.jpg"),
        ("Key frame 1", "/api/hsi/events/A/frame0.jpg"),
    ]

    played = await media_source.async_resolve_media(hass, with_image.media_content_id, None)
    assert (played.url, played.mime_type) == ("/api/hsi/events/B/snapshot.jpg", "image/jpeg")
    frame = await media_source.async_resolve_media(hass, images.children[1].media_content_id, None)
    assert frame.url == "/api/hsi/events/A/frame0.jpg"
    for bad in (
        no_image.media_content_id,  # no image to show
        f"{with_image.media_content_id}/frame3",
        f"media-source://hsi/{setup_entry.entry_id}/{camera_id}/2026-11-26/e/nope",
        f"media-source://hsi/{setup_entry.entry_id}/{camera_id}/2026-11-26",
        "media-source://hsi/not-an-entry/x/2026-11-26/e/B",
    ):
        with pytest.raises(media_source.Unresolvable):
            await media_source.async_resolve_media(hass, bad, None)
    for bad in ("media-source://hsi/a/b/not-a-day", "media-source://hsi/a/b/2026-11-26/99"):
        with pytest.raises(BrowseError):
            await media_source.async_browse_media(hass, bad)

    # The frontend resolves through the websocket: the relative path comes back signed.
    ws = await hass_ws_client(hass)
    await ws.send_json(
        {
            "id": 1,
            "type": "media_source/resolve_media",
            "media_content_id": images.children[1].media_content_id,
        }
    )
    answer = await ws.receive_json()
    assert answer["success"], answer
    signed = answer["result"]["url"]
    assert signed.startswith("/api/hsi/events/A/frame0.jpg?authSig=")
    client = await hass_client()
    response = await client.get(signed)
    assert response.status == 200


async def test_busy_day_has_hours_and_counts_what_is_not_shown(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """No silent cap: many events make hour folders; a full hour says how many it leaves out."""
    store = setup_entry.runtime_data.store
    crowded = PAGE_LIMIT + 25
    for index in range(crowded):  # one busy hour, every 15 seconds
        at = _local(26, 14) + timedelta(seconds=15 * index)
        await store.async_add(_event(setup_entry, f"H{index:04d}", at, 40), None)
    for index in range(DAY_LIMIT):  # and a quiet morning
        await store.async_add(_event(setup_entry, f"M{index:04d}", _local(26, 7, index), 20), None)
    camera = (await media_source.async_browse_media(hass, "media-source://hsi")).children[0]
    (day,) = (await media_source.async_browse_media(hass, camera.media_content_id)).children
    assert day.title == f"Thursday 26 November 2026 ({crowded + DAY_LIMIT} events)"

    hours = await media_source.async_browse_media(hass, day.media_content_id)
    assert [h.title for h in hours.children] == [
        f"14:00-14:59 ({crowded} events)",
        f"07:00-07:59 ({DAY_LIMIT} events)",
    ]
    busy = await media_source.async_browse_media(hass, hours.children[0].media_content_id)
    assert len(busy.children) == PAGE_LIMIT
    assert busy.not_shown == crowded - PAGE_LIMIT
    assert busy.children[0].title.startswith("14:56 ·")  # newest first
    quiet = await media_source.async_browse_media(hass, hours.children[1].media_content_id)
    assert (len(quiet.children), quiet.not_shown) == (DAY_LIMIT, 0)
