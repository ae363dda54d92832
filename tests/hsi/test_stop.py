"""Home Assistant stopping (Restart, SIGTERM) without unloading the entry, and the start after.

Home Assistant does not unload config entries when it stops: it fires `homeassistant_stop`,
then `homeassistant_final_write` (the event store closes), then ends the process. These tests
fire the stop event as Home Assistant does, on both supported versions; tests/e2e/test_restart.py
does the same with a real Home Assistant process restarted for real.
"""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import FakeServer, detection
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant

from .conftest import advance, motion, stored

RISK = "sensor.front_door_risk_score"


async def test_stop_event_flushes_the_open_batch(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """The stop event alone (no unload) records the open batch from the rules, stored before
    the store closes; unloading afterwards records nothing more."""
    fake_server.default_detections = [detection("person", 0.7)]
    await motion(hass)
    (watcher,) = setup_entry.runtime_data.watchers.values()
    assert watcher.state.batch_open
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED  # Home Assistant unloads nothing
    (event,) = security_events
    assert event.data["source"] == "rules"
    assert "integration unloaded" in event.data["reasoning"]
    assert await stored(setup_entry) == [event.data["event_id"]]
    await advance(hass, freezer, 120)  # the batch's timers are gone
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert len(security_events) == 1
    assert fake_server.count("/analyze") == 0


async def test_cameras_start_from_their_last_stored_event(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    security_events: list[Event],
) -> None:
    """After a start the camera's sensors show its last stored event, not unknown."""
    fake_server.default_detections = [detection("person", 0.7)]
    fake_server.analyze_risk = {"risk_score": 42}
    assert hass.states.get(RISK).state == STATE_UNKNOWN
    await motion(hass)
    await advance(hass, freezer, 6)  # idle timeout: analysed, recorded
    (event,) = security_events
    assert hass.states.get(RISK).state == str(event.data["risk_score"])
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(RISK).state == str(event.data["risk_score"])
    assert len(security_events) == 1
