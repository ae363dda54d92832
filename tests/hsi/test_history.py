"""The event history store."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import patch

from hsi_client import AnalyzedObject, BoundingBox, RiskAssessment

from custom_components.hsi import history as history_module
from custom_components.hsi.history import EventHistory
from custom_components.hsi.models import SecurityEvent
from homeassistant.core import HomeAssistant

PERSON = AnalyzedObject("person", 0.8, 0, BoundingBox(40, 30, 100, 150))


def _event(event_id: str) -> SecurityEvent:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return SecurityEvent(
        event_id=event_id,
        camera_id="cam",
        camera_name="Cam",
        camera_entity=None,
        trigger="test",
        started_at=moment,
        ended_at=moment,
        objects=[PERSON],
        risk=RiskAssessment.build(40, "s", "r", source="rules"),
    )


async def test_history_limits_and_unreadable_records(hass: HomeAssistant) -> None:
    """Old events and snapshots make room for new ones; a broken stored record is skipped."""
    store = EventHistory(hass, "limits")
    with (
        patch.object(history_module, "HISTORY_SIZE", 3),
        patch.object(history_module, "MAX_SNAPSHOTS", 2),
    ):
        for index in range(5):
            store.add(_event(f"e{index}"), b"jpeg")
    assert list(store.events) == ["e2", "e3", "e4"]
    assert list(store.snapshots) == ["e3", "e4"]
    await store.async_save()

    broken = store._data()
    broken["events"].insert(0, {"event_id": "x"})  # no camera, no times
    with patch.object(history_module.Store, "async_load", return_value=broken):
        loaded = EventHistory(hass, "limits")
        await loaded.async_load()
    assert list(loaded.events) == ["e2", "e3", "e4"]
    assert loaded.events["e4"].objects[0].bbox == PERSON.bbox
