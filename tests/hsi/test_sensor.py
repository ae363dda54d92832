"""Sensors as the device page shows them: short states, long text in attributes, units."""

from __future__ import annotations

from typing import Any

from hsi_client.testing import FakeServer
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.sensor import MAX_STATE_LENGTH, event_headline
from homeassistant.const import PERCENTAGE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .conftest import CAMERA, action

# What a device page can show beside an entity name without squeezing the name.
SHORT = 40


def _event(objects: list[str], score: int = 72, summary: str = "s") -> SecurityEvent:
    return SecurityEvent.from_dict(
        {
            "event_id": "e1",
            "camera_id": "c1",
            "camera": "Front door",
            "started_at": "2026-11-27T10:00:00+00:00",
            "ended_at": "2026-11-27T10:00:05+00:00",
            "risk_score": score,
            "summary": summary,
            "reasoning": "r",
            "objects": [
                {
                    "class": label,
                    "confidence": 0.9,
                    "frame": 0,
                    "bbox": {"x": 0, "y": 0, "width": 10, "height": 10},
                }
                for label in objects
            ],
        }
    )


def test_headline_counts_groups_in_order() -> None:
    """Level, then people, vehicles, animals, then other classes, each with its count."""
    event = _event(["dog", "car", "person", "truck", "backpack", "person"], score=90)
    assert event_headline(event) == "Critical · 2 people, 2 vehicles, 1 animal, 1 backpack"
    assert event_headline(_event(["person"], score=72)) == "High · 1 person"
    assert event_headline(_event([], score=5)) == "Low · nothing relevant"
    assert event_headline(_event(["knife", "knife", "scissors", "scissors"], score=50)) == (
        "Medium · 2 knives, 2 scissors"
    )


def test_headline_never_exceeds_the_state_limit() -> None:
    """However many classes an event has, the state fits Home Assistant's 255 characters."""
    labels = [f"unusual-object-number-{i}" for i in range(40)]
    assert len(event_headline(_event(labels))) == MAX_STATE_LENGTH


async def test_camera_sensor_states_are_short(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """A long summary stays out of the state: the device page keeps the entity names."""
    summary = "A person in a dark jacket walks up the drive, looks into the car " * 6
    fake_server.analyze_risk = {"risk_score": 72, "summary": summary, "reasoning": "r" * 900}
    event: dict[str, Any] = await action(hass, "analyze", {"entity_id": CAMERA})
    assert len(summary) > MAX_STATE_LENGTH

    last = hass.states.get("sensor.front_door_last_event")
    assert last is not None
    assert last.state == "High · 1 person"
    assert last.attributes["summary"] == event["summary"]  # the whole text, as the server said
    assert last.attributes["reasoning"] == "r" * 900

    registry = er.async_get(hass)
    for entry in er.async_entries_for_config_entry(registry, setup_entry.entry_id):
        state = hass.states.get(entry.entity_id)
        if entry.domain != "sensor" or state is None:
            continue
        assert len(state.state) <= SHORT, (entry.entity_id, state.state)


async def test_risk_score_reads_as_out_of_100(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """The risk score has a unit (so its graph has a labelled 0-100 scale) and no decimals."""
    await action(hass, "analyze", {"entity_id": CAMERA})
    state = hass.states.get("sensor.front_door_risk_score")
    assert state is not None
    assert state.state == "72"
    assert state.attributes["unit_of_measurement"] == PERCENTAGE
    assert state.attributes["state_class"] == "measurement"
    entry = er.async_get(hass).async_get("sensor.front_door_risk_score")
    assert entry is not None
    assert entry.options["sensor"]["suggested_display_precision"] == 0


async def test_server_sensors_read_well_when_all_is_done(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """A healthy server with its models in place: no "Unknown" on the server's device page."""
    registry = er.async_get(hass)
    shown = {
        entry.entity_id: hass.states.get(entry.entity_id)
        for entry in er.async_entries_for_config_entry(registry, setup_entry.entry_id)
        if entry.config_subentry_id is None and not entry.disabled_by
    }
    states = {entity_id: state.state for entity_id, state in shown.items() if state is not None}
    assert states["sensor.hsi_ai_server_127_0_0_1_status"] == "healthy"
    assert states["sensor.hsi_ai_server_127_0_0_1_model_download"] == "100.0"  # nothing to fetch
    assert [e for e, state in states.items() if state in ("unknown", "unavailable")] == []
